#!/usr/bin/env bash
# Benchmarks a release build of klaviyo-sim with wrk. Loopback only; bounded in time.
# Usage: scripts/bench/run.sh [connections=32] [duration=10s] [latency_ms=0]
set -euo pipefail
cd "$(dirname "$0")/../.."
CONN=${1:-32}; DUR=${2:-10s}; LAT=${3:-0}
BIN=.build/release/klaviyo-sim
[ -x "$BIN" ] || swift build -c release --product klaviyo-sim
LOG=$(mktemp)
"$BIN" --port 0 --rate-limits off --latency-ms "$LAT" --log-level info \
  --seed-account acct_bench:pk_bench:Bench >"$LOG" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 1 50); do grep -q listening "$LOG" && break; sleep 0.1; done
PORT=$(grep -o 'sim.port=[0-9]*' "$LOG" | head -1 | cut -d= -f2)
echo "klaviyo-sim on port $PORT, $CONN connections, $DUR, latency ${LAT} ms"
wrk -t2 -c"$CONN" -d"$DUR" --latency -s scripts/bench/profile-import.lua "http://127.0.0.1:$PORT"
curl -s "http://127.0.0.1:$PORT/_sim/stats" | head -c 400; echo
