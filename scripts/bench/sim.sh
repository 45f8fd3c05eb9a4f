#!/usr/bin/env bash
# Benchmarks a release build of klaviyo-sim with wrk. Loopback only; bounded in time.
# Usage: scripts/bench/sim.sh [connections=32] [duration=10s] [latency_ms=0]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"
CONN=${1:-32}; DUR=${2:-10s}; LAT=${3:-0}
BIN=.build/release/klaviyo-sim
[ -x "$BIN" ] || swift build -c release --product klaviyo-sim
LOG=$(mktemp)
spawn "$LOG" "$BIN" --port 0 --rate-limits off --latency-ms "$LAT" --log-level info \
  --seed-account acct_bench:pk_bench:Bench
trap 'stop_spawned; rm -f "$LOG"' EXIT
for _ in $(seq 1 50); do grep -q listening "$LOG" && break; sleep 0.1; done
PORT=$(grep -o 'sim.port=[0-9]*' "$LOG" | head -1 | cut -d= -f2)
echo "klaviyo-sim on port $PORT, $CONN connections, $DUR, latency ${LAT} ms"
wrk -t2 -c"$CONN" -d"$DUR" --latency -s scripts/bench/profile-import.lua "http://127.0.0.1:$PORT"
sim_admin "http://127.0.0.1:$PORT" GET /_sim/stats | head -c 400; echo
