#!/usr/bin/env bash
# Check deploy/rabbitmq/definitions.json against the running local broker, without touching real vhosts.
#
#   scripts/check/check-definitions.sh [--import-only] [--relay BINARY] [DEFINITIONS_FILE]
#
# 1. Copies the definitions with every "vhost" replaced by a throwaway vhost (relay-defs-check), creates
#    that vhost, imports the copy with `rabbitmqctl import_definitions` and compares the exchanges, queues
#    (with arguments) and bindings the broker reports against the file.
# 2. Unless --import-only: publishes probe messages through the management HTTP API and checks the
#    routing that docs/contracts.md ("Topology") relies on (command routing, dead-lettering into klaviyo.dead with the original
#    routing key, and a retry tier dead-lettering back to klaviyo.commands).
# 3. With --relay BINARY (as scripts/test.sh runs it): the relay against exactly that topology, with
#    RELAY_TOPOLOGY=policies (the file's queues carry only x-queue-type; policies carry the rest). The file must be
#    what `klaviyo-relay setup --print-definitions` prints. `klaviyo-relay setup` applies the policies (unchanged)
#    and redeclares the topology (any difference in a queue's or exchange's arguments is a 406 and fails the
#    check); the broker dead-letters a message requeued past the delivery limit (policy); a `klaviyo-relay consume`
#    on the vhost starts once the policies are in force, dead-letters a malformed command into klaviyo.dead, an
#    unroutable one reaching klaviyo.unroutable through the alternate exchange (policy), and one parked in a retry
#    tier once its TTL (policy) sends it back; with the dead queue full (a tighter policy, max-length 1, overflow
#    reject-publish), further dead letters are refused by the broker and their commands held (unacknowledged,
#    nothing lost) until the bound is lifted, then dead-lettered. Finally, with one tier's policy removed, a
#    consumer refuses to start, naming the queue and the missing key, and `setup` puts the policy back.
# The vhost is deleted at exit, whatever happens. Needs root (rabbitmqctl through the /usr/sbin wrappers)
# and a running node rabbit@localhost (scripts/dev/services.sh start); with --relay also Redis
# (RELAY_REDIS_URL, default the local server). Environment: DEFS_CHECK_VHOST, MGMT_PORT [15672], AMQP_PORT
# [5672], DEFS_CHECK_METRICS_PORT [18395] (the consumer's metrics and health port).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

export RABBITMQ_NODENAME=rabbit@localhost
VHOST="${DEFS_CHECK_VHOST:-relay-defs-check}"
MGMT_PORT="${MGMT_PORT:-15672}"
AMQP_PORT="${AMQP_PORT:-5672}"
METRICS_PORT="${DEFS_CHECK_METRICS_PORT:-18395}"
routing=true
relay=""
file="$REPO_ROOT/deploy/rabbitmq/definitions.json"
while (($# > 0)); do
    case "$1" in
    --import-only) routing=false ;;
    --relay)
        relay="${2:?--relay needs the klaviyo-relay binary}"
        shift
        ;;
    -*) die "unknown option: $1" ;;
    *) file="$1" ;;
    esac
    shift
done
[[ -f "$file" ]] || die "no such file: $file"
need_root "rabbitmqctl"
rabbitmqctl -q await_startup --timeout 10 >/dev/null 2>&1 ||
    die "RabbitMQ node $RABBITMQ_NODENAME is not running (scripts/dev/services.sh start)"

started="$(now_ms)"
copy="$(mktemp --suffix=.json)"
consumer_pid=""
cleanup() {
    rm -f "$copy"
    if [[ -n "$consumer_pid" ]]; then kill "$consumer_pid" 2>/dev/null && wait "$consumer_pid" 2>/dev/null || true; fi
    rabbitmqctl -q delete_vhost "$VHOST" >/dev/null 2>&1 || true
}
trap cleanup EXIT

python3 - "$file" "$VHOST" >"$copy" <<'PY'
import json, sys
defs = json.load(open(sys.argv[1]))
for kind in ("exchanges", "queues", "bindings", "policies"):
    for item in defs.get(kind, []):
        item["vhost"] = sys.argv[2]
json.dump(defs, sys.stdout)
PY
chmod 644 "$copy" # the CLI wrapper runs as the rabbitmq user and must read it

