#!/usr/bin/env bash
# Demo 3: the API-key alternative: connect with a private key, validate, switch to OAuth, validate, and back
# to the key.   scripts/dev/demo/3-api-key-switch.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
demo_up
validate() {
    publish_commands <<EOF2
{"id":"demo3-validate","type":"connection.validate","account_id":"org_demo","created_at":"$(now)","payload":{}}
EOF2
}

log "1. private API key: validated with GET /api/accounts, stored encrypted"
echo "$demo_key" | "$relay" connections add-api-key --dev --log-level warning --account org_demo --api-key -
"$relay" connections show --dev --log-level warning --account org_demo | grep -E "method|state"
validate

log "2. switch to OAuth (the API key is replaced)"
connect_oauth org_demo org_demo
"$relay" connections show --dev --log-level warning --account org_demo | grep -E "method|state"
validate

log "3. and back to the API key"
echo "$demo_key" | "$relay" connections add-api-key --dev --log-level warning --account org_demo --api-key -
"$relay" connections show --dev --log-level warning --account org_demo | grep -E "method|state"
validate
