#!/usr/bin/env bash
# Benchmark on a cluster (issue #10): the same load as scripts/bench/relay.sh, measured in one run on the single
# development servers (RabbitMQ 5672, Redis 6379) and on a 3-node RabbitMQ cluster with a Redis Cluster of
# 3 primaries + 3 replicas, with the ratio cluster / single node. The consumers and the bench's publisher get the
# cluster's URL lists (each process connects to a random RabbitMQ node). Prints the comparison table; writes
# bench-results/cluster.json (the per-scenario reports of `klaviyo-relay-bench` stay in var/cluster-bench/).
#
#   scripts/bench/cluster.sh [--commands N] [--consumers N] [--scenarios baseline,relay-0ms,relay-100ms]
#
# Defaults: 20,000 commands per scenario, 2 consumer processes, scenarios baseline, relay-0ms and relay-100ms
# (as in relay.sh). Besides the bench's own figures (throughput, p50/p99, the consumers' CPU per 1,000 commands and
# peak RSS), it reads the servers' CPU (RabbitMQ's Erlang VMs and the Redis processes, from /proc) over each
# scenario, from the bench's start to its exit (set-up and clean-up included).
#
# Its clusters are its own, on ports clear of the development clusters and the tests': RabbitMQ nodes on
# CLUSTER_BENCH_RABBITMQ_BASE_PORT+1..+3 (base 5880: AMQP 5881-5883), Redis Cluster on
# CLUSTER_BENCH_REDIS_BASE_PORT..+5 (7401-7406), klaviyo-sim (release, rate limits off) on CLUSTER_BENCH_SIM_PORT
# (18095). Clusters this script started are stopped (and their data deleted) at exit, whether the run passed or
# not; a cluster that was already healthy is reused and left running. The single servers are started if down
# (like relay.sh) and never stopped.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"

commands=20000
consumers=2
scenarios="baseline,relay-0ms,relay-100ms"
while (($# > 0)); do
    case "$1" in
        --commands | --consumers | --scenarios)
            [[ $# -ge 2 ]] || die "$1 needs a value"
            case "$1" in
                --commands) commands="$2" ;;
                --consumers) consumers="$2" ;;
                --scenarios) scenarios="$2" ;;
            esac
            shift 2
            ;;
        -h | --help)
            awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"
            exit 0
            ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

rabbitmq_base="${CLUSTER_BENCH_RABBITMQ_BASE_PORT:-5880}"
redis_base="${CLUSTER_BENCH_REDIS_BASE_PORT:-7401}"
sim_port="${CLUSTER_BENCH_SIM_PORT:-18095}"
results_dir="$(var_path cluster-bench)"
sim_started=false

cleanup() {
    local rc=$?
    [[ "$sim_started" == true ]] && stop_sim "$sim_port"
    stop_local_clusters
    exit "$rc"
}
trap cleanup EXIT

started="$(now_ms)"
scripts/dev/install-deps.sh
require_swift >/dev/null
scripts/dev/services.sh start
log "building release binaries (takes a few minutes the first time)…"
swift build -c release 2>&1 | grep -E "error:|Build complete" >&2 || true
[[ -x .build/release/klaviyo-relay && -x .build/release/klaviyo-relay-bench && -x .build/release/klaviyo-sim ]] \
    || die "release build failed"

# A cluster that is not healthy (absent, or left half-down by an interrupted run) is (re)started here and ours.
start_local_clusters "$rabbitmq_base" "$redis_base"
cluster_amqp_url="$CLUSTER_AMQP_URL"
cluster_redis_url="$CLUSTER_REDIS_URL"
log "clusters ready after $(elapsed_since "$started"): $cluster_amqp_url $cluster_redis_url"

SIM_BINARY="$REPO_ROOT/.build/release/klaviyo-sim"
stop_sim "$sim_port"
port_open 127.0.0.1 "$sim_port" && die "port $sim_port is taken: stop what listens there or set CLUSTER_BENCH_SIM_PORT"
start_sim "$sim_port" "$(var_path klaviyo-sim-cluster-bench.log)" --rate-limits off --record-capacity 1 \
    --log-level warning
sim_started=true

# server_pids TOPOLOGY: the pids of the servers a topology runs on (RabbitMQ's Erlang VMs, the Redis processes).
server_pids() {
    local node port
    if [[ "$1" == single ]]; then
        rabbitmqctl -q -n rabbit@localhost eval 'os:getpid().' | tr -d '"'
        redis-cli -h 127.0.0.1 -p 6379 info server | tr -d '\r' | awk -F: '$1 == "process_id" { print $2 }'
    else
        for node in 1 2 3; do
            rabbitmqctl -q -n "rabbit$((rabbitmq_base + node))@localhost" eval 'os:getpid().' | tr -d '"'
        done
        for port in $(seq "$redis_base" $((redis_base + 5))); do
            redis-cli -h 127.0.0.1 -p "$port" info server | tr -d '\r' | awk -F: '$1 == "process_id" { print $2 }'
        done
    fi
}

# cpu_ticks PID...: user + system CPU of the processes, in clock ticks (fields 14 and 15 of /proc/PID/stat).
cpu_ticks() {
    local pid total=0 ticks
    for pid in "$@"; do
        ticks="$(sed 's/^.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }')"
        total=$((total + ticks))
    done
    printf '%d\n' "$total"
}

rm -rf "$results_dir"
mkdir -p "$results_dir"
clock_ticks="$(getconf CLK_TCK)"
bench_started="$(now_ms)"
for topology in single cluster; do
    if [[ "$topology" == single ]]; then
        amqp_url="amqp://guest:guest@127.0.0.1:5672/%2f"
        redis_url="redis://127.0.0.1:6379/0"
    else
        amqp_url="$cluster_amqp_url"
        redis_url="$cluster_redis_url"
    fi
    mapfile -t pids < <(server_pids "$topology")
    ((${#pids[@]} > 0)) || die "no server pids for the $topology topology"
    IFS=, read -r -a names <<<"$scenarios"
    for scenario in "${names[@]}"; do
        log "$topology: $scenario ($commands commands, $consumers consumers) on $amqp_url"
        before="$(cpu_ticks "${pids[@]}")"
        RELAY_AMQP_URL="$amqp_url" RELAY_REDIS_URL="$redis_url" RELAY_LOG_LEVEL="${RELAY_LOG_LEVEL:-warning}" \
            .build/release/klaviyo-relay-bench --dev --sim-url "http://127.0.0.1:$sim_port" \
            --commands "$commands" --consumers "$consumers" --scenarios "$scenario" \
            --report "$results_dir/$topology-$scenario.json" >&2
        after="$(cpu_ticks "${pids[@]}")"
        printf '{"server_cpu_seconds": %s, "server_processes": %d}\n' \
            "$(awk -v t=$((after - before)) -v hz="$clock_ticks" 'BEGIN { printf "%.2f", t / hz }')" "${#pids[@]}" \
            >"$results_dir/$topology-$scenario.servers.json"
    done
done
log "both topologies measured in $(elapsed_since "$bench_started")"

mkdir -p bench-results
python3 scripts/bench/cluster-compare.py --scenarios "$scenarios" --out bench-results/cluster.json "$results_dir"
log "cluster benchmark took $(elapsed_since "$started") in all"