rabbitmqctl -q delete_vhost "$VHOST" >/dev/null 2>&1 || true
rabbitmqctl -q add_vhost "$VHOST" >/dev/null
# One retry: the broker has answered an import with an internal noproc (rabbit_fifo_dlx_sup, a quorum queue's
# dead-letter worker not yet registered) right after many queues were deleted; a definitions file it really
# rejects is rejected twice.
if ! rabbitmqctl -q import_definitions "$copy" >/dev/null; then
    log "import_definitions failed; retrying once in 3 s (a broker hiccup, or a real rejection)"
    sleep 3
    rabbitmqctl -q delete_vhost "$VHOST" >/dev/null 2>&1 || true
    rabbitmqctl -q add_vhost "$VHOST" >/dev/null
    rabbitmqctl -q import_definitions "$copy" >/dev/null || die "import_definitions rejected $file"
fi

listing="$(mktemp)"
trap 'cleanup; rm -f "$listing"' EXIT
{
    echo "## exchanges"
    rabbitmqctl -q list_exchanges -p "$VHOST" name type durable --formatter json
    echo
    echo "## queues"
    rabbitmqctl -q list_queues -p "$VHOST" name type durable arguments --formatter json
    echo
    echo "## bindings"
    rabbitmqctl -q list_bindings -p "$VHOST" source_name destination_name routing_key --formatter json
    echo
    echo "## effective"
    rabbitmqctl -q list_queues -p "$VHOST" name policy --formatter json
    echo
    echo "## effective_exchanges"
    rabbitmqctl -q list_exchanges -p "$VHOST" name policy --formatter json
    echo
    echo "## policies"
    rabbitmqctl -q list_policies -p "$VHOST" --formatter json
    echo
} >"$listing"

python3 - "$file" "$listing" <<'PY'
import json, sys
defs = json.load(open(sys.argv[1]))
sections, current = {}, None
for line in open(sys.argv[2]):
    if line.startswith("## "):
        current = line[3:].strip()
        sections[current] = ""
    else:
        sections[current] += line
got = {k: json.loads(v) for k, v in sections.items()}
problems = []

have_x = {e["name"]: e for e in got["exchanges"]}
for e in defs["exchanges"]:
    x = have_x.get(e["name"])
    if not x or x["type"] != e["type"] or x["durable"] != e["durable"]:
        problems.append(f"exchange {e['name']}: expected {e['type']} durable={e['durable']}, broker has {x}")

def args(listed):  # rabbitmqctl --formatter json lists arguments as [[key, amqp_type, value], ...]
    if isinstance(listed, dict):
        return listed
    return {item[0]: item[-1] for item in listed}

have_q = {q["name"]: q for q in got["queues"]}
for q in defs["queues"]:
    x = have_q.get(q["name"])
    if not x:
        problems.append(f"queue {q['name']} missing")
        continue
    want_type = q["arguments"].get("x-queue-type", "classic")
    if x["type"] != want_type or args(x["arguments"]) != q["arguments"]:
        problems.append(f"queue {q['name']}: expected {want_type} {q['arguments']}, broker has {x}")
    print(f"  queue {q['name']:<22} {x['type']:<8} {json.dumps(args(x['arguments']), sort_keys=True)}")

have_b = {(b["source_name"], b["destination_name"], b["routing_key"]) for b in got["bindings"]}
for b in defs["bindings"]:
    if (b["source"], b["destination"], b["routing_key"]) not in have_b:
        problems.append(f"binding {b['source']} -> {b['destination']} [{b['routing_key']}] missing")

# Every policy is in force on the queues or exchanges it names (the broker applies the highest-priority match),
# and every queue that dead-letters, and the commands exchange, has one.
import re
effective = {"queues": {q["name"]: q for q in got["effective"]},
             "exchanges": {x["name"]: x for x in got["effective_exchanges"] if x["name"]}}
