#!/usr/bin/env bash
# How much of Klaviyo's allowance the relay spends (issue #8), against a klaviyo-sim that enforces the spec's
# burst, steady and daily windows per account and operation (and answers 429 beyond them). One scenario per run:
#
#   limits-upsert   one account, N profile.upsert (default 5,000), single calls only (RELAY_COALESCE=off):
#                   time vs the ideal schedule of profile-import (75/s burst, 700/min steady) = % of the quota
#   coalesce-upsert one account, N profile.upsert (default 50,000), coalescing on: profiles/min vs 700/min
#   limits-events   one account, N event.track (default 100,000): events/min vs create_event's 3,500/min
#   fair            a hot account with N profile.upsert (default 50,000) published first, then 20 other accounts
#                   × 25 profile.upsert published behind it: the others' p50/p99 (publish → result recorded)
#   fair-events     the same with event.track (hot: N events, default 50,000; the others: 20 × 25 events)
#
#   scripts/bench/allowance.sh --scenario NAME [--commands N] [--consumers P] [--concurrency C] [--bin DIR]
#                              [--sim-url URL] [--report FILE]
#
# The backlog is published before the consumers start (fair: the others right behind the hot backlog, with the
# consumers already running). Every scenario also reports the 429s klaviyo-sim answered: calls over Klaviyo's
# limits, which must be 0. --bin defaults to .build/release (swift build -c release first); without --sim-url a
# klaviyo-sim with rate limits on is started on port 18097. Uses the running RabbitMQ and Redis. Extra RELAY_*
# variables in the environment reach the consumers. Output: one JSON line on stdout (and --report), progress on
# stderr.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"

SCENARIO=""
COMMANDS=""
CONSUMERS=1
CONCURRENCY=64
BIN="$REPO_ROOT/.build/release"
SIM_URL=""
REPORT=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --scenario) SCENARIO="$2"; shift 2 ;;
        --commands) COMMANDS="$2"; shift 2 ;;
        --consumers) CONSUMERS="$2"; shift 2 ;;
        --concurrency) CONCURRENCY="$2"; shift 2 ;;
        --bin) BIN="$2"; shift 2 ;;
        --sim-url) SIM_URL="$2"; shift 2 ;;
        --report) REPORT="$2"; shift 2 ;;
        *) die "unknown option $1" ;;
    esac
done
case "$SCENARIO" in
    limits-upsert) : "${COMMANDS:=5000}"; export RELAY_COALESCE=off ;;
    coalesce-upsert) : "${COMMANDS:=50000}"; export RELAY_COALESCE="${RELAY_COALESCE:-on}" ;;
    limits-events) : "${COMMANDS:=100000}" ;;
    fair) : "${COMMANDS:=50000}"; export RELAY_COALESCE="${RELAY_COALESCE:-on}" ;;
    fair-events) : "${COMMANDS:=50000}" ;;
    *) die "--scenario must be limits-upsert, coalesce-upsert, limits-events, fair or fair-events" ;;
esac
[[ -x "$BIN/klaviyo-relay" && -x "$BIN/klaviyo-sim" ]] || die "no klaviyo-relay/klaviyo-sim in $BIN"

export RELAY_AMQP_URL="${RELAY_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
export RELAY_REDIS_URL="${RELAY_REDIS_URL:-redis://127.0.0.1:6379/0}"
RUN="al$(date +%s)$$"
# Done markers are counted with SCAN over the whole keyspace: millions of keys left by earlier runs stretch every
# figure (measured: limits-events 17.5x instead of 42.6x). Say so rather than report a slow Redis as the relay.
keys="$(redis-cli -u "$RELAY_REDIS_URL" dbsize 2>/dev/null || echo 0)"
if (( keys > 200000 )); then
    log "WARNING: Redis holds $keys keys; figures will be low (empty a dev Redis with redis-cli flushall)"
