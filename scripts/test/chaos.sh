#!/usr/bin/env bash
# The chaos test (Tests/ChaosTests), as its own step: 5,000 commands through 3 `klaviyo-relay consume`
# processes against a klaviyo-sim that fails (5xx, 429, resets, timeouts), while one consumer is SIGKILLed
# and restarted, RabbitMQ is restarted once and Redis once. See docs/testing.md "Chaos test".
#
#   scripts/test/chaos.sh                    # builds if needed, starts/reuses RabbitMQ and Redis
#   CHAOS_RESTARTS=0 scripts/test/chaos.sh   # without the broker/Redis restarts (servers shared with others)
#
# The restarts use `scripts/dev/services.sh restart-* --force`: they disturb EVERYTHING on that broker and
# Redis, so never run this beside other tests on the same servers. A dedicated klaviyo-sim on
# CHAOS_SIM_PORT (default 18489, rate limits off) is started and stopped here.
#
# Environment: RELAY_AMQP_URL, RELAY_REDIS_URL, CHAOS_SIM_PORT, CHAOS_RESTARTS, CHAOS_COMMANDS (5000),
# CHAOS_SKIP_BUILD=1 (the caller already built, e.g. scripts/test.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"
require_swift >/dev/null

sim_port="${CHAOS_SIM_PORT:-18489}"
use_services chaos "$sim_port"
if [[ "${CHAOS_SKIP_BUILD:-0}" != 1 ]]; then
    build_with_tests chaos-build
fi
start_test_sim "$sim_port" klaviyo-sim-chaos --rate-limits off --log-level warning
export RELAY_CHAOS=1

started="$(now_ms)"
swift test --skip-build --filter ChaosTests
log "chaos test took $(elapsed_since "$started")"
