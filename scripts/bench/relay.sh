#!/usr/bin/env bash
# Benchmark: builds release binaries, starts (or reuses) RabbitMQ and Redis, starts a release klaviyo-sim
# without rate limits on port 18090, and runs `klaviyo-relay-bench` (broker-only baseline, relay with a
# zero-latency sim, relay with 100 ms sim latency). Prints a table; writes bench-results/report.json.
#
#   scripts/bench/relay.sh [extra `klaviyo-relay-bench` options, e.g. --commands 50000]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"

scripts/dev/install-deps.sh
require_swift >/dev/null
scripts/dev/services.sh start
log "building release binaries (takes a few minutes the first time)…"
swift build -c release 2>&1 | grep -E "error:|Build complete" || true
[[ -x .build/release/klaviyo-relay && -x .build/release/klaviyo-relay-bench && -x .build/release/klaviyo-sim ]] \
    || die "release build failed"

SIM_BINARY="$REPO_ROOT/.build/release/klaviyo-sim"
stop_sim 18090
start_sim 18090 "$(var_path klaviyo-sim-bench.log)" --rate-limits off --record-capacity 1 --log-level warning
trap 'stop_sim 18090' EXIT
# The servers' CPU per command is part of the relay's cost: the bench reads it from /proc around each scenario.
rabbit_pid="$(rabbitmqctl -q -n rabbit@localhost eval 'os:getpid().' | tr -d '"')"
redis_pid="$(redis-cli -h 127.0.0.1 -p 6379 info server | tr -d '\r' | awk -F: '$1 == "process_id" { print $2 }')"
RELAY_LOG_LEVEL="${RELAY_LOG_LEVEL:-warning}" .build/release/klaviyo-relay-bench --dev \
    --sim-url http://127.0.0.1:18090 --report bench-results/report.json \
    --server-pid "rabbitmq=$rabbit_pid" --server-pid "redis=$redis_pid" \
    --server-pid "klaviyo-sim=$(cat "$(var_path sim-18090.pid)")" "$@"