have_p = {p["name"]: p for p in got["policies"]}
covered = set()
for policy in defs.get("policies", []):
    x = have_p.get(policy["name"])
    definition = x and (json.loads(x["definition"]) if isinstance(x["definition"], str) else x["definition"])
    if definition != policy["definition"]:
        problems.append(f"policy {policy['name']}: expected {policy['definition']}, broker has {x}")
    kind = policy.get("apply-to", "all")
    targets = effective["queues"] if kind == "queues" else effective["exchanges"] if kind == "exchanges" else {
        **effective["queues"], **effective["exchanges"]}
    matched = [name for name in targets if re.search(policy["pattern"], name)]
    if not matched:
        problems.append(f"policy {policy['name']}: pattern {policy['pattern']} matches no {kind}")
    for name in matched:
        covered.add(name)
        if targets[name].get("policy") != policy["name"]:
            problems.append(f"{kind} {name}: policy {policy['name']} not in force (broker has {targets[name]})")
        else:
            print(f"  policy {policy['name']:<26} on {name}: {json.dumps(policy['definition'], sort_keys=True)}")
if defs.get("policies"):
    for q in defs["queues"]:
        if q["name"] not in covered:
            problems.append(f"queue {q['name']}: no policy of the file applies to it")
    commands = [e["name"] for e in defs["exchanges"] if e["name"].endswith(".commands")]
    for name in commands:
        if name not in covered:
            problems.append(f"exchange {name}: no policy of the file gives it its alternate exchange")

if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"  {len(defs['exchanges'])} exchanges, {len(defs['queues'])} queues, {len(defs['bindings'])} bindings, "
      f"{len(defs.get('policies', []))} policies match")
PY
log "import into vhost '$VHOST' ok"

rabbitmqctl -q set_permissions -p "$VHOST" guest '.*' '.*' '.*' >/dev/null
api="http://127.0.0.1:$MGMT_PORT/api"
vh="$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$VHOST")"

# publish EXCHANGE ROUTING_KEY [HEADERS_JSON]: fails unless the broker routed the message somewhere
# (an unroutable message is allowed only when EXPECT_UNROUTED=1).
publish() {
    local body routed
    body="$(printf '{"properties":{"delivery_mode":2,"headers":%s},"routing_key":"%s","payload":"probe","payload_encoding":"string"}' \
        "${3:-{\}}" "$2")"
    routed="$(curl -fsS -m 5 -u guest:guest -H 'content-type: application/json' \
        -X POST -d "$body" "$api/exchanges/$vh/$1/publish")" || die "publish to $1 failed"
    if [[ "${EXPECT_UNROUTED:-0}" == 1 ]]; then
        [[ "$routed" == *'"routed":false'* ]] || die "publish $1 [$2]: expected unroutable, got $routed"
    else
        [[ "$routed" == *'"routed":true'* ]] || die "publish $1 [$2] was not routed: $routed"
    fi
}
depth() {
    rabbitmqctl -q list_queues -p "$VHOST" name messages --no-table-headers | awk -v q="$1" '$1 == q { print $2 }'
}
# A quorum queue reports its depth on its tick (quorum_tick_interval, 5 s by default), so a listing may lag a
# publish by up to 5 s: the default wait is 15 s (it returns as soon as the depth is right).
expect_depth() {
    local queue="$1" want="$2" deadline=$((SECONDS + ${3:-15})) got
    while got="$(depth "$queue")"; [[ "$got" != "$want" ]]; do
        ((SECONDS < deadline)) || die "queue $queue: expected $want message(s), has $got"
        sleep 0.3
    done
    log "  $queue has $want message(s) as expected"
}

