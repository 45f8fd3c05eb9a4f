#!/usr/bin/env bash
# Start, stop and inspect the local RabbitMQ and Redis used for development, tests and CI (no systemd).
#
# Usage: scripts/dev/services.sh COMMAND [OPTIONS] [SERVICE]
#
#   start [--record FILE] [SERVICE]  start SERVICE (redis, rabbitmq; default both) and wait until ready.
#                                    A server already listening is reused ("reusing"), never restarted.
#                                    --record FILE appends the names of the services actually started.
#   stop [--force] [SERVICE]         stop what this script started (recorded in var/services/);
#                                    --force also stops servers it did not start.
#   status [SERVICE]                 print one line per service; exit 1 if any is down.
#   restart-rabbitmq [--force]       stop, start and wait until ready, printing how long each took
#   restart-redis [--force]          (chaos tests). --force is needed for a server this script did not start.
#   clean-test-leftovers             delete queues/exchanges that aborted test runs left behind
#                                    (prefixes it-, amqp-tests., chaos-, bench-)
#   cluster-start|cluster-stop|cluster-status
#                                    the local clusters, beside the single servers above: a 3-node RabbitMQ
#                                    cluster (scripts/dev/rabbitmq-cluster.sh, AMQP 5681-5683) and, when
#                                    scripts/dev/redis-cluster.sh exists, a Redis Cluster; cluster-start prints
#                                    the RabbitMQ URL list. Heavy on a small machine: cluster-stop when done.
#
# Environment (defaults in brackets):
#   REDIS_PORT [6379]                 Redis port (bound to 127.0.0.1); use e.g. 6390 for a private instance
#   AMQP_PORT [5672]                  AMQP port used for checks only; the broker itself always listens on 5672
#   MGMT_PORT [15672]                 management HTTP port used for checks only
#   RABBITMQ_START_TIMEOUT [90]       seconds to wait for RabbitMQ before failing with its log tail
#   REDIS_START_TIMEOUT [10]          seconds to wait for Redis
#   RELAY_VAR_DIR [<repo>/var]        state dir: pid files, ownership markers, logs
#
# RabbitMQ always runs as node rabbit@localhost (hostname-independent) through the Debian /usr/sbin
# wrappers, which switch to the rabbitmq user and its Erlang cookie. Starting or stopping it needs root.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

export RABBITMQ_NODENAME=rabbit@localhost
REDIS_PORT="${REDIS_PORT:-6379}"
AMQP_PORT="${AMQP_PORT:-5672}"
MGMT_PORT="${MGMT_PORT:-15672}"
RABBITMQ_START_TIMEOUT="${RABBITMQ_START_TIMEOUT:-90}"
REDIS_START_TIMEOUT="${REDIS_START_TIMEOUT:-10}"
HOST=127.0.0.1

STATE_DIR="$VAR_DIR/services"
REDIS_DIR="$STATE_DIR/redis-$REDIS_PORT"
REDIS_MARKER="$STATE_DIR/redis-$REDIS_PORT.started"
RABBIT_MARKER="$STATE_DIR/rabbitmq.started"
EPMD_MARKER="$STATE_DIR/epmd.started"
RABBIT_PIDFILE="/var/lib/rabbitmq/mnesia/$RABBITMQ_NODENAME.pid"
RABBIT_LOG="/var/log/rabbitmq/$RABBITMQ_NODENAME.log"
# TLS: a private test CA and a server certificate for DNS name "localhost" only, so tests can prove that
# amqps:// verifies the certificate and the host name. The broker reads them from its own home.
AMQPS_PORT="${AMQPS_PORT:-5671}"
TLS_DIR="$STATE_DIR/tls"
RABBIT_TLS_DIR=/var/lib/rabbitmq/relay-tls

usage() {
    awk 'NR > 2 && !/^#/ { exit } NR > 2 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"
}

# ---------------------------------------------------------------------------------------------------------
# Redis

