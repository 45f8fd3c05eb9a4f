#!/usr/bin/env bash
# The cluster chaos test (Tests/ChaosTests/ClusterChaosTests.swift), as its own step: a 3-node RabbitMQ cluster and
# a Redis Cluster (3 primaries + 3 replicas) of its own, three `klaviyo-relay consume` processes spread over the
# nodes, 5,000 mixed commands of 20 accounts; meanwhile a consumer is SIGKILLed and replaced, the node leading
# `<prefix>.profiles` is stopped and started again, a Redis primary is SIGKILLed and the node a consumer is
# connected to is stopped. Then every request the relay sent to its klaviyo-sim is checked against Klaviyo's spec.
# See docs/testing.md "Cluster chaos test".
#
#   scripts/test/cluster-chaos.sh                              # builds if needed
#   CLUSTER_CHAOS_SKIP_BUILD=1 scripts/test/cluster-chaos.sh   # the caller already built (scripts/test.sh)
#
# Its servers are its own, on ports clear of the development servers and of the test suite's clusters
# (RabbitMQ cluster 5681-5683, Redis Cluster 7101-7106): RabbitMQ nodes on CLUSTER_CHAOS_RABBITMQ_BASE_PORT+1..+3
# (base 5780: AMQP 5781-5783), Redis Cluster on CLUSTER_CHAOS_REDIS_BASE_PORT..+5 (7301-7306), klaviyo-sim on
# CLUSTER_CHAOS_SIM_PORT (18791, rate limits off). Clusters this script started are stopped (and their data
# deleted) at exit, whether the test passed or not; a cluster that was already healthy is reused and left running.
#
# Environment: CLUSTER_CHAOS_RABBITMQ_BASE_PORT, CLUSTER_CHAOS_REDIS_BASE_PORT, CLUSTER_CHAOS_SIM_PORT,
# CLUSTER_CHAOS_COMMANDS (5000), CLUSTER_CHAOS_PACE_MS (10: about 100 commands/s), CLUSTER_CHAOS_SKIP_BUILD=1.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"
require_swift >/dev/null

export CLUSTER_CHAOS_RABBITMQ_BASE_PORT="${CLUSTER_CHAOS_RABBITMQ_BASE_PORT:-5780}"
export CLUSTER_CHAOS_REDIS_BASE_PORT="${CLUSTER_CHAOS_REDIS_BASE_PORT:-7301}"
sim_port="${CLUSTER_CHAOS_SIM_PORT:-18791}"
sim_started=false

cleanup() {
    local rc=$?
    [[ "$sim_started" == true ]] && stop_sim "$sim_port"
    stop_local_clusters
    exit "$rc"
}
trap cleanup EXIT

started="$(now_ms)"
if [[ "${CLUSTER_CHAOS_SKIP_BUILD:-0}" != 1 ]]; then
    build_with_tests cluster-chaos-build
fi

start_local_clusters "$CLUSTER_CHAOS_RABBITMQ_BASE_PORT" "$CLUSTER_CHAOS_REDIS_BASE_PORT"
export RELAY_AMQP_URL="$CLUSTER_AMQP_URL" RELAY_REDIS_URL="$CLUSTER_REDIS_URL"
log "clusters ready after $(elapsed_since "$started"): $RELAY_AMQP_URL $RELAY_REDIS_URL"

start_test_sim "$sim_port" klaviyo-sim-cluster-chaos --rate-limits off --log-level warning
sim_started=true
export RELAY_CLUSTER_CHAOS=1

test_started="$(now_ms)"
swift test --skip-build --filter ClusterChaosTests
log "cluster chaos test took $(elapsed_since "$test_started")"
# A Redis Cluster primary down with no replica to take over (three tests: per-command, batched events and coalesced
# upserts, the rate limiter's gate alone; about 2.5 min), on the same clusters, after the chaos test (it stops a
# primary, then starts it again): docs/testing.md "Shard outage test".
test_started="$(now_ms)"
swift test --skip-build --filter ShardOutageTests
log "shard outage test took $(elapsed_since "$test_started")"

python3 scripts/check/check-requests-against-spec.py --min-requests 2000 "$KLAVIYO_SIM_URL"
log "cluster chaos step took $(elapsed_since "$started") in all"
