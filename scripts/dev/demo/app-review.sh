#!/usr/bin/env bash
# Klaviyo's app-review walkthrough (issue #13): brings up klaviyo-sim, `klaviyo-relay serve` and a consumer on
# ports of their own (RabbitMQ and Redis are reused or started), then walks the review checklist in headless
# Chromium and through the relay (Tests/browser/app_review.py): install link → Klaviyo's consent page → connected;
# deny → the clear message; disconnect in HeroPixel → the grant revoked at Klaviyo; app removed in Klaviyo →
# "Reconnect needed" and commands dead-lettered reauth_required; settings URL; events reaching Klaviyo as
# metrics; sync status and a flow performance report. Prints the checklist with a verdict per item; exit 1 if
# any item failed.
#
#   scripts/demo/app-review.sh                         # screenshots in var/app-review/
#   scripts/demo/app-review.sh --screenshots DIR
#   scripts/demo/app-review.sh --no-screenshots        # the test command's mode
#   scripts/demo/app-review.sh --skip-build            # use the existing debug build
#
# Ports: APP_REVIEW_SIM_PORT (18293), APP_REVIEW_HTTP_PORT (18280), APP_REVIEW_METRICS_PORT (18281); queues
# under a throwaway prefix it-appreview-<random>. Stops at exit only what it started.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../lib.sh"
cd "$REPO_ROOT"

screenshots="var/app-review"
keep_screenshots=1
build=1
while (($#)); do
    case "$1" in
    --screenshots) screenshots="${2:?--screenshots needs a folder}"; shift 2 ;;
    --no-screenshots) keep_screenshots=0; shift ;;
    --skip-build) build=0; shift ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
done

sim_port="${APP_REVIEW_SIM_PORT:-18293}"
http_port="${APP_REVIEW_HTTP_PORT:-18280}"
metrics_port="${APP_REVIEW_METRICS_PORT:-18281}"
for port in "$sim_port" "$http_port" "$metrics_port"; do
    port_open 127.0.0.1 "$port" && die "port $port is in use (set APP_REVIEW_*_PORT to free ones)"
done
have python3 && python3 -c 'import selenium' 2>/dev/null || die "python3 with selenium is required (scripts/dev/install-deps.sh)"
[[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]] ||
    die "headless Chromium is required: apt-get install -y chromium chromium-driver (scripts/dev/install-deps.sh)"

require_swift >/dev/null
export_server_urls
started_services="$(var_path "app-review-started-services")"
: >"$started_services"
# remove_topology: deletes this run's queues and exchanges (management API, best effort).
remove_topology() {
    local kind name
    [[ -n "${RELAY_QUEUE_PREFIX:-}" ]] || return 0
    for kind in queues exchanges; do
        curl -fsS -u guest:guest "http://127.0.0.1:${MGMT_PORT:-15672}/api/$kind/%2F?columns=name" 2>/dev/null |
            python3 -c 'import json, sys; [print(q["name"]) for q in json.load(sys.stdin) if q["name"].startswith(sys.argv[1])]' \
                "$RELAY_QUEUE_PREFIX." 2>/dev/null |
            while IFS= read -r name; do
                curl -fsS -u guest:guest -X DELETE "http://127.0.0.1:${MGMT_PORT:-15672}/api/$kind/%2F/$name" \
                    >/dev/null 2>&1 || true
            done
    done
}
cleanup() {
    local rc=$?
    stop_spawned
    stop_sim "$sim_port"
    remove_topology
    local ours=()
    mapfile -t ours <"$started_services"
    ((${#ours[@]} == 0)) || scripts/dev/services.sh stop "${ours[@]}" || true
    exit "$rc"
}
trap cleanup EXIT
if ! port_open 127.0.0.1 5672 || ! port_open 127.0.0.1 "${REDIS_PORT:-6379}"; then
    scripts/dev/services.sh start --record "$started_services"
fi
if ((build)); then
    log "building (debug)…"
    swift build --product klaviyo-relay 2>&1 | grep -E "error:" || true
    swift build --product klaviyo-sim 2>&1 | grep -E "error:" || true
fi
relay="$REPO_ROOT/.build/debug/klaviyo-relay"
[[ -x "$relay" && -x .build/debug/klaviyo-sim ]] || die "build failed"

run_id="$(date +%s%N | tail -c 9)"
logs="$(var_path "app-review-$run_id")"
mkdir -p "$logs"
sim_base="http://127.0.0.1:$sim_port"
serve_base="http://127.0.0.1:$http_port"
client_id="heropixel-app-review-$run_id"
klaviyo_account="acct_review_$run_id"
export RELAY_QUEUE_PREFIX="it-appreview-$run_id"
export RELAY_KLAVIYO_API_BASE_URL="$sim_base"
export RELAY_KLAVIYO_AUTHORIZE_URL="$sim_base/oauth/authorize"
export RELAY_KLAVIYO_CLIENT_ID="$client_id"
export RELAY_KLAVIYO_CLIENT_SECRET="app-review-secret-$run_id"
export RELAY_OAUTH_REDIRECT_URL="$serve_base/oauth/klaviyo/callback"
export RELAY_HTTP_PORT="$http_port"
export RELAY_API_TOKEN="app-review-token-$run_id"
export RELAY_LINK_SECRET="app-review-link-secret-$run_id"
export RELAY_RETURN_TO_ALLOWLIST="$serve_base/"
export RELAY_LOG_FORMAT="${RELAY_LOG_FORMAT:-text}"

SIM_BINARY="$REPO_ROOT/.build/debug/klaviyo-sim"
start_sim "$sim_port" "$logs/klaviyo-sim.log" --log-level warning
sim_admin "$sim_base" POST /_sim/oauth/apps \
    "{\"client_id\":\"$client_id\",\"client_secret\":\"$RELAY_KLAVIYO_CLIENT_SECRET\",\"redirect_uris\":[\"$RELAY_OAUTH_REDIRECT_URL\"]}" >/dev/null
sim_admin "$sim_base" POST /_sim/accounts \
    "{\"account_id\":\"$klaviyo_account\",\"api_key\":\"pk_review${run_id}00000000000000000000000\",\"name\":\"App Review Store\"}" >/dev/null
# The reviewer is logged into Klaviyo as that account (the consent page shows it).
sim_admin "$sim_base" POST /_sim/oauth/login "{\"account_id\":\"$klaviyo_account\"}" >/dev/null

"$relay" setup --dev --log-level warning >/dev/null
RELAY_METRICS_PORT="$metrics_port" spawn "$logs/serve.log" "$relay" serve --dev
RELAY_METRICS_PORT=0 spawn "$logs/consumer.log" "$relay" consume --dev
wait_for_port 127.0.0.1 "$http_port" 60 || die "serve did not start; see $logs/serve.log"
log "klaviyo-sim $sim_base, serve $serve_base (metrics :$metrics_port), one consumer; logs in $logs"

shots=()
((keep_screenshots)) && shots=(--screenshots "$screenshots") || shots=(--no-screenshots)
status=0
python3 Tests/browser/app_review.py --serve "$serve_base" --sim "$sim_base" --account "org_review_$run_id" \
    --klaviyo-account "$klaviyo_account" --client-id "$client_id" --return-to "$serve_base/healthz" \
    --relay "$relay" "${shots[@]}" || status=$?
exit "$status"
