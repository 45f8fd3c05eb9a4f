#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root):
#
#   scripts/test.sh
#
# 1. installs missing Debian packages, starts (or reuses) RabbitMQ and Redis;
# 2. builds everything, tests included, with `--explicit-target-dependency-import-check error` (a target importing
#    a module it does not declare fails the build); a compiler warning in project files fails the run; then
#    `swift format lint --strict` over Package.swift, Sources and Tests (as `make lint`);
# 3. checks every schema example with a standard JSON Schema validator (Python jsonschema) and validates the
#    AsyncAPI document as AsyncAPI 3.0 (scripts/check/check-asyncapi.py);
# 4. starts a klaviyo-sim for the tests on KLAVIYO_SIM_PORT (default 18089);
# 5. runs `swift test` (unit, contract and integration tests against the real servers) under a watchdog
#    (scripts/test/swift-test-watchdog.sh), the suites that start clusters after the others;
# 6. validates every request the relay sent to that klaviyo-sim during the suite against Klaviyo's OpenAPI
#    spec (scripts/check/check-requests-against-spec.py; the spec from KLAVIYO_OPENAPI_SPEC, default
#    ../shared/klaviyo/openapi/stable.json), after proving the validator rejects broken requests; a whole run must
#    also reach REQUEST_FLOOR requests and every operation in EXPECTED_OPERATIONS; then the simulator's responses
#    against the same spec (scripts/check/check-responses-against-spec.py);
# 7. the hostile-publisher suite (scripts/test/hostile.sh, issue #9); RELAY_HOSTILE=0 skips it;
# 8. the chaos test (scripts/test/chaos.sh), which restarts RabbitMQ and Redis; RELAY_CHAOS=0 skips it;
# 9. the cluster chaos test (scripts/test/cluster-chaos.sh) on clusters of its own; RELAY_CLUSTER_CHAOS=0 skips it.
# Servers this run started are stopped at exit; servers that were already running are left alone.
#
# Environment: RELAY_AMQP_URL, RELAY_REDIS_URL (defaults: the local servers), KLAVIYO_SIM_PORT,
# SWIFT_TEST_ARGS (extra `swift test` arguments, e.g. "--filter RelayTests"; the request floor then does not apply),
# REQUEST_FLOOR.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

# The floor of the request check: a whole suite sends far more requests to the test simulator than this (seven of
# its suites alone, CommandTypes, JobCommands, ProfileFlow, OAuthConnector, TokenManager, DisconnectCommand and
# Shutdown, sent 4,167 on 2026-12-04), and calls each of these operations (the spec's operationIds) at least once.
REQUEST_FLOOR="${REQUEST_FLOOR:-2000}"
EXPECTED_OPERATIONS=(
    create_or_update_profile update_profile get_profiles bulk_import_profiles get_bulk_import_profiles_job
    create_list add_profiles_to_list remove_profiles_from_list bulk_subscribe_profiles bulk_unsubscribe_profiles
    create_event bulk_create_events get_campaigns create_campaign get_campaign send_campaign get_campaign_send_job
    cancel_campaign_send get_flows update_flow get_accounts oauth_token query_campaign_values query_flow_values
)

scripts/dev/install-deps.sh
require_swift >/dev/null

sim_port="${KLAVIYO_SIM_PORT:-18089}"
use_services test "$sim_port"
# Queues left by aborted earlier runs slow a small broker down until it stops accepting logins: remove them
# from a broker this run started (nobody else uses it yet); on a shared one, only say so.
if grep -qx rabbitmq "$STARTED_SERVICES_FILE"; then
    scripts/dev/services.sh clean-test-leftovers
else
    leftovers="$(RABBITMQ_NODENAME=rabbit@localhost rabbitmqctl -q list_queues name 2>/dev/null |
        grep -cE "$TEST_QUEUE_PATTERN" || true)"
    if ((${leftovers:-0} > 50)); then
        log "the broker holds $leftovers queues left by aborted test runs; if no other run uses it:" \
            "scripts/dev/services.sh clean-test-leftovers"
    fi
fi

started="$(now_ms)"
# Every import must be of a target the importing target declares (Package.swift), checked by the compiler.
build_with_tests build --explicit-target-dependency-import-check error
log "build (with tests) took $(elapsed_since "$started")"
# The formatter's lint, as `make lint` runs it: a finding fails the run.
swift format lint --strict --parallel --recursive Package.swift Sources Tests ||
    die "swift format lint found the problems above (make format fixes most of them)"

export SCHEMA_VERDICTS
SCHEMA_VERDICTS="$(var_path schema-verdicts.json)"
python3 scripts/check/check-schemas.py --verdicts "$SCHEMA_VERDICTS"
# The generated tables (simulator operations, the relay's rate limits) must match Klaviyo's spec.
python3 scripts/check/gen-klaviyo-ops.py --check
# The AsyncAPI document: valid AsyncAPI 3.0 (object model + AMQP bindings 0.3.0), every $ref resolves, every
# command type is a message; the self-test first proves each kind of breakage is reported.
python3 scripts/check/check-asyncapi.py --self-test
python3 scripts/check/check-asyncapi.py
# The Kubernetes manifests and the KEDA object against their published schemas, offline (the self-test first proves
# each kind of breakage is reported).
python3 scripts/check/check-manifests.py --self-test >/dev/null
python3 scripts/check/check-manifests.py
# deploy/rabbitmq/definitions.json (policies-based, what `klaviyo-relay setup --print-definitions` prints) imported
# into a throwaway vhost of the test broker, its routing and policies checked, and the relay run against exactly
# that topology with RELAY_TOPOLOGY=policies (setup keeps the policies and redeclares it unchanged; delivery limit,
# alternate exchange and a retry tier's TTL work through their policies; a consumer dead-letters into the bounded
# dead queue and holds commands while it is full; without a tier's policy a consumer refuses to start). About 65 s.
scripts/check/check-definitions.sh --relay .build/debug/klaviyo-relay
# The request validator must reject deliberately broken requests, or its verdict below means nothing.
python3 scripts/check/check-requests-against-spec.py --self-test >/dev/null

