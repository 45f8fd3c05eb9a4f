#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root):
#
#   scripts/test.sh
#
# 1. installs missing Debian packages, starts (or reuses) RabbitMQ and Redis;
# 2. builds everything, tests included; a compiler warning in project files fails the run;
# 3. checks every schema example with a standard JSON Schema validator (Python jsonschema) and validates the
#    AsyncAPI document as AsyncAPI 3.0 (scripts/check-asyncapi.py);
# 4. starts a klaviyo-sim for the tests on KLAVIYO_SIM_PORT (default 18089);
# 5. runs `swift test` (unit, contract and integration tests against the real servers);
# 6. validates every request the relay sent to that klaviyo-sim during the suite against Klaviyo's OpenAPI
#    spec (scripts/check-requests-against-spec.py; the spec from KLAVIYO_OPENAPI_SPEC, default
#    ../shared/klaviyo/openapi/stable.json), after proving the validator rejects broken requests.
# 7. the hostile-publisher suite (scripts/hostile.sh, issue #9); RELAY_HOSTILE=0 skips it;
# 8. the chaos test (scripts/chaos.sh), which restarts RabbitMQ and Redis; RELAY_CHAOS=0 skips it.
# Servers this run started are stopped at exit; servers that were already running are left alone.
#
# Environment: RELAY_AMQP_URL, RELAY_REDIS_URL (defaults: the local servers), KLAVIYO_SIM_PORT,
# SWIFT_TEST_ARGS (extra `swift test` arguments, e.g. "--filter RelayTests").
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

scripts/install-deps.sh
require_swift >/dev/null

sim_port="${KLAVIYO_SIM_PORT:-18089}"
started_file="$(var_path test-started-services)"
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
# Queues left by aborted earlier runs slow a small broker down until it stops accepting logins: remove them
# from a broker this run started (nobody else uses it yet); on a shared one, only say so.
if grep -qx rabbitmq "$started_file"; then
    scripts/services.sh clean-test-leftovers
else
    leftovers="$(RABBITMQ_NODENAME=rabbit@localhost rabbitmqctl -q list_queues name 2>/dev/null |
        grep -cE "$TEST_QUEUE_PATTERN" || true)"
    if ((${leftovers:-0} > 50)); then
        log "the broker holds $leftovers queues left by aborted test runs; if no other run uses it:" \
            "scripts/services.sh clean-test-leftovers"
    fi
fi

export RELAY_AMQP_URL="${RELAY_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export RELAY_REDIS_URL="${RELAY_REDIS_URL:-redis://127.0.0.1:${REDIS_PORT:-6379}/0}"

started="$(now_ms)"
build_log="$(var_path build.log)"
if ! swift build --build-tests >"$build_log" 2>&1; then
    grep -E "error:" "$build_log" | sort -u | head -40 >&2 || tail -50 "$build_log" >&2
    die "build failed (full log: $build_log)"
fi
check_warnings "$build_log"
log "build (with tests) took $(elapsed_since "$started")"

export SCHEMA_VERDICTS
SCHEMA_VERDICTS="$(var_path schema-verdicts.json)"
python3 scripts/check-schemas.py --verdicts "$SCHEMA_VERDICTS"
# The generated tables (simulator operations, the relay's rate limits) must match Klaviyo's spec.
python3 scripts/gen-klaviyo-ops.py --check
# The AsyncAPI document: valid AsyncAPI 3.0 (object model + AMQP bindings 0.3.0), every $ref resolves, every
# command type is a message; the self-test first proves each kind of breakage is reported.
python3 scripts/check-asyncapi.py --self-test
python3 scripts/check-asyncapi.py
# The request validator must reject deliberately broken requests, or its verdict below means nothing.
python3 scripts/check-requests-against-spec.py --self-test >/dev/null

SIM_BINARY="$REPO_ROOT/.build/debug/klaviyo-sim"
stop_sim "$sim_port"
# A simulator this checkout did not start may be another version, and the request check below reads what it
# recorded: never reuse one.
port_open 127.0.0.1 "$sim_port" &&
    die "port $sim_port is taken (another klaviyo-sim?): stop it or choose another KLAVIYO_SIM_PORT"
start_sim "$sim_port" "$(var_path klaviyo-sim-test.log)" --rate-limits off --log-level warning
export KLAVIYO_SIM_URL="http://127.0.0.1:$sim_port"
export RELAY_BINARY="$REPO_ROOT/.build/debug/klaviyo-relay"

started="$(now_ms)"
# RELAY_CHAOS and RELAY_HOSTILE are unset here: those suites run only in their own steps below.
# shellcheck disable=SC2086 # SWIFT_TEST_ARGS is a word list on purpose
env -u RELAY_CHAOS -u RELAY_HOSTILE swift test --skip-build ${SWIFT_TEST_ARGS:-}
log "swift test took $(elapsed_since "$started")"

# Every request the relay sent to the test simulator during the whole suite, against Klaviyo's spec.
python3 scripts/check-requests-against-spec.py "$KLAVIYO_SIM_URL"

# The hostile-publisher suite (about a minute): two consumers, a serve and its own klaviyo-sim with Klaviyo's rate
# limits on; it never restarts the servers. RELAY_HOSTILE=0 skips it.
if [[ "${RELAY_HOSTILE:-1}" == 1 ]]; then
    HOSTILE_SKIP_BUILD=1 scripts/hostile.sh
fi

# The chaos test (one to two minutes) restarts RabbitMQ and Redis, so it runs last, on its own, after everything
# else is done with the servers. It restarts only servers this run started (as in CI, on a clean machine):
# servers that were already running may be someone else's. CHAOS_RESTARTS overrides that (1, 0, rabbitmq,
# redis); RELAY_CHAOS=0 skips the chaos test.
if [[ "${RELAY_CHAOS:-1}" == 1 ]]; then
    stop_sim "$sim_port"
    if [[ -z "${CHAOS_RESTARTS:-}" ]]; then
        ours="$(sort -u "$started_file" | tr '\n' ' ')"
        case "$ours" in
        *rabbitmq*redis*) CHAOS_RESTARTS=1 ;;
        *rabbitmq*) CHAOS_RESTARTS=rabbitmq ;;
        *redis*) CHAOS_RESTARTS=redis ;;
        *) CHAOS_RESTARTS=0 ;;
        esac
        [[ "$CHAOS_RESTARTS" == 1 ]] ||
            log "chaos test restarts: $CHAOS_RESTARTS (the others were already running; CHAOS_RESTARTS=1 forces them)"
    fi
    CHAOS_RESTARTS="$CHAOS_RESTARTS" CHAOS_SKIP_BUILD=1 scripts/chaos.sh
fi