fi
export RELAY_QUEUE_PREFIX="bench-$RUN"
export RELAY_LOG_LEVEL="${RELAY_LOG_LEVEL:-warning}" RELAY_METRICS_PORT=0 RELAY_RATE_LIMIT=spec
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    [[ -z "${OWN_SIM:-}" ]] || kill "$OWN_SIM" 2>/dev/null || true
    rm -rf "$WORK"
    # The run's queues (a fair scenario leaves the hot backlog in them): left behind, they weigh on the broker.
    local name
    while IFS= read -r name; do
        [[ -n "$name" ]] || continue
        curl -fsS -u guest:guest -X DELETE "http://127.0.0.1:${MGMT_PORT:-15672}/api/queues/%2F/$name" \
            </dev/null >/dev/null 2>&1 || true
    done < <(rabbitmqctl -q -n rabbit@localhost list_queues name 2>/dev/null | grep -F "$RELAY_QUEUE_PREFIX." || true)
}
trap cleanup EXIT

if [[ -z "$SIM_URL" ]]; then
    SIM_URL="http://127.0.0.1:18097"
    "$BIN/klaviyo-sim" --host 127.0.0.1 --port 18097 --rate-limits on --record-capacity 1000 --log-level warning \
        >"$WORK/sim.log" 2>&1 &
    OWN_SIM=$!
    wait_for_port 127.0.0.1 18097 30 || die "klaviyo-sim did not start"
fi
export RELAY_KLAVIYO_API_BASE_URL="$SIM_URL"
"$BIN/klaviyo-relay" setup --dev >/dev/null

# Accounts: a0 is the measured (or hot) one; fair adds a1..a20.
OTHERS=0
[[ "$SCENARIO" == fair* ]] && OTHERS=20
for i in $(seq 0 "$OTHERS"); do
    key="pk_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    curl -fsS -X POST "$SIM_URL/_sim/accounts" -H 'content-type: application/json' \
        -d "{\"account_id\":\"${RUN}_a$i\",\"api_key\":\"$key\",\"name\":\"Bench $i\"}" >/dev/null
    echo "$key" | "$BIN/klaviyo-relay" connections add-api-key --dev --account "${RUN}_a$i" --api-key - >/dev/null
done

# generate KIND FIRST COUNT ACCOUNTS: NDJSON commands, round-robin over the accounts (comma-separated).
generate() {
    python3 - "$@" "$RUN" <<'EOF'
import json, sys
kind, first, count, accounts, run = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4].split(","), sys.argv[5]
for i in range(first, first + count):
    account = accounts[i % len(accounts)]
    if kind == "event.track":
        payload = {"metric": "Viewed Product", "profile": {"email": f"e{i % 5000}.{run}@example.com"},
                   "properties": {"n": i}}
    else:
        payload = {"profile": {"email": f"p{i}.{run}@example.com", "first_name": f"P{i}", "properties": {"n": i}}}
    print(json.dumps({"id": f"{run}-{i}", "type": kind, "account_id": account,
                      "created_at": "2026-12-04T00:00:00Z", "payload": payload}))
EOF
}
KIND=profile.upsert
[[ "$SCENARIO" == limits-events || "$SCENARIO" == fair-events ]] && KIND=event.track
generate "$KIND" 0 "$COMMANDS" "${RUN}_a0" >"$WORK/backlog.ndjson"
start_consumers() {
    for _ in $(seq "$CONSUMERS"); do
        RELAY_CONCURRENCY="$CONCURRENCY" "$BIN/klaviyo-relay" consume --dev >>"$WORK/consume.log" 2>&1 &
        PIDS+=($!)
    done
    log "consuming with $CONSUMERS process(es) × concurrency $CONCURRENCY…"
}
done_count() {  # done markers of account $1
    redis-cli -u "$RELAY_REDIS_URL" --scan --pattern "kr:{$1}:idem:*" | wc -l
}
await_done() {  # account, expected
    local finished=0 deadline=$(( $(date +%s) + 3600 ))
    while (( finished < $2 )); do
        sleep 1
        finished=$(done_count "$1")
        log "  $1: $finished / $2 done"
        (( $(date +%s) < deadline )) || die "not finished within an hour ($finished / $2)"
    done
}

