#!/usr/bin/env bash
# A local 3-node RabbitMQ cluster on loopback, for cluster tests and chaos runs (no systemd, as root).
#
# Usage: scripts/dev/rabbitmq-cluster.sh [--base-port B] COMMAND
#
#   start            start the three nodes (those not running), cluster them, print the AMQP URL list on
#                    stdout (RELAY_AMQP_URL for the cluster). Idempotent: a running cluster is reused.
#   stop [--keep-data]  stop every node and delete the cluster's data (--keep-data keeps it).
#   status           one line per node (running / app stopped / down) and the cluster's running nodes;
#                    exit 1 unless all three nodes are up and clustered.
#   stop-node N [--hard]  stop node N (1-3): `stop_app` (the gentle failure: the node's Erlang VM stays up,
#                    its connections close and its quorum queue members go away), or with --hard the
#                    whole node (`rabbitmqctl stop`).
#   start-node N     bring node N back (start_app, or start the node if it was stopped --hard) and wait
#                    until it runs again.
#   leader QUEUE     print the node that leads quorum queue QUEUE (vhost /), e.g. rabbit2@localhost.
#   urls             print the AMQP URL list without starting anything.
#
# Nodes: rabbit1@localhost, rabbit2@localhost, rabbit3@localhost (with --base-port other than 5680:
# rabbit<port>@localhost), AMQP on 127.0.0.1:B+1..B+3 (default 5681-5683), Erlang distribution on
# B+20001..B+20003, no plugins. The single development broker (node rabbit@localhost on 5672, started by
# scripts/dev/services.sh) is a different node and keeps running. Data and logs: $VAR_DIR/rabbitmq-cluster
# (rabbitmq-cluster-B for another base port), mode 755 so the rabbitmq user can reach it.
# The cluster is heavy on a small machine: stop it when done.
#
# Environment: CLUSTER_START_TIMEOUT [90] seconds to wait for each node; RELAY_VAR_DIR as in lib.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

BASE_PORT=5680
CLUSTER_START_TIMEOUT="${CLUSTER_START_TIMEOUT:-90}"
HOST=127.0.0.1

usage() {
    awk 'NR > 2 && !/^#/ { exit } NR > 2 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"
}

# node_name I: the Erlang node name of node I.
node_name() {
    if ((BASE_PORT == 5680)); then
        printf 'rabbit%d@localhost\n' "$1"
    else
        printf 'rabbit%d@localhost\n' "$((BASE_PORT + $1))"
    fi
}

amqp_port() { printf '%d\n' "$((BASE_PORT + $1))"; }
dist_port() { printf '%d\n' "$((BASE_PORT + 20000 + $1))"; }
node_dir() { printf '%s/n%d\n' "$CLUSTER_DIR" "$1"; }

ctl() {
    local i="$1"
    shift
    rabbitmqctl -q -n "$(node_name "$i")" "$@"
}

# node_running I: the node's Erlang VM answers (its RabbitMQ application may be stopped).
node_running() {
    ctl "$1" ping >/dev/null 2>&1
}

# app_running I: the node runs the RabbitMQ application (accepts AMQP connections).
app_running() {
    ctl "$1" status >/dev/null 2>&1 && port_open "$HOST" "$(amqp_port "$1")"
}

urls() {
    local list=() i
    for i in 1 2 3; do list+=("amqp://guest:guest@$HOST:$(amqp_port "$i")/%2f"); done
    (
        IFS=,
        printf '%s\n' "${list[*]}"
    )
}

# await_node I: wait until node I has fully booted (await_startup exits 69 until the node registers with epmd).
await_node() {
    local i="$1" deadline=$((SECONDS + CLUSTER_START_TIMEOUT))
    until ctl "$i" await_startup --timeout 10 >/dev/null 2>&1 && port_open "$HOST" "$(amqp_port "$i")"; do
        if ((SECONDS >= deadline)); then
            tail -n 30 "$(node_dir "$i")/log/$(node_name "$i").log" >&2 2>/dev/null || true
            die "node $(node_name "$i") not up after ${CLUSTER_START_TIMEOUT}s (logs: $(node_dir "$i")/log)"
        fi
        sleep 0.5
    done
}