# A simulator this checkout did not start may be another version, and the request check below reads what it
# recorded: never reuse one (KLAVIYO_SIM_PORT chooses another port).
start_test_sim "$sim_port" klaviyo-sim-test --rate-limits off --log-level warning

started="$(now_ms)"
# RELAY_CHAOS, RELAY_HOSTILE and RELAY_CLUSTER_CHAOS are unset here: those suites run only in their own steps below. The watchdog stops a
# run that outlasts SWIFT_TEST_TIMEOUT and names the tests that never finished.
# The suites that start a 3-node RabbitMQ cluster or a Redis Cluster run after the others, on their own: nine more
# servers next to the whole parallel suite overload two cores.
cluster_suites='ClusterFailoverTests|RedisClusterTests'
if [[ -n "${SWIFT_TEST_ARGS:-}" ]]; then
    # shellcheck disable=SC2086 # SWIFT_TEST_ARGS is a word list on purpose
    env -u RELAY_CHAOS -u RELAY_HOSTILE -u RELAY_CLUSTER_CHAOS scripts/test/swift-test-watchdog.sh --skip-build ${SWIFT_TEST_ARGS}
else
    env -u RELAY_CHAOS -u RELAY_HOSTILE -u RELAY_CLUSTER_CHAOS scripts/test/swift-test-watchdog.sh --skip-build --skip "$cluster_suites"
    log "swift test (all but the cluster suites) took $(elapsed_since "$started")"
    started="$(now_ms)"
    SWIFT_TEST_TIMEOUT="${SWIFT_TEST_CLUSTER_TIMEOUT:-900}" \
        scripts/test/swift-test-watchdog.sh --skip-build --filter "$cluster_suites"
fi
log "swift test took $(elapsed_since "$started")"

# Every request the relay sent to the test simulator during the whole suite, against Klaviyo's spec. A whole run
# (no SWIFT_TEST_ARGS) must also have made at least REQUEST_FLOOR requests and called every operation the command
# types use: an empty or truncated recording fails instead of passing as "0 invalid".
floor=()
if [[ -z "${SWIFT_TEST_ARGS:-}" ]]; then
    floor=(--min-requests "$REQUEST_FLOOR" --expect-operations "$(IFS=,; echo "${EXPECTED_OPERATIONS[*]}")")
else
    log "SWIFT_TEST_ARGS is set: the request check runs without its floor (a partial suite makes fewer requests)"
fi
python3 scripts/check/check-requests-against-spec.py "${floor[@]}" "$KLAVIYO_SIM_URL"
# The Grafana dashboard's queries name metrics the relay exported in MetricsTests (or RabbitMQ's); alert rules parse
# (promtool, from Debian's prometheus package).
python3 scripts/check/check-dashboards.py
# The simulator's answers, against the response schemas of the same spec: drives every implemented operation of
# the test simulator (after the request check: it resets the simulator first).
python3 scripts/check/check-responses-against-spec.py "$KLAVIYO_SIM_URL"

# Klaviyo's app-review checklist walked end to end in headless Chromium (about 30 s; its own ports and queues).
scripts/demo/app-review.sh --no-screenshots --skip-build

# The hostile-publisher suite (about a minute): two consumers, a serve and its own klaviyo-sim with Klaviyo's rate
# limits on; it never restarts the servers. RELAY_HOSTILE=0 skips it.
if [[ "${RELAY_HOSTILE:-1}" == 1 ]]; then
    HOSTILE_SKIP_BUILD=1 scripts/test/hostile.sh
fi

# The chaos test (one to two minutes) restarts RabbitMQ and Redis, so it runs last, on its own, after everything
# else is done with the servers. It restarts only servers this run started (as in CI, on a clean machine):
# servers that were already running may be someone else's. CHAOS_RESTARTS overrides that (1, 0, rabbitmq,
# redis); RELAY_CHAOS=0 skips the chaos test.
if [[ "${RELAY_CHAOS:-1}" == 1 ]]; then
    stop_sim "$sim_port"
    if [[ -z "${CHAOS_RESTARTS:-}" ]]; then
        ours="$(sort -u "$STARTED_SERVICES_FILE" | tr '\n' ' ')"
        case "$ours" in
        *rabbitmq*redis*) CHAOS_RESTARTS=1 ;;
        *rabbitmq*) CHAOS_RESTARTS=rabbitmq ;;
        *redis*) CHAOS_RESTARTS=redis ;;
        *) CHAOS_RESTARTS=0 ;;
        esac
        [[ "$CHAOS_RESTARTS" == 1 ]] ||
            log "chaos test restarts: $CHAOS_RESTARTS (the others were already running; CHAOS_RESTARTS=1 forces them)"
    fi
    CHAOS_RESTARTS="$CHAOS_RESTARTS" CHAOS_SKIP_BUILD=1 scripts/test/chaos.sh
fi

# The cluster chaos test (about two minutes): its own 3-node RabbitMQ cluster (AMQP 5781-5783), Redis Cluster
# (7301-7306) and klaviyo-sim (18791), stopped at exit; it never touches the servers above. RELAY_CLUSTER_CHAOS=0
# skips it.
if [[ "${RELAY_CLUSTER_CHAOS:-1}" == 1 ]]; then
    CLUSTER_CHAOS_SKIP_BUILD=1 scripts/test/cluster-chaos.sh
fi
