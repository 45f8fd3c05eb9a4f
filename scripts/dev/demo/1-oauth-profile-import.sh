#!/usr/bin/env bash
# Demo 1: connect a Klaviyo account with OAuth (PKCE) and import profiles, then show the connection and the
# import job's result.   scripts/dev/demo/1-oauth-profile-import.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
demo_up

sim POST /_sim/accounts '{"account_id":"klaviyo_oauth_demo","api_key":"pk_oauthdemo000000000000000000000000","name":"HeroPixel OAuth Store"}' >/dev/null
log "1. OAuth: authorize URL with PKCE → klaviyo-sim's Allow → code exchange at /oauth/token"
connect_oauth org_oauth_demo klaviyo_oauth_demo
"$relay" connections show --dev --log-level warning --account org_oauth_demo

log "2. profile.bulk_import of 3 profiles into a new list (the job is polled through the delay tiers)"
created="$(now)"
list_id="$(publish_commands <<EOF2 | first_id
{"id":"demo1-list","type":"list.create","account_id":"org_oauth_demo","created_at":"$created","payload":{"name":"HeroPixel Demo Imports"}}
EOF2
)"
publish_commands <<EOF2
{"id":"demo1-import","type":"profile.bulk_import","account_id":"org_oauth_demo","created_at":"$created","payload":{"list_id":"$list_id","profiles":[{"email":"ana@example.com","first_name":"Ana"},{"email":"ben@example.com","first_name":"Ben"}]}}
EOF2

log "3. what klaviyo-sim holds now, and the token calls it saw"
sim GET /_sim/accounts/klaviyo_oauth_demo/profiles | python3 -c 'import json,sys; d=json.load(sys.stdin); print("%d profile(s): %s" % (d["count"], ", ".join(p.get("email") or "?" for p in d["profiles"])))'
sim GET /_sim/stats | python3 -c 'import json,sys; print("token calls:", json.load(sys.stdin)["token_calls"])'
