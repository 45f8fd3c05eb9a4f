#!/usr/bin/env bash
# The hostile-publisher suite (Tests/HostileTests, issue #9), as its own step: two `klaviyo-relay consume`
# processes, a `serve`, and a klaviyo-sim WITH Klaviyo's rate limits; probes as a publisher, an operator or a
# browser would trigger them (id reuse across accounts, an unreadable credential, unroutable routing keys,
# absurd Retry-After / x-death numbers, forged relay headers, reply_to abuse, `.`/`..` ids, OAuth/browser
# holes) while a steady stream of other accounts' commands must all succeed within the sim's limits. Prints a
# table of probes → outcome; any FAIL row fails the run. See README "Hostile-publisher suite".
#
#   scripts/hostile.sh                        # builds if needed, starts/reuses RabbitMQ and Redis
#   HOSTILE_SKIP_BUILD=1 scripts/hostile.sh   # the caller already built (scripts/test.sh)
#
# It never restarts the servers, so it may share them with other runs. A dedicated klaviyo-sim on
# HOSTILE_SIM_PORT (default 18589, rate limits on) is started and stopped here.
#
# Environment: RELAY_AMQP_URL, RELAY_REDIS_URL, HOSTILE_SIM_PORT, HOSTILE_SKIP_BUILD=1.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
require_swift >/dev/null

sim_port="${HOSTILE_SIM_PORT:-18589}"
started_file="$(var_path hostile-started-services)"
: >"$started_file"
cleanup() {
    local rc=$?
    stop_sim "$sim_port"
    local ours=()
    mapfile -t ours <"$started_file"
    if ((${#ours[@]} > 0)); then
        scripts/services.sh stop "${ours[@]}" || true
    fi
    exit "$rc"
}
trap cleanup EXIT
scripts/services.sh start --record "$started_file"

export RELAY_AMQP_URL="${RELAY_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export RELAY_REDIS_URL="${RELAY_REDIS_URL:-redis://127.0.0.1:${REDIS_PORT:-6379}/0}"

if [[ "${HOSTILE_SKIP_BUILD:-0}" != 1 ]]; then
    build_log="$(var_path hostile-build.log)"
    if ! swift build --build-tests >"$build_log" 2>&1; then
        grep -E "error:" "$build_log" | sort -u | head -40 >&2 || tail -50 "$build_log" >&2
        die "build failed (full log: $build_log)"
    fi
    check_warnings "$build_log"
fi

SIM_BINARY="$REPO_ROOT/.build/debug/klaviyo-sim"
stop_sim "$sim_port"
port_open 127.0.0.1 "$sim_port" && die "port $sim_port is taken: the hostile suite needs its own klaviyo-sim"
# Rate limits on: "other accounts' commands succeed within their Klaviyo limits" is checked by the sim's own
# counters (no 429 outside the account the suite throttles on purpose).
start_sim "$sim_port" "$(var_path klaviyo-sim-hostile.log)" --rate-limits on --log-level warning
export KLAVIYO_SIM_URL="http://127.0.0.1:$sim_port"
export RELAY_BINARY="$REPO_ROOT/.build/debug/klaviyo-relay"
export RELAY_HOSTILE=1

started="$(now_ms)"
swift test --skip-build --filter HostileTests
log "hostile-publisher suite took $(elapsed_since "$started")"
