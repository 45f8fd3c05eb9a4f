#!/usr/bin/env bash
# The hostile-publisher suite (Tests/HostileTests, issue #9), as its own step: two `klaviyo-relay consume`
# processes, a `serve`, and a klaviyo-sim WITH Klaviyo's rate limits; probes as a publisher, an operator or a
# browser would trigger them (id reuse across accounts, an unreadable credential, unroutable routing keys,
# absurd Retry-After / x-death numbers, forged relay headers, reply_to abuse, `.`/`..` ids, OAuth/browser
# holes) while a steady stream of other accounts' commands must all succeed within the sim's limits. Prints a
# table of probes → outcome; any FAIL row fails the run. See docs/testing.md "Hostile-publisher suite".
#
#   scripts/test/hostile.sh                        # builds if needed, starts/reuses RabbitMQ and Redis
#   HOSTILE_SKIP_BUILD=1 scripts/test/hostile.sh   # the caller already built (scripts/test.sh)
#
# It never restarts the servers, so it may share them with other runs. A dedicated klaviyo-sim on
# HOSTILE_SIM_PORT (default 18589, rate limits on) is started and stopped here.
#
# Environment: RELAY_AMQP_URL, RELAY_REDIS_URL, HOSTILE_SIM_PORT, HOSTILE_SKIP_BUILD=1.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"
require_swift >/dev/null

sim_port="${HOSTILE_SIM_PORT:-18589}"
use_services hostile "$sim_port"
if [[ "${HOSTILE_SKIP_BUILD:-0}" != 1 ]]; then
    build_with_tests hostile-build
fi
# Rate limits on: "other accounts' commands succeed within their Klaviyo limits" is checked by the sim's own
# counters (no 429 outside the account the suite throttles on purpose).
start_test_sim "$sim_port" klaviyo-sim-hostile --rate-limits on --log-level warning
export RELAY_HOSTILE=1

started="$(now_ms)"
swift test --skip-build --filter HostileTests
log "hostile-publisher suite took $(elapsed_since "$started")"
