#!/usr/bin/env bash
# Benchmark `coalesce-upsert` (issue #8): one account, N `profile.upsert` (default 50,000) through `consume`
# processes with profile coalescing on, against a klaviyo-sim that enforces the spec's rate limits. Prints
# profiles/min and its ratio to the single-call ceiling (profile-import, tier L: 700/min), the bulk import jobs
# and single calls Klaviyo saw, and the 429s it answered (calls over the limits: must be 0). Uses the running RabbitMQ and Redis.
#
#   scripts/bench/coalesce.sh [--commands N] [--consumers P] [--concurrency C] [--bin DIR] [--sim-url URL]
#
# --bin defaults to .build/release (build it first: swift build -c release); without --sim-url a klaviyo-sim
# with rate limits on is started on port 18096 and stopped at the end. Extra RELAY_* variables in the
# environment reach the consumers (e.g. RELAY_COALESCE_WINDOW=2s, RELAY_COALESCE_THRESHOLD=5s).
# Output: one line of JSON on stdout (the figures), progress on stderr.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"

COMMANDS=50000
CONSUMERS=1
CONCURRENCY=64
BIN="$REPO_ROOT/.build/release"
SIM_URL=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --commands) COMMANDS="$2"; shift 2 ;;
        --consumers) CONSUMERS="$2"; shift 2 ;;
        --concurrency) CONCURRENCY="$2"; shift 2 ;;
        --bin) BIN="$2"; shift 2 ;;
        --sim-url) SIM_URL="$2"; shift 2 ;;
        *) die "unknown option $1" ;;
    esac
done
[[ -x "$BIN/klaviyo-relay" && -x "$BIN/klaviyo-sim" ]] || die "no klaviyo-relay/klaviyo-sim in $BIN"

export RELAY_AMQP_URL="${RELAY_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export RELAY_REDIS_URL="${RELAY_REDIS_URL:-redis://127.0.0.1:6379/0}"
RUN="co$(date +%s)$$"
export RELAY_QUEUE_PREFIX="bench-$RUN"
export RELAY_LOG_LEVEL="${RELAY_LOG_LEVEL:-warning}" RELAY_METRICS_PORT=0 RELAY_RATE_LIMIT=spec
export RELAY_COALESCE="${RELAY_COALESCE:-on}"
ACCOUNT="acct_$RUN"
KEY="pk_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [[ -z "${OWN_SIM:-}" ]] || kill "$OWN_SIM" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

if [[ -z "$SIM_URL" ]]; then
    SIM_URL="http://127.0.0.1:18096"
    "$BIN/klaviyo-sim" --host 127.0.0.1 --port 18096 --rate-limits on --record-capacity 1000 --log-level warning \
        >"$WORK/sim.log" 2>&1 &
    OWN_SIM=$!
    wait_for_port 127.0.0.1 18096 30 || die "klaviyo-sim did not start"
fi
export RELAY_KLAVIYO_API_BASE_URL="$SIM_URL"
curl -fsS -X POST "$SIM_URL/_sim/accounts" -H 'content-type: application/json' \
    -d "{\"account_id\":\"$ACCOUNT\",\"api_key\":\"$KEY\",\"name\":\"Bench\"}" >/dev/null
echo "$KEY" | "$BIN/klaviyo-relay" connections add-api-key --dev --account "$ACCOUNT" --api-key - >/dev/null
"$BIN/klaviyo-relay" setup --dev >/dev/null

log "publishing $COMMANDS profile.upsert for $ACCOUNT…"
python3 - "$COMMANDS" "$ACCOUNT" "$RUN" >"$WORK/commands.ndjson" <<'EOF'
import json, sys
n, account, run = int(sys.argv[1]), sys.argv[2], sys.argv[3]
for i in range(n):
    print(json.dumps({"id": f"{run}-{i}", "type": "profile.upsert", "account_id": account,
                      "created_at": "2026-12-04T00:00:00Z",
                      "payload": {"profile": {"email": f"p{i}.{run}@example.com", "first_name": f"P{i}",
                                              "properties": {"n": i}}}}))
EOF
"$BIN/klaviyo-relay" publish --dev --file "$WORK/commands.ndjson" >/dev/null

done_count() {
    redis-cli -u "$RELAY_REDIS_URL" --scan --pattern "kr:{$ACCOUNT}:idem:*" | wc -l
}
start=$(date +%s.%N)
for _ in $(seq "$CONSUMERS"); do
    RELAY_CONCURRENCY="$CONCURRENCY" "$BIN/klaviyo-relay" consume --dev >>"$WORK/consume.log" 2>&1 &
    PIDS+=($!)
done
log "consuming with $CONSUMERS process(es) × concurrency $CONCURRENCY…"
finished=0
deadline=$(( $(date +%s) + 3600 ))
while (( finished < COMMANDS )); do
    sleep 2
    finished=$(done_count)
    log "  $finished / $COMMANDS done"
    (( $(date +%s) < deadline )) || die "not finished within an hour ($finished / $COMMANDS)"
done
end=$(date +%s.%N)

stats="$(curl -fsS "$SIM_URL/_sim/stats")"
python3 - "$COMMANDS" "$start" "$end" "$stats" "$ACCOUNT" <<'EOF'
import json, sys
n, start, end, stats, account = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4]), sys.argv[5]
seconds = end - start
per_minute = n / seconds * 60
ops = stats.get("by_operation", {})
def calls(op):
    return ops.get(op, 0)
print(json.dumps({
    "scenario": "coalesce-upsert", "commands": n, "seconds": round(seconds, 1),
    "profiles_per_minute": round(per_minute), "single_call_ceiling_per_minute": 700,
    "ratio_to_ceiling": round(per_minute / 700, 1),
    "bulk_import_jobs": calls("POST /api/profile-bulk-import-jobs"), "single_calls": calls("POST /api/profile-import"),
    "throttled_429": stats.get("by_status", {}).get("429", 0),
    "sim_stats": stats,
}))
EOF
