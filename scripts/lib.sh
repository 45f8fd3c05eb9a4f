#!/usr/bin/env bash
# Shared helpers for the scripts in scripts/. Source it, do not execute it:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Safe under `set -euo pipefail`. Defines:
#   REPO_ROOT   repository root (the directory above scripts/)
#   VAR_DIR     state dir for pid files, ownership markers and logs (default $REPO_ROOT/var, gitignored)
#   log, warn, die, need_root, have, var_path, port_open, wait_for_port, wait_for_port_closed,
#   now_ms, elapsed_since, ensure_swift_path, require_swift,
#   spawn, stop_spawned                     the one way the scripts launch (and stop) child processes,
#   start_sim, stop_sim, start_test_sim      klaviyo-sim lifecycle; sim_admin calls its admin API,
#   use_services                            RabbitMQ + Redis for a run, with the one cleanup trap,
#   export_server_urls, build_with_tests, check_warnings

if [[ -n "${RELAY_LIB_SH_LOADED:-}" ]]; then
    return 0
fi
RELAY_LIB_SH_LOADED=1

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR_DIR="${RELAY_VAR_DIR:-$REPO_ROOT/var}"
SCRIPT_NAME="$(basename "${BASH_SOURCE[-1]:-$0}" .sh)"
# Queue and exchange names that test runs declare under throwaway prefixes (services.sh clean-test-leftovers).
TEST_QUEUE_PATTERN='^(it-|amqp-tests\.|chaos-|bench-)'
export REPO_ROOT VAR_DIR

# log MESSAGE...: one line on stderr, prefixed with the calling script's name.
log() {
    printf '[%s] %s\n' "$SCRIPT_NAME" "$*" >&2
}

# warn MESSAGE...: like log, marked as a warning.
warn() {
    printf '[%s] warning: %s\n' "$SCRIPT_NAME" "$*" >&2
}

# die MESSAGE...: print an error and exit 1.
die() {
    printf '[%s] error: %s\n' "$SCRIPT_NAME" "$*" >&2
    exit 1
}

# close_inherited_descriptors: closes every descriptor above stderr in the calling (sub)shell. Call it in the
# subshell that becomes a daemon (`( close_inherited_descriptors; exec daemon ... )`): a daemon that keeps its
# caller's descriptors open keeps the caller waiting. Foundation's Process, for one, learns that a child exited
# when the child's end of a socket pair closes; rabbitmq-server nodes that inherited it kept a test waiting for
# `rabbitmq-cluster.sh start` until CI's time ran out. Pipes read to end-of-file wait the same way.
close_inherited_descriptors() {
    local fd
    for fd in /proc/"$BASHPID"/fd/*; do
        fd="${fd##*/}"
        if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
}

# start_local_clusters RABBITMQ_BASE_PORT REDIS_BASE_PORT: a 3-node RabbitMQ cluster and a Redis Cluster of 3+3 on
# base ports of the caller's own (scripts/dev/rabbitmq-cluster.sh, redis-cluster.sh); sets CLUSTER_AMQP_URL and
# CLUSTER_REDIS_URL. A cluster that is not healthy (absent, or left half-down by an interrupted run) is (re)started
# and counts as the caller's: stop_local_clusters (from the caller's EXIT trap) stops only those.
LOCAL_CLUSTERS_STARTED=()
start_local_clusters() {
    LOCAL_RABBITMQ_CLUSTER=("$REPO_ROOT/scripts/dev/rabbitmq-cluster.sh" --base-port "$1")
    LOCAL_REDIS_CLUSTER=("$REPO_ROOT/scripts/dev/redis-cluster.sh" --base-port "$2")
    "${LOCAL_RABBITMQ_CLUSTER[@]}" status >/dev/null 2>&1 || LOCAL_CLUSTERS_STARTED+=(rabbitmq)
    "${LOCAL_REDIS_CLUSTER[@]}" status >/dev/null 2>&1 || LOCAL_CLUSTERS_STARTED+=(redis)
    CLUSTER_AMQP_URL="$("${LOCAL_RABBITMQ_CLUSTER[@]}" start | tail -n 1)"
    CLUSTER_REDIS_URL="$("${LOCAL_REDIS_CLUSTER[@]}" start | tail -n 1)"
}

# stop_local_clusters: stops the clusters start_local_clusters started (never one that was already running).
stop_local_clusters() {
    local cluster
    for cluster in "${LOCAL_CLUSTERS_STARTED[@]}"; do
        case "$cluster" in
        rabbitmq) "${LOCAL_RABBITMQ_CLUSTER[@]}" stop || warn "could not stop the RabbitMQ cluster" ;;
        redis) "${LOCAL_REDIS_CLUSTER[@]}" stop || warn "could not stop the Redis Cluster" ;;
        esac
    done
    LOCAL_CLUSTERS_STARTED=()
}

