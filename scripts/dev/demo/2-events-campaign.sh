#!/usr/bin/env bash
# Demo 2: track events and create and send an email campaign, printing every result.
#   scripts/dev/demo/2-events-campaign.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
demo_up
echo "$demo_key" | "$relay" connections add-api-key --dev --log-level warning --account org_demo --api-key -
created="$(now)"

log "1. a list for the campaign, then events: one Placed Order and a bulk of two Viewed Product"
list_id="$(publish_commands <<EOF2 | first_id
{"id":"demo2-list","type":"list.create","account_id":"org_demo","created_at":"$created","payload":{"name":"HeroPixel Campaign Audience"}}
EOF2
)"
publish_commands <<EOF2
{"id":"demo2-order","type":"event.track","account_id":"org_demo","created_at":"$created","payload":{"metric":"Placed Order","profile":{"email":"sarah.mason@example.com"},"properties":{"order_id":"1001"},"value":49.9,"value_currency":"USD"}}
{"id":"demo2-views","type":"event.bulk_track","account_id":"org_demo","created_at":"$created","payload":{"events":[{"metric":"Viewed Product","profile":{"email":"sarah.mason@example.com"},"properties":{"sku":"A1"}},{"metric":"Viewed Product","profile":{"email":"omar.diaz@example.com"},"properties":{"sku":"B2"}}]}}
EOF2

log "2. campaign.create for that list, then campaign.send (the send job is polled without holding a consumer)"
campaign_id="$(publish_commands <<EOF2 | first_id
{"id":"demo2-campaign","type":"campaign.create","account_id":"org_demo","created_at":"$created","payload":{"name":"HeroPixel Demo Campaign","audiences":{"included":["$list_id"]},"message":{"subject":"Hello from HeroPixel","from_email":"store@example.com","from_label":"HeroPixel Store"}}}
EOF2
)"
[[ -n "$campaign_id" ]] || die "no campaign found in klaviyo-sim"
publish_commands <<EOF2
{"id":"demo2-send","type":"campaign.send","account_id":"org_demo","created_at":"$created","payload":{"campaign_id":"$campaign_id"}}
EOF2
sim GET /_sim/accounts/org_demo/events | python3 -c 'import json,sys; d=json.load(sys.stdin); ev=d.get("events",d); print("%d event(s) in klaviyo-sim" % len(ev))'
