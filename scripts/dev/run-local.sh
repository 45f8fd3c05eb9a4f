#!/usr/bin/env bash
# Runs Klaviyo Relay locally with everything it needs, from a fresh Debian 12 machine (as root):
#
#   scripts/dev/run-local.sh            # set up, run the demo, keep the consumers running until Ctrl-C
#   scripts/dev/run-local.sh --demo     # set up, run the demo, stop what it started, exit
#
# It installs missing packages, starts (or reuses) RabbitMQ, Redis and klaviyo-sim (port 8089), builds,
# declares the topology, connects the demo account `org_demo` with a private API key, starts two consumer
# processes and publishes demo profile commands, printing each command's result or dead letter.
# Logs: var/logs/. Development mode (--dev): a fixed, public encryption key; never use it with real data.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"

demo_only=0
[[ "${1:-}" == "--demo" ]] && demo_only=1

scripts/dev/install-deps.sh
require_swift >/dev/null
scripts/dev/services.sh start

log "building (debug)…"
swift build 2>&1 | grep -E "error:|Build complete" || true
[[ -x .build/debug/klaviyo-relay ]] || die "build failed"
relay=.build/debug/klaviyo-relay
mkdir -p var/logs

export RELAY_KLAVIYO_API_BASE_URL="http://127.0.0.1:8089"
export RELAY_LOG_FORMAT="${RELAY_LOG_FORMAT:-text}"
demo_key="pk_demo0000000000000000000000000000"
SIM_BINARY="$REPO_ROOT/.build/debug/klaviyo-sim"
start_sim 8089 var/logs/klaviyo-sim.log --seed-account "org_demo:$demo_key:HeroPixel Demo Store"

"$relay" setup --dev --log-level warning
echo "$demo_key" | "$relay" connections add-api-key --dev --log-level warning --account org_demo --api-key -

stop_all() {
    stop_spawned
    stop_sim 8089
}
trap stop_all EXIT
for n in 1 2; do
    RELAY_METRICS_PORT=$((9463 + n)) spawn "var/logs/consumer-$n.log" "$relay" consume --dev
done
log "two consumers running (logs var/logs/consumer-*.log, metrics on :9464 and :9465)"

# Command ids are idempotency keys: give this run's demo commands fresh ones.
run_id="$(date +%s)"
demo() { sed "s/\"id\":\"demo-/\"id\":\"demo-$run_id-/" "$1" | "$relay" publish --dev --log-level warning --wait --timeout 30s || true; }
log "demo 1/2: upserting profiles (plus two commands that must end as dead letters)…"
demo scripts/dev/demo/profiles-1.ndjson
log "demo 2/2: reading the profiles back…"
demo scripts/dev/demo/profiles-2.ndjson
log "what klaviyo-sim now holds for org_demo:"
sim_admin http://127.0.0.1:8089 GET /_sim/accounts/org_demo/profiles | python3 -c '
import json, sys
document = json.load(sys.stdin)
print("%d profile(s)" % document["count"])
for p in document["profiles"]:
    print("  %s  email=%s  external_id=%s  phone=%s" % (p["id"], p.get("email"), p.get("external_id"), p.get("phone_number")))
'

if ((demo_only)); then
    log "demo done; stopping consumers and klaviyo-sim (RabbitMQ and Redis keep running: scripts/dev/services.sh stop)"
    exit 0
fi
log "consumers keep running; publish more with: $relay publish --dev --file FILE --wait   (Ctrl-C stops them)"
wait