log "$SCENARIO: publishing $COMMANDS $KIND for ${RUN}_a0…"
if [[ "$SCENARIO" == fair* ]]; then
    start_consumers
    "$BIN/klaviyo-relay" publish --dev --file "$WORK/backlog.ndjson" >/dev/null
    others=$(python3 -c "print(','.join('${RUN}_a%d' % i for i in range(1, 21)))")
    generate "$KIND" "$COMMANDS" 500 "$others" >"$WORK/others.ndjson"
    published=$(date +%s.%N)
    "$BIN/klaviyo-relay" publish --dev --file "$WORK/others.ndjson" >/dev/null
    start=$published
    for i in $(seq 1 20); do await_done "${RUN}_a$i" 25; done
    end=$(date +%s.%N)
    # Each other command's latency: its result's completed_at minus the moment the batch was published.
    for i in $(seq 1 20); do
        redis-cli -u "$RELAY_REDIS_URL" --scan --pattern "kr:{${RUN}_a$i}:idem:*" | while read -r key; do
            redis-cli -u "$RELAY_REDIS_URL" hget "$key" result
        done
    done >"$WORK/others-results.ndjson"
    hot_done=$(done_count "${RUN}_a0")
else
    "$BIN/klaviyo-relay" publish --dev --file "$WORK/backlog.ndjson" >/dev/null
    start=$(date +%s.%N)
    start_consumers
    await_done "${RUN}_a0" "$COMMANDS"
    end=$(date +%s.%N)
    hot_done=$COMMANDS
fi

stats="$(curl -fsS "$SIM_URL/_sim/stats")"
python3 - "$SCENARIO" "$COMMANDS" "$start" "$end" "$stats" "$hot_done" "$WORK/others-results.ndjson" "$REPORT" <<'EOF'
import datetime, json, os, sys
scenario, n, start, end = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
stats, hot_done, others_file, report = json.loads(sys.argv[5]), int(sys.argv[6]), sys.argv[7], sys.argv[8]
seconds = end - start
ops = stats.get("by_operation", {})
calls = lambda op: ops.get(op, 0)
out = {"scenario": scenario, "commands": n, "seconds": round(seconds, 1),
       "throttled_429": stats.get("by_status", {}).get("429", 0)}
if scenario == "limits-upsert":
    # The fastest any client could go within Klaviyo's windows: 700 per minute, each minute's 700 at 75/s.
    ideal = (n - 1) // 700 * 60 + ((n - 1) % 700) / 75
    out.update({"single_calls": calls("POST /api/profile-import"), "ideal_seconds": round(ideal, 1),
                "quota_used_pct": round(100 * ideal / seconds, 1), "previous_design_pct": 64})
elif scenario == "coalesce-upsert":
    per_minute = n / seconds * 60
    out.update({"profiles_per_minute": round(per_minute), "single_call_ceiling_per_minute": 700,
                "ratio_to_ceiling": round(per_minute / 700, 1),
                "bulk_import_jobs": calls("POST /api/profile-bulk-import-jobs"),
                "single_calls": calls("POST /api/profile-import")})
elif scenario == "limits-events":
    per_minute = n / seconds * 60
    out.update({"events_per_minute": round(per_minute), "create_event_ceiling_per_minute": 3500,
                "ratio_to_ceiling": round(per_minute / 3500, 1),
                "bulk_calls": calls("POST /api/event-bulk-create-jobs"), "single_calls": calls("POST /api/events")})
else:
    latencies = []
    for line in open(others_file):
        line = line.strip()
        if not line:
            continue
        done = datetime.datetime.fromisoformat(json.loads(line)["completed_at"].replace("Z", "+00:00")).timestamp()
        latencies.append((done - start) * 1000)
    latencies.sort()
    pct = lambda p: round(latencies[min(len(latencies) - 1, max(0, int(p * len(latencies) + 0.999) - 1))])
    out.update({"others": len(latencies), "others_p50_ms": pct(0.5), "others_p99_ms": pct(0.99),
                "hot_backlog": n, "hot_done_when_others_done": hot_done})
line = json.dumps(out)
print(line)
if report:
    os.makedirs(os.path.dirname(report) or ".", exist_ok=True)
    open(report, "w").write(line + "\n")
EOF
