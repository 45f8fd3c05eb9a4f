#!/usr/bin/env bash
# Check deploy/rabbitmq/definitions.json against the running local broker, without touching real vhosts.
#
#   scripts/check/check-definitions.sh [--import-only] [DEFINITIONS_FILE]
#
# 1. Copies the definitions with every "vhost" replaced by a throwaway vhost (relay-defs-check), creates
#    that vhost, imports the copy with `rabbitmqctl import_definitions` and compares the exchanges, queues
#    (with arguments) and bindings the broker reports against the file.
# 2. Unless --import-only: publishes probe messages through the management HTTP API and checks the
#    routing that DESIGN §3 relies on (command routing, dead-lettering into klaviyo.dead with the original
#    routing key, and a retry tier dead-lettering back to klaviyo.commands).
# The vhost is deleted at exit, whatever happens. Needs root (rabbitmqctl through the /usr/sbin wrappers)
# and a running node rabbit@localhost (scripts/dev/services.sh start). Environment: DEFS_CHECK_VHOST,
# MGMT_PORT [15672].
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

export RABBITMQ_NODENAME=rabbit@localhost
VHOST="${DEFS_CHECK_VHOST:-relay-defs-check}"
MGMT_PORT="${MGMT_PORT:-15672}"
routing=true
file="$REPO_ROOT/deploy/rabbitmq/definitions.json"
while (($# > 0)); do
    case "$1" in
    --import-only) routing=false ;;
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
cleanup() {
    rm -f "$copy"
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
rabbitmqctl -q import_definitions "$copy" >/dev/null || die "import_definitions rejected $file"

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

if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"  {len(defs['exchanges'])} exchanges, {len(defs['queues'])} queues, {len(defs['bindings'])} bindings match")
PY
log "import into vhost '$VHOST' ok"

if $routing; then
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
    expect_depth() {
        local queue="$1" want="$2" deadline=$((SECONDS + ${3:-5})) got
        while got="$(depth "$queue")"; [[ "$got" != "$want" ]]; do
            ((SECONDS < deadline)) || die "queue $queue: expected $want message(s), has $got"
            sleep 0.3
        done
        log "  $queue has $want message(s) as expected"
    }

    # Commands route by type.
    publish klaviyo.commands profile.upsert
    publish klaviyo.commands event.track
    publish klaviyo.commands connection.validate
    EXPECT_UNROUTED=1 publish klaviyo.commands unknown.type
    expect_depth klaviyo.profiles 1
    expect_depth klaviyo.events 1
    expect_depth klaviyo.campaigns 1

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
    publish klaviyo.retry 1s '{"CC":["subscription.subscribe"]}'
    expect_depth klaviyo.retry.1s 1 2
    expect_depth klaviyo.profiles 2 6
    expect_depth klaviyo.retry.1s 0 2

    # Without the CC header the routing key after the TTL is just "1s", which no binding matches:
    # the message would be silently dropped. This documents why publishers must set CC.
    publish klaviyo.retry 1s
    expect_depth klaviyo.retry.1s 0 6
    sleep 1 # give a (wrongly) dead-lettered copy time to show up before checking it did not
    expect_depth klaviyo.profiles 2 1
    log "  retry tier without CC header drops the message (expected; publishers must set CC = command type)"
    log "routing checks ok"
fi
log "definitions check passed in $(elapsed_since "$started") (vhost '$VHOST' deleted at exit)"
