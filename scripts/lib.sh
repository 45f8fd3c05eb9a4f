#!/usr/bin/env bash
# Shared helpers for the scripts in scripts/. Source it, do not execute it:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Safe under `set -euo pipefail`. Defines:
#   REPO_ROOT   repository root (the directory above scripts/)
#   VAR_DIR     state dir for pid files, ownership markers and logs (default $REPO_ROOT/var, gitignored)
#   log, warn, die, need_root, have, var_path, port_open, wait_for_port, wait_for_port_closed,
#   now_ms, elapsed_since, ensure_swift_path, require_swift

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
    "${SIM_BINARY:?SIM_BINARY not set}" --host 127.0.0.1 --port "$port" "$@" >"$logfile" 2>&1 &
    echo $! >"$pidfile"
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