# launch_node I: start node I's Erlang VM detached (returns at once).
launch_node() {
    local i="$1" d
    d="$(node_dir "$i")"
    mkdir -p "$d/mnesia" "$d/log"
    [[ -f "$d/enabled_plugins" ]] || echo '[].' >"$d/enabled_plugins"
    chown -R rabbitmq:rabbitmq "$d"
    for port in "$(amqp_port "$i")" "$(dist_port "$i")"; do
        if port_open "$HOST" "$port"; then
            die "port $port (for $(node_name "$i")) is taken by something else; choose another --base-port"
        fi
    done
    # An empty config file: /etc/rabbitmq/rabbitmq.conf (if any) is the development broker's, not ours.
    : >"$d/rabbitmq.conf"
    chown rabbitmq:rabbitmq "$d/rabbitmq.conf"
    # The node must not hold its caller's pipes and sockets (lib.sh): a test that ran this script would wait forever.
    (
        close_inherited_descriptors
        RABBITMQ_NODENAME="$(node_name "$i")" RABBITMQ_NODE_PORT="$(amqp_port "$i")" \
            RABBITMQ_DIST_PORT="$(dist_port "$i")" RABBITMQ_NODE_IP_ADDRESS="$HOST" \
            RABBITMQ_MNESIA_BASE="$d/mnesia" RABBITMQ_LOG_BASE="$d/log" \
            RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" RABBITMQ_CONFIG_FILE="$d/rabbitmq.conf" \
            RABBITMQ_PID_FILE="$d/rabbitmq.pid" exec rabbitmq-server -detached
    ) >"$d/detached.log" 2>&1 ||
        die "'rabbitmq-server -detached' failed for $(node_name "$i"): $(tail -n 5 "$d/detached.log")"
}

# clustered I: node I is among node 1's running nodes.
clustered() {
    local running
    running="$(ctl 1 cluster_status --formatter json 2>/dev/null |
        python3 -c 'import json,sys; print(" ".join(json.load(sys.stdin).get("running_nodes", [])))' 2>/dev/null)" ||
        return 1
    [[ " $running " == *" $(node_name "$1") "* ]]
}