# need_root [WHAT]: exit unless running as root.
need_root() {
    if [[ "$(id -u)" -ne 0 ]]; then
        die "${1:-this step} needs root (run as root or through sudo)"
    fi
}

# have COMMAND: true if COMMAND is on PATH.
have() {
    command -v "$1" >/dev/null 2>&1
}

# var_path NAME: create $VAR_DIR if needed and print $VAR_DIR/NAME.
var_path() {
    mkdir -p "$VAR_DIR"
    printf '%s/%s\n' "$VAR_DIR" "$1"
}

# port_open HOST PORT: true if a TCP connection to HOST:PORT succeeds within 1 s.
port_open() {
    local host="$1" port="$2"
    # shellcheck disable=SC2016 # $1/$2 expand in the child bash, on purpose
    timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" >/dev/null 2>&1
}

# wait_for_port HOST PORT TIMEOUT_SECONDS: poll until HOST:PORT accepts connections.
# Returns 1 (does not exit) on timeout so callers can print their own diagnostics.
wait_for_port() {
    local host="$1" port="$2" timeout_s="$3"
    local deadline=$((SECONDS + timeout_s))
    until port_open "$host" "$port"; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.1
    done
}

# wait_for_port_closed HOST PORT TIMEOUT_SECONDS: poll until HOST:PORT refuses connections.
wait_for_port_closed() {
    local host="$1" port="$2" timeout_s="$3"
    local deadline=$((SECONDS + timeout_s))
    while port_open "$host" "$port"; do
        if ((SECONDS >= deadline)); then
            return 1
        fi
        sleep 0.1
    done
}

# now_ms: milliseconds since the epoch (for timings).
now_ms() {
    local ns
    ns="$(date +%s%N)"
    printf '%s\n' "$((ns / 1000000))"
}

# elapsed_since START_MS: seconds since START_MS, formatted like 6.42s.
elapsed_since() {
    local ms=$(($(now_ms) - $1))
    printf '%d.%02ds\n' "$((ms / 1000))" "$(((ms % 1000) / 10))"
}

# ensure_swift_path: put /opt/swift/usr/bin on PATH when swift is not already reachable.
ensure_swift_path() {
    if ! have swift && [[ -d /opt/swift/usr/bin ]]; then
        PATH="/opt/swift/usr/bin:$PATH"
        export PATH
    fi
}

# require_swift: ensure_swift_path, then exit with a clear message unless a Swift 6 toolchain works.
# Prints the toolchain version (e.g. 6.3.1) on stdout.
require_swift() {
    ensure_swift_path
    local version_line
    if ! version_line="$(swift --version 2>/dev/null | grep -m1 -o 'Swift version [0-9][0-9.]*')"; then
        die "Swift toolchain not found (looked on PATH and in /opt/swift/usr/bin). It is not installable" \
            "from apt: install Swift 6.x from https://www.swift.org/install/linux/ into /opt/swift" \
            "or put its usr/bin on PATH."
    fi
    local version="${version_line#Swift version }"
    if [[ "${version%%.*}" -lt 6 ]]; then
        die "Swift $version found, but Swift 6.0 or newer is required"
    fi
    printf '%s\n' "$version"
}

# spawn LOGFILE COMMAND [ARGS...]: runs COMMAND in the background with stdout and stderr in LOGFILE (stdin from
# /dev/null). Sets SPAWNED_PID and appends it to SPAWNED_PIDS (stop_spawned stops them all). Not in a subshell:
# `$(spawn …)` would make the child a grandchild that `wait` cannot see.
SPAWNED_PIDS=()
SPAWNED_PID=""
spawn() {
    local logfile="$1"
    shift
    "$@" >"$logfile" 2>&1 </dev/null &
    SPAWNED_PID=$!
    SPAWNED_PIDS+=("$SPAWNED_PID")
}

# stop_spawned: SIGTERM to every process spawn started, then waits for each (they drain and exit on their own).
stop_spawned() {
    local pid
    for pid in "${SPAWNED_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${SPAWNED_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    SPAWNED_PIDS=()
}

# start_sim PORT LOGFILE [extra klaviyo-sim args...]: starts BINARY=${SIM_BINARY} in the background on
# 127.0.0.1:PORT, waits until it listens, records its pid in var/sim-PORT.pid. Reuses a running one.
start_sim() {
    local port="$1" logfile="$2"
    shift 2
    local pidfile
    pidfile="$(var_path "sim-$port.pid")"
    if port_open 127.0.0.1 "$port"; then
        log "klaviyo-sim: reusing the one listening on port $port"
        return 0
    fi
    spawn "$logfile" "${SIM_BINARY:?SIM_BINARY not set}" --host 127.0.0.1 --port "$port" "$@"
    echo "$SPAWNED_PID" >"$pidfile"
    wait_for_port 127.0.0.1 "$port" 30 || die "klaviyo-sim did not start; see $logfile"
    log "klaviyo-sim listening on 127.0.0.1:$port (pid $(cat "$pidfile"), log $logfile)"
}

