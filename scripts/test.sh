#!/usr/bin/env bash
# PLACEHOLDER, TO BE EXTENDED by whoever owns the test suite (schema checks, klaviyo-sim, chaos tests...).
#
#   scripts/test.sh
#
# Installs missing dependencies, starts (or reuses) RabbitMQ and Redis, builds everything including the
# tests and runs `swift test` against the real servers. Services this run started are stopped at exit;
# servers that were already running are left alone.
#
# Environment: RELAY_AMQP_URL and RELAY_REDIS_URL are exported for the tests (defaults: the local servers;
# REDIS_PORT selects another local Redis port). SWIFT_TEST_ARGS adds arguments to `swift test`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

scripts/install-deps.sh
require_swift >/dev/null

started_file="$(var_path test-started-services)"
: >"$started_file"
stop_started() {
    local rc=$?
    local ours=()
    mapfile -t ours <"$started_file"
    if ((${#ours[@]} > 0)); then
        scripts/services.sh stop "${ours[@]}" || true
    fi
    exit "$rc"
}
trap stop_started EXIT
scripts/services.sh start --record "$started_file"

export RELAY_AMQP_URL="${RELAY_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export RELAY_REDIS_URL="${RELAY_REDIS_URL:-redis://127.0.0.1:${REDIS_PORT:-6379}/0}"

started="$(now_ms)"
swift build --build-tests
log "build (with tests) took $(elapsed_since "$started")"

started="$(now_ms)"
# shellcheck disable=SC2086 # SWIFT_TEST_ARGS is a word list on purpose
swift test --skip-build ${SWIFT_TEST_ARGS:-}
log "swift test took $(elapsed_since "$started")"