start_cluster() {
    need_root "starting RabbitMQ nodes"
    have rabbitmq-server || die "rabbitmq-server not installed (run scripts/dev/install-deps.sh)"
    mkdir -p "$CLUSTER_DIR"
    chmod 755 "$VAR_DIR" "$CLUSTER_DIR"
    local started i launched=()
    started="$(now_ms)"
    for i in 1 2 3; do
        if node_running "$i"; then
            app_running "$i" || ctl "$i" start_app >/dev/null
        else
            launch_node "$i"
            launched+=("$i")
        fi
    done
    for i in 1 2 3; do await_node "$i"; done
    for i in 2 3; do
        clustered "$i" && continue
        log "joining $(node_name "$i") to $(node_name 1)"
        ctl "$i" stop_app >/dev/null
        # join_cluster prints harmless "tracked connection table" errors while the app is down.
        ctl "$i" join_cluster "$(node_name 1)" >/dev/null 2>&1 || die "$(node_name "$i") could not join $(node_name 1)"
        ctl "$i" start_app >/dev/null
        await_node "$i"
    done
    for i in 2 3; do clustered "$i" || die "$(node_name "$i") is not a running member of the cluster"; done
    if ((${#launched[@]} > 0)); then
        log "cluster up in $(elapsed_since "$started") (started node(s) ${launched[*]}; data in $CLUSTER_DIR)"
    else
        log "cluster already running (reused)"
    fi
    urls
}

stop_cluster() {
    local keep="$1" i started
    started="$(now_ms)"
    for i in 3 2 1; do
        if node_running "$i"; then
            need_root "stopping RabbitMQ nodes"
            ctl "$i" stop >/dev/null 2>&1 || warn "'rabbitmqctl stop' failed for $(node_name "$i")"
        fi
    done
    for i in 1 2 3; do
        wait_for_port_closed "$HOST" "$(amqp_port "$i")" 30 || die "$(node_name "$i") still listening after 30s"
        local pidfile pid
        pidfile="$(node_dir "$i")/rabbitmq.pid"
        pid="$(cat "$pidfile" 2>/dev/null || true)"
        local deadline=$((SECONDS + 30))
        while [[ -n "$pid" && -d "/proc/$pid" ]]; do
            ((SECONDS < deadline)) || die "$(node_name "$i") (pid $pid) still running after 30s"
            sleep 0.1
        done
    done
    if [[ "$keep" != true && -d "$CLUSTER_DIR" ]]; then
        rm -rf "$CLUSTER_DIR"
    fi
    log "cluster stopped in $(elapsed_since "$started")$([[ "$keep" == true ]] || echo ' (data deleted)')"
}

status_cluster() {
    local rc=0 i state
    for i in 1 2 3; do
        if app_running "$i"; then
            state="running"
            clustered "$i" || {
                state="running, NOT clustered with $(node_name 1)"
                rc=1
            }
        elif node_running "$i"; then
            state="app stopped"
            rc=1
        else
            state="down"
            rc=1
        fi
        printf '%-22s %s:%s  %s\n' "$(node_name "$i")" "$HOST" "$(amqp_port "$i")" "$state"
    done
    return "$rc"
}

node_index() {
    [[ "${1:-}" =~ ^[123]$ ]] || die "node must be 1, 2 or 3 (got '${1:-}')"
    printf '%s\n' "$1"
}

stop_node() {
    local i="$1" hard="$2" started
    started="$(now_ms)"
    need_root "stopping a RabbitMQ node"
    if [[ "$hard" == true ]]; then
        ctl "$i" stop >/dev/null || die "'rabbitmqctl stop' failed for $(node_name "$i")"
    else
        ctl "$i" stop_app >/dev/null || die "'rabbitmqctl stop_app' failed for $(node_name "$i")"
    fi
    wait_for_port_closed "$HOST" "$(amqp_port "$i")" 30 || die "$(node_name "$i") still listening after 30s"
    log "$(node_name "$i") stopped$([[ "$hard" == true ]] && echo ' (whole node)') in $(elapsed_since "$started")"
}

start_node() {
    local i="$1" started
    started="$(now_ms)"
    need_root "starting a RabbitMQ node"
    if node_running "$i"; then
        app_running "$i" || ctl "$i" start_app >/dev/null
    else
        launch_node "$i"
    fi
    await_node "$i"
    log "$(node_name "$i") running again in $(elapsed_since "$started")"
}

# leader QUEUE: asks each running node in turn (the one asked may be the one that is down).
leader() {
    local queue="$1" i answer
    for i in 1 2 3; do
        answer="$(ctl "$i" list_queues name leader --formatter json 2>/dev/null |
            python3 -c 'import json,sys
for q in json.load(sys.stdin):
    if q["name"] == sys.argv[1]: print(q.get("leader", ""))' "$queue" 2>/dev/null)" || continue
        if [[ -n "$answer" ]]; then
            printf '%s\n' "$answer"
            return 0
        fi
    done
    die "no running node knows quorum queue '$queue'"
}

main() {
    local args=()
    while (($# > 0)); do
        case "$1" in
        --base-port)
            [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || die "--base-port needs a number"
            BASE_PORT="$2"
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) args+=("$1") ;;
        esac
        shift
    done
    ((BASE_PORT >= 1024 && BASE_PORT + 20003 <= 65535)) || die "--base-port must be in 1024..45532"
    if ((BASE_PORT == 5680)); then
        CLUSTER_DIR="$VAR_DIR/rabbitmq-cluster"
    else
        CLUSTER_DIR="$VAR_DIR/rabbitmq-cluster-$BASE_PORT"
    fi
    set -- "${args[@]}"
    local command="${1:-}"
    [[ -n "$command" ]] || {
        usage >&2
        exit 2
    }
    shift
    case "$command" in
    start) start_cluster ;;
    stop) stop_cluster "$([[ "${1:-}" == --keep-data ]] && echo true || echo false)" ;;
    status) status_cluster ;;
    stop-node) stop_node "$(node_index "${1:-}")" "$([[ "${2:-}" == --hard ]] && echo true || echo false)" ;;
    start-node) start_node "$(node_index "${1:-}")" ;;
    leader)
        [[ -n "${1:-}" ]] || die "leader needs a queue name"
        leader "$1"
        ;;
    urls) urls ;;
    help) usage ;;
    *)
        usage >&2
        die "unknown command: $command"
        ;;
    esac
}

main "$@"
