#!/usr/bin/env bash
# The chaos test (Tests/ChaosTests), as its own step: 5,000 commands through 3 `klaviyo-relay consume`
# processes against a klaviyo-sim that fails (5xx, 429, resets, timeouts), while one consumer is SIGKILLed
# and restarted, RabbitMQ is restarted once and Redis once. See README "Chaos test".
#
#   scripts/chaos.sh                    # builds if needed, starts/reuses RabbitMQ and Redis
#   CHAOS_RESTARTS=0 scripts/chaos.sh   # without the broker/Redis restarts (servers shared with others)
#
# The restarts use `scripts/services.sh restart-* --force`: they disturb EVERYTHING on that broker and
# Redis, so never run this beside other tests on the same servers. A dedicated klaviyo-sim on
# CHAOS_SIM_PORT (default 18489, rate limits off) is started and stopped here.
#
# Environment: RELAY_AMQP_URL, RELAY_REDIS_URL, CHAOS_SIM_PORT, CHAOS_RESTARTS, CHAOS_COMMANDS (5000),
# CHAOS_SKIP_BUILD=1 (the caller already built, e.g. scripts/test.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
require_swift >/dev/null

sim_port="${CHAOS_SIM_PORT:-18489}"
started_file="$(var_path chaos-started-services)"
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

if [[ "${CHAOS_SKIP_BUILD:-0}" != 1 ]]; then
    build_log="$(var_path chaos-build.log)"
    if ! swift build --build-tests >"$build_log" 2>&1; then
        grep -E "error:" "$build_log" | sort -u | head -40 >&2 || tail -50 "$build_log" >&2
        die "build failed (full log: $build_log)"
    fi
    check_warnings "$build_log"
fi

SIM_BINARY="$REPO_ROOT/.build/debug/klaviyo-sim"
stop_sim "$sim_port"
port_open 127.0.0.1 "$sim_port" && die "port $sim_port is taken: the chaos test needs its own klaviyo-sim"
start_sim "$sim_port" "$(var_path klaviyo-sim-chaos.log)" --rate-limits off --log-level warning
export KLAVIYO_SIM_URL="http://127.0.0.1:$sim_port"
export RELAY_BINARY="$REPO_ROOT/.build/debug/klaviyo-relay"
export RELAY_CHAOS=1

started="$(now_ms)"
swift test --skip-build --filter ChaosTests
log "chaos test took $(elapsed_since "$started")"