redis_up() {
    port_open "$HOST" "$REDIS_PORT" && [[ "$(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
}

redis_pid() {
    redis-cli -h "$HOST" -p "$REDIS_PORT" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p'
}

redis_owned() {
    [[ -f "$REDIS_MARKER" ]] && [[ "$(cat "$REDIS_MARKER")" == "$(redis_pid)" ]]
}

start_redis() {
    have redis-server || die "redis-server not installed (run scripts/dev/install-deps.sh)"
    if redis_up; then
        if redis_owned; then
            log "redis: already running on $HOST:$REDIS_PORT (pid $(redis_pid), started by this script)"
        else
            log "redis: reusing server on $HOST:$REDIS_PORT (pid $(redis_pid))"
        fi
        return 0
    fi
    if port_open "$HOST" "$REDIS_PORT"; then
        die "redis: port $REDIS_PORT is in use by something that does not answer PING"
    fi
    rm -f "$REDIS_MARKER"
    mkdir -p "$REDIS_DIR"
    local started
    started="$(now_ms)"
    # A restart loads the snapshot taken just before it (REDIS_RESTART_RDB); a plain start begins empty.
    local snapshot=()
    if [[ -n "${REDIS_RESTART_RDB:-}" ]]; then
        snapshot=(--dbfilename "$(basename "$REDIS_RESTART_RDB")")
    fi
    (
        close_inherited_descriptors # the daemon must not hold its caller's pipes and sockets (lib.sh)
        exec redis-server --daemonize yes --port "$REDIS_PORT" --bind "$HOST" --save '' --appendonly no \
            --dir "$REDIS_DIR" --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" "${snapshot[@]}"
    )
    local deadline=$((SECONDS + REDIS_START_TIMEOUT))
    until redis_up; do
        if ((SECONDS >= deadline)); then
            tail -n 20 "$REDIS_DIR/redis.log" >&2 || true
            die "redis: not ready on $HOST:$REDIS_PORT after ${REDIS_START_TIMEOUT}s (log: $REDIS_DIR/redis.log)"
        fi
        sleep 0.05
    done
    redis_pid >"$REDIS_MARKER"
    record redis
    log "redis: started on $HOST:$REDIS_PORT (pid $(cat "$REDIS_MARKER")) in $(elapsed_since "$started")"
}

stop_redis() {
    local force="$1"
    if ! redis_up; then
        rm -f "$REDIS_MARKER"
        log "redis: not running on $HOST:$REDIS_PORT"
        return 0
    fi
    if ! redis_owned && [[ "$force" != true ]]; then
        log "redis: leaving $HOST:$REDIS_PORT running (not started by this script; --force stops it)"
        return 0
    fi
    local started
    started="$(now_ms)"
    redis-cli -h "$HOST" -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    wait_for_port_closed "$HOST" "$REDIS_PORT" 10 || die "redis: still listening on $HOST:$REDIS_PORT after 10s"
    rm -f "$REDIS_MARKER"
    log "redis: stopped $HOST:$REDIS_PORT in $(elapsed_since "$started")"
}

status_redis() {
    if redis_up; then
        local who="reused: not started by this script"
        redis_owned && who="started by this script"
        printf 'redis     up    %s:%s  pid %s  (%s)\n' "$HOST" "$REDIS_PORT" "$(redis_pid)" "$who"
    else
        printf 'redis     down  %s:%s\n' "$HOST" "$REDIS_PORT"
        return 1
    fi
}

# ---------------------------------------------------------------------------------------------------------
# RabbitMQ

rabbit_up() {
    port_open "$HOST" "$AMQP_PORT"
}

rabbit_pid() {
    local pid
    pid="$(cat "$RABBIT_PIDFILE" 2>/dev/null)" || return 1
    [[ -n "$pid" && -d "/proc/$pid" ]] && printf '%s\n' "$pid"
}

rabbit_owned() {
    [[ -f "$RABBIT_MARKER" ]] && [[ "$(cat "$RABBIT_MARKER")" == "$(rabbit_pid)" ]]
}

# rabbit_ready TIMEOUT: retry `rabbitmqctl await_startup` until TIMEOUT seconds have passed. It exits 69
# until the freshly started node has registered with epmd, so a single call is not enough.
rabbit_ready() {
    local deadline=$((SECONDS + $1))
    until rabbitmqctl -q await_startup --timeout 10 >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.5
    done
}

management_note() {
    if ! wait_for_port "$HOST" "$MGMT_PORT" 15; then
        warn "rabbitmq: management API not listening on $HOST:$MGMT_PORT"
    fi
}

# ensure_tls: makes the test CA and the broker's certificate (once; 10 years) and the broker configuration
# that adds an amqps listener on AMQPS_PORT next to 5672. The CA is $TLS_DIR/ca.pem (tests read it).
ensure_tls() {
    have openssl || die "openssl not installed (run scripts/dev/install-deps.sh)"
    mkdir -p "$TLS_DIR"
    if [[ ! -s "$TLS_DIR/server.pem" ]]; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=klaviyo-relay test CA" \
            -keyout "$TLS_DIR/ca.key" -out "$TLS_DIR/ca.pem" >/dev/null 2>&1 || die "openssl: could not make the test CA"
        openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$TLS_DIR/server.key" \
            -out "$TLS_DIR/server.csr" >/dev/null 2>&1 || die "openssl: could not make the server key"
        printf 'subjectAltName=DNS:localhost\n' >"$TLS_DIR/san.ext"
        openssl x509 -req -in "$TLS_DIR/server.csr" -CA "$TLS_DIR/ca.pem" -CAkey "$TLS_DIR/ca.key" \
            -CAcreateserial -days 3650 -extfile "$TLS_DIR/san.ext" -out "$TLS_DIR/server.pem" >/dev/null 2>&1 ||
            die "openssl: could not sign the server certificate"
        log "rabbitmq: made a test CA and a server certificate for localhost in $TLS_DIR"
    fi
    mkdir -p "$RABBIT_TLS_DIR"
    cp "$TLS_DIR/ca.pem" "$TLS_DIR/server.pem" "$TLS_DIR/server.key" "$RABBIT_TLS_DIR/"
    cat >"$RABBIT_TLS_DIR/rabbitmq.conf" <<CONF
# Written by klaviyo-relay scripts/dev/services.sh: plain AMQP on 5672, AMQPS on $AMQPS_PORT (test CA).
listeners.tcp.default = 5672
listeners.ssl.default = $AMQPS_PORT
ssl_options.cacertfile = $RABBIT_TLS_DIR/ca.pem
ssl_options.certfile = $RABBIT_TLS_DIR/server.pem
ssl_options.keyfile = $RABBIT_TLS_DIR/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
CONF
    chown -R rabbitmq:rabbitmq "$RABBIT_TLS_DIR"
    chmod 600 "$RABBIT_TLS_DIR/server.key"
}

start_rabbitmq() {
    have rabbitmq-server || die "rabbitmq-server not installed (run scripts/dev/install-deps.sh)"
    if rabbit_up; then
        if ! rabbitmqctl -q await_startup --timeout 30 >/dev/null 2>&1; then
            die "rabbitmq: port $AMQP_PORT is open but node $RABBITMQ_NODENAME does not answer" \
                "(a broker under another node name? check 'rabbitmqctl -n rabbit@\$(hostname -s) status')"
        fi
        if rabbit_owned; then
            log "rabbitmq: already running as $RABBITMQ_NODENAME (pid $(rabbit_pid), started by this script)"
        else
            log "rabbitmq: reusing node $RABBITMQ_NODENAME on $HOST:$AMQP_PORT (pid $(rabbit_pid || echo '?'))"
        fi
        management_note
        return 0
    fi
    need_root "starting rabbitmq-server"
    mkdir -p "$STATE_DIR"
    rm -f "$RABBIT_MARKER"
    if ! grep -q rabbitmq_management /etc/rabbitmq/enabled_plugins 2>/dev/null; then
        rabbitmq-plugins -q enable --offline rabbitmq_management >/dev/null
        log "rabbitmq: management plugin enabled (offline)"
    fi
    local epmd_was_running=false
    port_open "$HOST" 4369 && epmd_was_running=true

    local started
    started="$(now_ms)"
    ensure_tls
    # The node (and epmd) must not hold its caller's pipes and sockets (lib.sh).
    (close_inherited_descriptors && RABBITMQ_CONFIG_FILE="$RABBIT_TLS_DIR/rabbitmq.conf" exec rabbitmq-server -detached) \
        >"$STATE_DIR/rabbitmq-detached.log" 2>&1 ||
        die "rabbitmq: 'rabbitmq-server -detached' failed: $(tail -n 5 "$STATE_DIR/rabbitmq-detached.log")"
    if ! $epmd_was_running; then
        : >"$EPMD_MARKER"
    fi
    if ! rabbit_ready "$RABBITMQ_START_TIMEOUT" || ! wait_for_port "$HOST" "$AMQP_PORT" 10; then
        printf -- '--- last lines of %s ---\n' "$RABBIT_LOG" >&2
        tail -n 40 "$RABBIT_LOG" >&2 2>/dev/null || true
        printf -- '--- %s ---\n' "$STATE_DIR/rabbitmq-detached.log" >&2
        tail -n 10 "$STATE_DIR/rabbitmq-detached.log" >&2 || true
        die "rabbitmq: node $RABBITMQ_NODENAME not up after ${RABBITMQ_START_TIMEOUT}s"
    fi
    rabbit_pid >"$RABBIT_MARKER" || die "rabbitmq: node is up but $RABBIT_PIDFILE names no live process"
    record rabbitmq
    log "rabbitmq: started $RABBITMQ_NODENAME (pid $(cat "$RABBIT_MARKER")) in $(elapsed_since "$started")"
    management_note
}

stop_rabbitmq() {
    local force="$1"
    if ! rabbit_up; then
        rm -f "$RABBIT_MARKER"
        log "rabbitmq: not running"
        stop_epmd "$force"
        return 0
    fi
    if ! rabbit_owned && [[ "$force" != true ]]; then
        log "rabbitmq: leaving $RABBITMQ_NODENAME running (not started by this script; --force stops it)"
        return 0
    fi
    need_root "stopping rabbitmq-server"
    local started pid
    started="$(now_ms)"
    pid="$(rabbit_pid || true)"
    rabbitmqctl -q stop >/dev/null 2>&1 || warn "rabbitmq: 'rabbitmqctl stop' failed; waiting for the port anyway"
    local deadline=$((SECONDS + 30))
    while { [[ -n "$pid" && -d "/proc/$pid" ]] || rabbit_up; }; do
        ((SECONDS < deadline)) || die "rabbitmq: still running 30s after 'rabbitmqctl stop'"
        sleep 0.1
    done
    rm -f "$RABBIT_MARKER"
    log "rabbitmq: stopped $RABBITMQ_NODENAME in $(elapsed_since "$started")"
    stop_epmd "$force"
}

# stop_epmd FORCE: rabbitmq-server spawns epmd, which survives the node. Kill it if this script caused it
# (or with --force); `epmd -kill` itself refuses while other Erlang nodes are registered.
stop_epmd() {
    if [[ -f "$EPMD_MARKER" || "$1" == true ]] && port_open "$HOST" 4369; then
        epmd -kill >/dev/null 2>&1 || warn "epmd: not stopped (other Erlang nodes still registered?)"
    fi
    rm -f "$EPMD_MARKER"
}

status_rabbitmq() {
    if ! rabbit_up; then
        printf 'rabbitmq  down  %s:%s  node %s\n' "$HOST" "$AMQP_PORT" "$RABBITMQ_NODENAME"
        return 1
    fi
    local who="reused: not started by this script" mgmt="management down"
    rabbit_owned && who="started by this script"
    local version
    if version="$(curl -fsS -m 2 -u guest:guest "http://$HOST:$MGMT_PORT/api/overview" 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["rabbitmq_version"])' 2>/dev/null)"; then
        mgmt="management :$MGMT_PORT, RabbitMQ $version"
    fi
    printf 'rabbitmq  up    %s:%s  pid %s  node %s  %s  (%s)\n' "$HOST" "$AMQP_PORT" \
        "$(rabbit_pid || echo '?')" "$RABBITMQ_NODENAME" "$mgmt" "$who"
}

# ---------------------------------------------------------------------------------------------------------

RECORD_FILE=""
record() {
    if [[ -n "$RECORD_FILE" ]]; then
        printf '%s\n' "$1" >>"$RECORD_FILE"
    fi
}

restart() {
    local service="$1" force="$2"
    local owned=false
    # The check functions are rabbit_up/rabbit_owned and redis_up/redis_owned.
    local short="${service/rabbitmq/rabbit}"
    if "${short}_up"; then
        "${short}_owned" && owned=true
        if ! $owned && [[ "$force" != true ]]; then
            die "$service: refusing to restart a server this script did not start (shared with others?);" \
                "pass --force to restart it anyway"
        fi
    fi
    local t0
    t0="$(now_ms)"
    if [[ $service == redis ]]; then
        # Like a production Redis with persistence, a restart keeps the data (connections, done markers):
        # snapshot it from the client side (CONFIG SET dir is protected in Redis 7), load it on start.
        mkdir -p "$REDIS_DIR"
        REDIS_RESTART_RDB="$REDIS_DIR/restart.rdb"
        rm -f "$REDIS_RESTART_RDB"
        redis-cli -h "$HOST" -p "$REDIS_PORT" --rdb "$REDIS_RESTART_RDB" >/dev/null ||
            die "redis: could not snapshot the data before the restart"
    fi
    "stop_${service}" true
    local stop_time
    stop_time="$(elapsed_since "$t0")"
    t0="$(now_ms)"
    "start_${service}"
    local start_time
    start_time="$(elapsed_since "$t0")"
    if [[ -n "${REDIS_RESTART_RDB:-}" ]]; then
        rm -f "$REDIS_RESTART_RDB"
        unset REDIS_RESTART_RDB
    fi
    if ! $owned; then
        # Restarted on request (--force) for someone else: leave ownership with them.
        rm -f "$([[ $service == redis ]] && echo "$REDIS_MARKER" || echo "$RABBIT_MARKER")"
    fi
    log "$service: restart done: stop $stop_time, start until ready $start_time"
}

# Deletes the queues and exchanges that test runs declare under throwaway prefixes (TEST_QUEUE_PATTERN in
# lib.sh) and that an aborted run (Ctrl-C, timeout, crash) never removed. Hundreds of leftover quorum queues
# make a small broker slow to answer, then to accept logins at all.
clean_test_leftovers() {
    rabbit_up || die "rabbitmq: not running on $HOST:$AMQP_PORT"
    local pattern="$TEST_QUEUE_PATTERN" started n=0 name
    started="$(now_ms)"
    while IFS= read -r name; do
        [[ -n "$name" ]] || continue
        # The management API (enabled by start): a fraction of rabbitmqctl's per-call start-up time.
        curl -fsS -u guest:guest -X DELETE "http://$HOST:${MGMT_PORT:-15672}/api/queues/%2F/$name" \
            </dev/null >/dev/null 2>&1 && n=$((n + 1))
    done < <(rabbitmqctl -q list_queues name 2>/dev/null | grep -E "$pattern" || true)
    local e=0
    while IFS= read -r name; do
        [[ -n "$name" ]] || continue
        curl -fsS -u guest:guest -X DELETE "http://$HOST:${MGMT_PORT:-15672}/api/exchanges/%2F/$name" \
            </dev/null >/dev/null 2>&1 && e=$((e + 1))
    done < <(rabbitmqctl -q list_exchanges name 2>/dev/null | grep -E "$pattern" || true)
    log "rabbitmq: removed $n leftover test queue(s) and $e exchange(s) in $(elapsed_since "$started")"
}

# clusters start|stop|status: the RabbitMQ cluster, then the Redis Cluster (if its script exists).
clusters() {
    local rc=0 redis_script="$REPO_ROOT/scripts/dev/redis-cluster.sh"
    "$REPO_ROOT/scripts/dev/rabbitmq-cluster.sh" "$1" || rc=$?
    if [[ -x "$redis_script" ]]; then
        "$redis_script" "$1" || rc=$?
    else
        log "redis cluster: scripts/dev/redis-cluster.sh not present, skipped"
    fi
    return "$rc"
}

main() {
    local command="${1:-}"
    [[ -n "$command" ]] || {
        usage >&2
        exit 2
    }
    shift
    local force=false services=()
    while (($# > 0)); do
        case "$1" in
        --force) force=true ;;
        --record)
            [[ $# -ge 2 ]] || die "--record needs a file"
            RECORD_FILE="$2"
            shift
            ;;
        redis | rabbitmq) services+=("$1") ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) die "unknown argument: $1 (see --help)" ;;
        esac
        shift
    done
    ((${#services[@]} > 0)) || services=(rabbitmq redis)
    mkdir -p "$STATE_DIR"

    case "$command" in
    start) for s in "${services[@]}"; do "start_$s"; done ;;
    stop) for s in "${services[@]}"; do "stop_$s" "$force"; done ;;
    status)
        local rc=0
        for s in "${services[@]}"; do "status_$s" || rc=1; done
        return "$rc"
        ;;
    restart-rabbitmq) restart rabbitmq "$force" ;;
    restart-redis) restart redis "$force" ;;
    clean-test-leftovers) clean_test_leftovers ;;
    cluster-start | cluster-stop | cluster-status) clusters "${command#cluster-}" ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        die "unknown command: $command"
        ;;
    esac
}

main "$@"