if $routing; then
    # Commands route by type.
    publish klaviyo.commands profile.upsert
    publish klaviyo.commands event.track
    publish klaviyo.commands connection.validate
    # A type no binding matches goes to the alternate exchange's queue, where the relay dead-letters it.
    publish klaviyo.commands unknown.type
    expect_depth klaviyo.profiles 1
    expect_depth klaviyo.events 1
    expect_depth klaviyo.campaigns 1
    expect_depth klaviyo.unroutable 1

    # A rejected (not requeued) command is dead-lettered to klaviyo.dead with its original routing key.
    curl -fsS -m 5 -u guest:guest -H 'content-type: application/json' -X POST \
        -d '{"count":1,"ackmode":"reject_requeue_false","encoding":"auto"}' \
        "$api/queues/$vh/klaviyo.events/get" >/dev/null
    expect_depth klaviyo.events 0
    expect_depth klaviyo.dead 1
    dead_key="$(curl -fsS -m 5 -u guest:guest -H 'content-type: application/json' -X POST \
        -d '{"count":1,"ackmode":"ack_requeue_true","encoding":"auto"}' "$api/queues/$vh/klaviyo.dead/get" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["routing_key"])')"
    [[ "$dead_key" == event.track ]] || die "dead letter kept routing key '$dead_key', expected event.track"
    log "  dead letter kept routing key event.track"

    # Retry tiers: publish to klaviyo.retry with routing key = tier and the command type in the CC header.
    # After the TTL the message is dead-lettered to klaviyo.commands with all its routing keys (tier and
    # CC); the type routes it back to its work queue, the tier name matches no binding.
    # (Its second in the tier is shorter than one rabbitmqctl listing: only its arrival back is checked.)
    publish klaviyo.retry 1s '{"CC":["subscription.subscribe"]}'
    expect_depth klaviyo.profiles 2 15
    expect_depth klaviyo.retry.1s 0 10

    # Without the CC header the routing key after the TTL is just "1s", which no binding matches:
    # the message would be silently dropped. This documents why publishers must set CC.
    publish klaviyo.retry 1s
    expect_depth klaviyo.retry.1s 0 10
    sleep 1 # give a (wrongly) dead-lettered copy time to show up before checking it did not
    expect_depth klaviyo.profiles 2 1
    log "  retry tier without CC header drops the message (expected; publishers must set CC = command type)"
    log "routing checks ok"
