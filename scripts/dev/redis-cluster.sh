#!/usr/bin/env bash
# A local Redis Cluster on loopback: 3 primaries + 3 replicas, for cluster tests and chaos runs.
#
# Usage: scripts/dev/redis-cluster.sh COMMAND [--base-port B]
#
#   start    start the six nodes (those not running), create the cluster if it has no slots yet, wait until
#            `cluster_state:ok`, and print the URL to use on stdout (RELAY_REDIS_URL for the cluster).
#            Idempotent: a running, healthy cluster is reused (printed and exit 0). A node that is down
#            (killed by a test) is started again and rejoins as a replica.
#   stop     shut every node down and delete the cluster's data.
#   status   one line per node (role, or down) and the cluster state; exit 1 unless all six nodes are up,
#            the cluster state is ok and the three replicas are in sync.
#   url      print the URL without starting anything.
#
# Ports: 127.0.0.1:B..B+5 (default 7001-7006; the cluster bus on port+10000). The first three start as
# primaries, the last three as their replicas (a failover may swap roles later). No persistence (no RDB,
# no AOF); node timeout 2 s, so a killed primary's replica is promoted within a few seconds.
# Data and logs: $VAR_DIR/redis-cluster (redis-cluster-B for another base port).
#
# Environment: CLUSTER_START_TIMEOUT [30] seconds to wait for the nodes and the cluster state; RELAY_VAR_DIR
# as in lib.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

BASE_PORT=7001
CLUSTER_START_TIMEOUT="${CLUSTER_START_TIMEOUT:-30}"
HOST=127.0.0.1

usage() {
    awk 'NR > 2 && !/^#/ { exit } NR > 2 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"
}

ports() {
    local i
    for i in 0 1 2 3 4 5; do printf '%d\n' "$((BASE_PORT + i))"; done
}

cli() {
    local port="$1"
    shift
    redis-cli -h "$HOST" -p "$port" "$@"
}

node_up() {
    [[ "$(cli "$1" ping 2>/dev/null)" == "PONG" ]]
}

url() {
    local list=() port
    for port in $(ports); do list+=("$HOST:$port"); done
    (
        IFS=,
        printf 'redis-cluster://%s\n' "${list[*]}"
    )
}

# cluster_field PORT NAME: one field of `CLUSTER INFO` on node PORT (empty if the node is down).
cluster_field() {
    cli "$1" cluster info 2>/dev/null | tr -d '\r' | awk -F: -v name="$2" '$1 == name { print $2 }'
}

# replica_link_up PORT: node PORT is a replica in sync with its primary.
replica_link_up() {
    local link
    link="$(cli "$1" info replication 2>/dev/null | tr -d '\r' | awk -F: '$1 == "master_link_status" { print $2 }')"
    [[ "$link" == "up" ]]
}

# cluster_ok: every node up and seeing the cluster ok, and three replicas in sync (so that a primary can fail).
cluster_ok() {
    local port synced=0
    for port in $(ports); do
        node_up "$port" || return 1
        [[ "$(cluster_field "$port" cluster_state)" == "ok" ]] || return 1
        [[ "$(cluster_field "$port" cluster_known_nodes)" == "6" ]] || return 1
        if replica_link_up "$port"; then synced=$((synced + 1)); fi
    done
    ((synced == 3))
}

start_node() {
    local port="$1" dir="$CLUSTER_DIR/$1"
    mkdir -p "$dir"
    # The daemon must not keep the caller's descriptors (a test runner's pipes and sockets) open.
    (
        close_inherited_descriptors
        exec redis-server --port "$port" --bind "$HOST" --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" \
            --cluster-node-timeout 2000 --dir "$dir" --daemonize yes --save '' --appendonly no \
            --pidfile "$dir/redis.pid" --logfile "$dir/log" </dev/null >/dev/null 2>&1
    )
}