# stop_sim PORT: stops a klaviyo-sim this script family started on PORT.
stop_sim() {
    local pidfile
    pidfile="$(var_path "sim-$1.pid")"
    if [[ -f "$pidfile" ]]; then
        local pid
        pid="$(cat "$pidfile")"
        kill "$pid" 2>/dev/null || true
        # Wait (up to 5 s) until it is gone, so the port is free for the next one.
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        rm -f "$pidfile"
    fi
}

# check_warnings BUILD_LOG: fails when the build printed a compiler warning for the project's own files
# (dependencies' warnings are not ours to fix).
check_warnings() {
    local own
    own="$(grep -E "^$REPO_ROOT/(Sources|Tests)/[^:]+:[0-9]+:[0-9]+: warning:" "$1" | sort -u || true)"
    if [[ -n "$own" ]]; then
        printf '%s\n' "$own" >&2
        die "the build has compiler warnings in project files (treated as errors)"
    fi
}

# sim_admin BASE_URL METHOD PATH [JSON]: calls klaviyo-sim's admin API (`/_sim/…`), prints the response body;
# fails (curl -f) on a non-2xx answer.
sim_admin() {
    curl -sf -X "$2" "${1%/}$3" -H 'Content-Type: application/json' ${4:+-d "$4"}
}

# export_server_urls: RELAY_AMQP_URL and RELAY_REDIS_URL, defaulting to the local servers services.sh starts.
export_server_urls() {
    export RELAY_AMQP_URL="${RELAY_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
    export RELAY_REDIS_URL="${RELAY_REDIS_URL:-redis://127.0.0.1:${REDIS_PORT:-6379}/0}"
}

# use_services NAME [SIM_PORT]: starts (or reuses) RabbitMQ and Redis for this run and installs the one cleanup
# trap: at exit it stops the klaviyo-sim on SIM_PORT (if any) and the servers this run started, never ones that
# were already running, and keeps the script's exit status. The servers it started are listed, one a line, in
# $STARTED_SERVICES_FILE (var/NAME-started-services). Exports the server URLs (export_server_urls).
use_services() {
    STARTED_SERVICES_FILE="$(var_path "$1-started-services")"
    OWN_SIM_PORT="${2:-}"
    : >"$STARTED_SERVICES_FILE"
    trap _cleanup_services EXIT
    "$REPO_ROOT/scripts/dev/services.sh" start --record "$STARTED_SERVICES_FILE"
    export_server_urls
}

_cleanup_services() {
    local rc=$?
    [[ -n "${OWN_SIM_PORT:-}" ]] && stop_sim "$OWN_SIM_PORT"
    local ours=()
    mapfile -t ours <"$STARTED_SERVICES_FILE"
    if ((${#ours[@]} > 0)); then
        "$REPO_ROOT/scripts/dev/services.sh" stop "${ours[@]}" || true
    fi
    exit "$rc"
}

# build_with_tests LOGNAME [FLAGS...]: `swift build --build-tests FLAGS...` with its output in
# var/LOGNAME.log; on failure prints the errors and exits; a compiler warning in project files fails too.
build_with_tests() {
    local build_log
    build_log="$(var_path "$1.log")"
    shift
    if ! swift build --build-tests "$@" >"$build_log" 2>&1; then
        grep -E "error:" "$build_log" | sort -u | head -40 >&2 || tail -50 "$build_log" >&2
        die "build failed (full log: $build_log)"
    fi
    check_warnings "$build_log"
}

# start_test_sim PORT LOGNAME [klaviyo-sim args...]: a fresh debug klaviyo-sim of this checkout for a test run on
# PORT (never one already listening: it may be another version, and checks read what it recorded), log in
# var/LOGNAME.log. Exports KLAVIYO_SIM_URL and RELAY_BINARY for the Swift test targets.
start_test_sim() {
    local port="$1" logname="$2"
    shift 2
    SIM_BINARY="$REPO_ROOT/.build/debug/klaviyo-sim"
    stop_sim "$port"
    if port_open 127.0.0.1 "$port"; then
        die "port $port is taken (another klaviyo-sim?): stop it or choose another port for $SCRIPT_NAME"
    fi
    start_sim "$port" "$(var_path "$logname.log")" "$@"
    export KLAVIYO_SIM_URL="http://127.0.0.1:$port"
    export RELAY_BINARY="$REPO_ROOT/.build/debug/klaviyo-relay"
}
