#!/usr/bin/env bash
# Shared by the demo scripts (source it): brings up RabbitMQ, Redis, klaviyo-sim (port 8089, with the demo
# API-key account org_demo and a registered OAuth app) and two consumers, reusing whatever already runs, and
# stops at exit only what it started.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../lib.sh"
cd "$REPO_ROOT"

relay=.build/debug/klaviyo-relay
demo_key="pk_demo0000000000000000000000000000"
export RELAY_KLAVIYO_API_BASE_URL="http://127.0.0.1:8089"
export RELAY_KLAVIYO_AUTHORIZE_URL="http://127.0.0.1:8089/oauth/authorize"
export RELAY_KLAVIYO_CLIENT_ID="heropixel-demo"
export RELAY_KLAVIYO_CLIENT_SECRET="demo-client-secret-not-for-production"
export RELAY_OAUTH_REDIRECT_URL="http://127.0.0.1:8080/oauth/klaviyo/callback"
export RELAY_LOG_FORMAT="${RELAY_LOG_FORMAT:-text}"
demo_started_sim=0

demo_up() {
    scripts/dev/install-deps.sh
    require_swift >/dev/null
    scripts/dev/services.sh start
    log "building (debug)…"
    swift build 2>&1 | grep -E "error:|Build complete" || true
    [[ -x "$relay" ]] || die "build failed"
    mkdir -p var/logs
    if ! port_open 127.0.0.1 8089; then
        SIM_BINARY="$REPO_ROOT/.build/debug/klaviyo-sim"
        start_sim 8089 var/logs/klaviyo-sim.log --seed-account "org_demo:$demo_key:HeroPixel Demo Store"
        demo_started_sim=1
    fi
    sim POST /_sim/oauth/apps "{\"client_id\":\"$RELAY_KLAVIYO_CLIENT_ID\",\"client_secret\":\"$RELAY_KLAVIYO_CLIENT_SECRET\",\"redirect_uris\":[\"$RELAY_OAUTH_REDIRECT_URL\"]}" >/dev/null
    "$relay" setup --dev --log-level warning >/dev/null
    for n in 1 2; do
        RELAY_METRICS_PORT=0 spawn "var/logs/demo-consumer-$n.log" "$relay" consume --dev
    done
    log "two consumers started (logs var/logs/demo-consumer-*.log)"
    trap demo_down EXIT
}

demo_down() {
    stop_spawned
    ((demo_started_sim)) && stop_sim 8089
    return 0
}

# sim METHOD PATH [JSON]: calls the demo klaviyo-sim's admin API (lib.sh sim_admin).
sim() {
    sim_admin http://127.0.0.1:8089 "$@"
}

# publish_commands: reads NDJSON commands on stdin (ids get a per-run prefix: ids are idempotency keys),
# publishes them and prints every result or dead letter.
publish_commands() {
    local run_id
    run_id="$(date +%s%N | tail -c 9)"
    sed "s/\"id\":\"/\"id\":\"$run_id-/" | "$relay" publish --dev --log-level warning --wait --timeout 60s || true
}

# connect_oauth ACCOUNT KLAVIYO_SIM_ACCOUNT: the OAuth flow as a browser would do it, against klaviyo-sim:
# authorize URL (PKCE) → the sim's "Allow" → callback exchange.
connect_oauth() {
    local url location code state
    url="$("$relay" connections oauth-url --dev --log-level warning --account "$1")"
    location="$(curl -s -o /dev/null -w '%{redirect_url}' "$url&login_account=$2&decision=allow")"
    code="$(sed -n 's/.*[?&]code=\([^&]*\).*/\1/p' <<<"$location")"
    state="$(sed -n 's/.*[?&]state=\([^&]*\).*/\1/p' <<<"$location")"
    [[ -n "$code" && -n "$state" ]] || die "the authorize step did not redirect with a code: $location"
    "$relay" connections oauth-callback --dev --log-level warning --code="$code" --state="$state"
}

now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# first_id: reads publish_commands output on stdin, echoes it to stderr, prints the first klaviyo id of the
# first result.
first_id() {
    tee /dev/stderr | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        doc = json.loads(line)
    except ValueError:
        continue
    ids = (doc.get("klaviyo") or {}).get("ids") or []
    if ids:
        print(ids[0])
        break
'
}