fi
if [[ -n "$relay" ]]; then
    [[ -x "$relay" ]] || die "no such executable: $relay (build first)"
    if [[ "$file" == "$REPO_ROOT/deploy/rabbitmq/definitions.json" ]]; then
        RELAY_QUEUE_PREFIX=klaviyo RELAY_DELIVERY_LIMIT=10 "$relay" setup --print-definitions |
            diff -u "$file" - >&2 ||
            die "$file is not what \`klaviyo-relay setup --print-definitions\` prints (regenerate it: see deploy/README.md)"
        log "  the file is what klaviyo-relay setup --print-definitions prints"
    fi
    for queue in $(rabbitmqctl -q list_queues -p "$VHOST" name --no-table-headers); do
        rabbitmqctl -q purge_queue -p "$VHOST" "$queue" >/dev/null
    done
    export RELAY_AMQP_URL="amqp://guest:guest@127.0.0.1:$AMQP_PORT/$vh" RELAY_QUEUE_PREFIX=klaviyo \
        RELAY_TOPOLOGY=policies RELAY_RABBITMQ_MANAGEMENT_URL="http://guest:guest@127.0.0.1:$MGMT_PORT"
    policies() { rabbitmqctl -q list_policies -p "$VHOST" --formatter json | python3 -c '
import json, sys
print(json.dumps(sorted(json.load(sys.stdin), key=lambda p: p["name"]), sort_keys=True))'; }
    imported_policies="$(policies)"
    # The relay declares exactly what the file declares: a different argument would be a 406 here.
    "$relay" setup --dev --log-level warning >/dev/null ||
        die "klaviyo-relay setup refused the imported topology (see above)"
    [[ "$(policies)" == "$imported_policies" ]] ||
        die "klaviyo-relay setup changed the imported policies: $(policies)"
    log "  klaviyo-relay setup (RELAY_TOPOLOGY=policies) kept the policies and redeclared the topology unchanged"

    # The delivery limit (policy, 10): a command requeued ten times is still there, the eleventh time the broker
    # dead-letters it (no consumer reads klaviyo.events in this check).
    publish klaviyo.commands event.track
    expect_depth klaviyo.events 1
    requeue() {
        curl -fsS -m 5 -u guest:guest -H 'content-type: application/json' -X POST \
            -d '{"count":1,"ackmode":"reject_requeue_true","encoding":"auto"}' "$api/queues/$vh/klaviyo.events/get"
    }
    for _ in $(seq 10); do [[ "$(requeue)" == *'"payload"'* ]] || die "klaviyo.events lost its message early"; done
    expect_depth klaviyo.events 1
    requeue >/dev/null
    expect_depth klaviyo.dead 1
    expect_depth klaviyo.events 0
    reason="$(curl -fsS -m 5 -u guest:guest -H 'content-type: application/json' -X POST \
        -d '{"count":1,"ackmode":"ack_requeue_false","encoding":"auto"}' "$api/queues/$vh/klaviyo.dead/get" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["properties"]["headers"]["x-death"][0]["reason"])')"
    [[ "$reason" == delivery_limit ]] || die "dead-lettered with reason '$reason', expected delivery_limit"
    log "  the broker dead-lettered a command past the delivery limit of the policy (11th delivery, delivery_limit)"

    consumer_log="$(var_path defs-check-consumer.log)"
    RELAY_METRICS_PORT="$METRICS_PORT" RELAY_LOG_FORMAT=json "$relay" consume --dev \
        --queues profiles,campaigns,unroutable >"$consumer_log" 2>&1 &
    consumer_pid=$!
    consumers() {
        rabbitmqctl -q list_queues -p "$VHOST" name consumers --no-table-headers | awk '$1 == "klaviyo.profiles" { print $2 }'
    }
    deadline=$((SECONDS + 30))
    until [[ "$(consumers)" == 1 ]]; do
        kill -0 "$consumer_pid" 2>/dev/null || die "the consumer exited: $(tail -n 5 "$consumer_log")"
        ((SECONDS < deadline)) || die "no consumer on klaviyo.profiles after 30s: $(tail -n 5 "$consumer_log")"
        sleep 0.2
    done
    ready="$(curl -sS -m 5 "http://127.0.0.1:$METRICS_PORT/readyz" || true)"
    [[ "$ready" == "rabbitmq=up redis=up policies=ok" ]] || die "/readyz with the policies in force said '$ready'"
    log "  /readyz: $ready"

    # A malformed command (the body is not JSON) becomes a dead letter, with the relay's code.
    publish klaviyo.commands profile.upsert
    expect_depth klaviyo.dead 1 15
    code="$(curl -fsS -m 5 -u guest:guest -H 'content-type: application/json' -X POST \
        -d '{"count":1,"ackmode":"ack_requeue_true","encoding":"auto"}' "$api/queues/$vh/klaviyo.dead/get" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["properties"]["headers"].get("x-relay-error-code"))')"
    [[ "$code" == not_json ]] || die "dead letter code '$code', expected not_json"
    log "  a malformed command was dead-lettered by the relay (not_json)"
    dead_code() { # "routing-key code" of the next dead letter, taken off klaviyo.dead (waits up to 15 s for one)
        local deadline=$((SECONDS + 15)) got
        while got="$(curl -fsS -m 5 -u guest:guest -H 'content-type: application/json' -X POST \
            -d '{"count":1,"ackmode":"ack_requeue_false","encoding":"auto"}' "$api/queues/$vh/klaviyo.dead/get" |
            python3 -c 'import json,sys; m = json.load(sys.stdin)
print(" ".join([m[0]["routing_key"], str(m[0]["properties"]["headers"].get("x-relay-error-code"))]) if m else "")')"
            [[ -z "$got" ]]
        do
            ((SECONDS < deadline)) || break
            sleep 0.2
        done
        echo "$got"
    }
    [[ "$(dead_code)" == "profile.upsert not_json" ]] || die "the first dead letter is not the malformed command's"

    # A type no binding matches: the alternate exchange (policy) hands it to klaviyo.unroutable, the relay
    # dead-letters it.
    publish klaviyo.commands nothing.here
    [[ "$(dead_code)" == "nothing.here unroutable" ]] || die "no dead letter 'unroutable' for nothing.here"
    log "  an unroutable command reached klaviyo.unroutable through the alternate exchange and was dead-lettered"

    # A command parked in the 1s tier comes back after the TTL (policy) to its work queue (CC = its type), where the
    # relay dead-letters it (its body is not JSON).
    publish klaviyo.retry 1s '{"CC":["list.create"]}'
    got="$(dead_code)"
    # (Its routing key is the tier's: the broker dead-letters with the keys it was published with, the first one
    # being the tier; commands the relay parks carry their type in its own headers.)
    [[ "$got" == "1s not_json" ]] || die "the command parked in klaviyo.retry.1s did not come back (dead letter: ${got:-none})"
    log "  a command parked in klaviyo.retry.1s came back to klaviyo.profiles after its TTL and was dead-lettered"

    # The dead queue full: the broker refuses further dead letters and the relay holds their commands (unacked)
    # until there is room. A quorum queue checks its bound after enqueueing, so it may take one message past it:
    # the dead queue is empty now, so of four commands at least one is held.
    rabbitmqctl -q set_policy -p "$VHOST" --priority 20 --apply-to queues defs-check-full '^klaviyo\.dead$' \
        '{"max-length":1,"overflow":"reject-publish"}' >/dev/null
    unacked() {
        rabbitmqctl -q list_queues -p "$VHOST" name messages_unacknowledged --no-table-headers |
            awk '$1 == "klaviyo.profiles" { print $2 }'
    }
    for _ in 1 2 3 4; do publish klaviyo.commands profile.upsert; done
    deadline=$((SECONDS + 20))
    until held="$(unacked)"; ((held >= 1)); do
        ((SECONDS < deadline)) || die "no command is held while the dead queue is full (dead: $(depth klaviyo.dead))"
        sleep 0.3
    done
    kill -0 "$consumer_pid" 2>/dev/null || die "the consumer exited while the dead queue was full"
    log "  dead queue full ($(depth klaviyo.dead) message(s)): $held command(s) held unacknowledged, not lost"
    rabbitmqctl -q clear_policy -p "$VHOST" defs-check-full >/dev/null
    expect_depth klaviyo.dead 4 30
    expect_depth klaviyo.profiles 0 15
    log "  bound lifted: every held command was dead-lettered"
    kill "$consumer_pid" 2>/dev/null || true
    wait "$consumer_pid" 2>/dev/null || true
    consumer_pid=""

    # A tier without its policy would keep what it parks forever: a consumer refuses to start, naming the queue and
    # the key. (The management API may still name the deleted policy for a few seconds; the relay checks it exists.)
    rabbitmqctl -q clear_policy -p "$VHOST" klaviyo-retry-5s >/dev/null
    refused_log="$(var_path defs-check-refused.log)"
    refused_at="$(now_ms)"
    RELAY_METRICS_PORT="$METRICS_PORT" "$relay" consume --dev >"$refused_log" 2>&1 &
    refused_pid=$!
    consumer_pid="$refused_pid" # killed by the exit trap if this check dies
    # While it checks (about 12 s), the process is up but not ready: /readyz says 503 and names the condition.
    readiness=""
    while [[ -z "$readiness" ]] && kill -0 "$refused_pid" 2>/dev/null; do
        readiness="$(curl -sS -m 2 -w ' %{http_code}' "http://127.0.0.1:$METRICS_PORT/readyz" 2>/dev/null | tr -d '\n')" ||
            readiness=""
        [[ "$readiness" != *000 ]] || readiness="" # not listening yet
        [[ -n "$readiness" ]] || sleep 0.2
    done
    if wait "$refused_pid"; then
        die "a consumer ran without the policy klaviyo-retry-5s: $(tail -n 3 "$refused_log")"
    fi
    consumer_pid=""
    [[ "$readiness" == "rabbitmq=up redis=up policies=checking 503" ]] ||
        die "/readyz while the policies were checked said '$readiness' (expected policies=checking, status 503)"
    log "  /readyz while the consumer checked the policies: $readiness"
    grep -q "queue klaviyo.retry.5s has no policy in force, so it lacks message-ttl = 5000" "$refused_log" ||
        die "the consumer failed without naming klaviyo.retry.5s and message-ttl: $(tail -n 3 "$refused_log")"
    ! grep -q "guest:guest" "$refused_log" || die "the consumer's log shows the management password"
    log "  without the policy klaviyo-retry-5s a consumer refused to start after $(elapsed_since "$refused_at"), naming klaviyo.retry.5s and message-ttl"
    "$relay" setup --dev --log-level warning >/dev/null || die "klaviyo-relay setup failed"
    [[ "$(policies)" == "$imported_policies" ]] || die "klaviyo-relay setup did not restore the policies: $(policies)"
    log "  klaviyo-relay setup applied the missing policy again"
    log "relay checks ok"
fi
log "definitions check passed in $(elapsed_since "$started") (vhost '$VHOST' deleted at exit)"