start() {
    have redis-server && have redis-cli || die "redis-server and redis-cli are required (apt-get install redis-server)"
    if cluster_ok; then
        log "Redis Cluster already running on $HOST:$BASE_PORT-$((BASE_PORT + 5))"
        url
        return 0
    fi
    mkdir -p "$CLUSTER_DIR"
    local port
    for port in $(ports); do
        if node_up "$port"; then
            continue
        fi
        if port_open "$HOST" "$port"; then
            die "port $port is taken by something that is not a Redis node; choose another --base-port"
        fi
        start_node "$port"
    done
    local deadline=$((SECONDS + CLUSTER_START_TIMEOUT))
    for port in $(ports); do
        until node_up "$port"; do
            ((SECONDS < deadline)) || die "node $port did not start (see $CLUSTER_DIR/$port/log)"
            sleep 0.1
        done
    done
    if [[ "$(cluster_field "$BASE_PORT" cluster_slots_assigned)" == "0" ]]; then
        local nodes=()
        for port in $(ports); do nodes+=("$HOST:$port"); done
        log "creating the cluster: ${nodes[*]}"
        redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$CLUSTER_DIR/create.log" 2>&1 ||
            die "redis-cli --cluster create failed (see $CLUSTER_DIR/create.log)"
    fi
    until cluster_ok; do
        ((SECONDS < deadline)) || die "the cluster did not reach cluster_state:ok within ${CLUSTER_START_TIMEOUT}s"
        sleep 0.1
    done
    log "Redis Cluster ok on $HOST:$BASE_PORT-$((BASE_PORT + 5))"
    url
}

stop() {
    local port pid
    for port in $(ports); do
        if node_up "$port"; then
            cli "$port" shutdown nosave >/dev/null 2>&1 || true
        fi
        # A node that does not answer (paused by DEBUG SLEEP, stuck) is killed through its pid file.
        if [[ -f "$CLUSTER_DIR/$port/redis.pid" ]]; then
            pid="$(cat "$CLUSTER_DIR/$port/redis.pid" 2>/dev/null || true)"
            if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
                kill -9 "$pid" 2>/dev/null || true
            fi
        fi
    done
    for port in $(ports); do
        wait_for_port_closed "$HOST" "$port" 10 || warn "port $port still open"
    done
    rm -rf "$CLUSTER_DIR"
    log "Redis Cluster on $HOST:$BASE_PORT-$((BASE_PORT + 5)) stopped"
}

status() {
    local port role healthy=0
    for port in $(ports); do
        if node_up "$port"; then
            role="$(cli "$port" role 2>/dev/null | head -1)"
            printf '%s:%d %s\n' "$HOST" "$port" "$role"
        else
            printf '%s:%d down\n' "$HOST" "$port"
            healthy=1
        fi
    done
    local state
    state="$(cluster_field "$BASE_PORT" cluster_state || true)"
    printf 'cluster_state: %s\n' "${state:-unknown}"
    [[ "$state" == "ok" ]] && cluster_ok || healthy=1
    return "$healthy"
}

main() {
    local command=""
    while (($# > 0)); do
        case "$1" in
        --base-port)
            [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || die "--base-port needs a number"
            BASE_PORT="$2"
            shift
            ;;
        -h | --help)
            usage
            return 0
            ;;
        start | stop | status | url)
            [[ -z "$command" ]] || die "one command at a time"
            command="$1"
            ;;
        *) die "unknown argument: $1 (see --help)" ;;
        esac
        shift
    done
    ((BASE_PORT >= 1024 && BASE_PORT + 5 + 10000 <= 65535)) || die "--base-port must be in 1024..55530"
    if ((BASE_PORT == 7001)); then
        CLUSTER_DIR="$VAR_DIR/redis-cluster"
    else
        CLUSTER_DIR="$VAR_DIR/redis-cluster-$BASE_PORT"
    fi
    case "$command" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    url) url ;;
    *)
        usage >&2
        return 2
        ;;
    esac
}

main "$@"
