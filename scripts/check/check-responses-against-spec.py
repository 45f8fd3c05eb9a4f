#!/usr/bin/env python3
"""Drive a running klaviyo-sim through every implemented operation and validate each success response body
against the response schema of Klaviyo's OpenAPI spec (jsonschema, OpenAPI `nullable` mapped to JSON Schema).

Usage: python3 scripts/check/check-responses-against-spec.py http://127.0.0.1:8089
Needs: python3-jsonschema. Spec path from $KLAVIYO_OPENAPI_SPEC (default ../shared/klaviyo/openapi/stable.json).
Exits non-zero on the first schema violation or unexpected status.
"""
import json
import os
import sys
import time
import urllib.parse
import urllib.request

import jsonschema

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = os.environ.get("KLAVIYO_OPENAPI_SPEC", os.path.join(ROOT, "..", "shared", "klaviyo", "openapi", "stable.json"))
BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8089"
KEY = "pk_contract_check"

spec = json.load(open(SPEC))
schemas = spec["components"]["schemas"]


def convert(node):
    """OpenAPI 3.0 schema → JSON Schema: resolve $ref, map nullable, read oneOf as anyOf (the spec has oneOf
    lists whose branches overlap, e.g. send_options, which strict oneOf can never satisfy)."""
    if isinstance(node, dict):
        if "$ref" in node:
            return convert(schemas[node["$ref"].split("/")[-1]])
        out = {("anyOf" if k == "oneOf" else k): convert(v) for k, v in node.items()
               if k not in ("nullable", "example", "description")}
        if node.get("nullable"):
            if "type" in out:
                out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = out["enum"] + [None]
            if "oneOf" in out or "anyOf" in out:
                key = "oneOf" if "oneOf" in out else "anyOf"
                out = {"anyOf": out.pop(key) + [{"type": "null"}], **out}
        return out
    if isinstance(node, list):
        return [convert(v) for v in node]
    return node


def response_schema(path, method, status):
    op = spec["paths"][path][method.lower()]
    resp = op["responses"][str(status)]
    content = resp.get("content")
    if not content:
        return None
    return convert(next(iter(content.values()))["schema"])


def call(method, url, body=None, headers=None):
    h = {"revision": "2025-10-15", "Authorization": f"Klaviyo-API-Key {KEY}",
         "Content-Type": "application/vnd.api+json", "Accept": "application/vnd.api+json"}
    h.update(headers or {})
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, (json.loads(raw) if raw else None)


checked = 0


def check(method, url, template, expected, body=None):
    global checked
    status, payload = call(method, url, body)
    if status != expected:
        sys.exit(f"FAIL {method} {url}: status {status}, expected {expected}: {payload}")
    schema = response_schema(template, method, status)
    if schema is None:
        if payload is not None:
            sys.exit(f"FAIL {method} {url}: spec has no body for {status} but got one")
    else:
        try:
            jsonschema.validate(payload, schema)
        except jsonschema.ValidationError as e:
            sys.exit(f"FAIL {method} {url}: {e.message} at {list(e.absolute_path)}")
    checked += 1
    print(f"ok   {method} {template} -> {status}")
    return payload


def main():
    urllib.request.urlopen(urllib.request.Request(BASE + "/_sim/reset", data=b"", method="POST"))
    acct = json.dumps({"account_id": "acct_contract", "api_key": KEY, "name": "Contract Store"}).encode()
    urllib.request.urlopen(urllib.request.Request(BASE + "/_sim/accounts", data=acct, method="POST",
                                                  headers={"Content-Type": "application/json"}))
    check("GET", "/api/accounts", "/api/accounts", 200)
    profile = {"data": {"type": "profile", "attributes": {"email": "c@example.com", "phone_number": "+15005550006",
                                                          "external_id": "c-1", "first_name": "C",
                                                          "location": {"city": "Boston", "latitude": 42.3},
                                                          "properties": {"plan": "pro"}}}}
    p = check("POST", "/api/profile-import", "/api/profile-import", 201, profile)
    pid = p["data"]["id"]
    check("POST", "/api/profile-import", "/api/profile-import", 200, profile)
    check("POST", "/api/profiles", "/api/profiles", 201,
          {"data": {"type": "profile", "attributes": {"email": "d@example.com"}}})
    check("GET", "/api/profiles?page%5Bsize%5D=1", "/api/profiles", 200)
    check("GET", f"/api/profiles/{pid}", "/api/profiles/{id}", 200)
    check("PATCH", f"/api/profiles/{pid}", "/api/profiles/{id}", 200,
          {"data": {"type": "profile", "id": pid, "attributes": {"last_name": "D"}}})
    lst = check("POST", "/api/lists", "/api/lists", 201, {"data": {"type": "list", "attributes": {"name": "L"}}})
    lid = lst["data"]["id"]
    check("GET", "/api/lists", "/api/lists", 200)
    check("GET", f"/api/lists/{lid}", "/api/lists/{id}", 200)
    check("POST", f"/api/lists/{lid}/relationships/profiles", "/api/lists/{id}/relationships/profiles", 204,
          {"data": [{"type": "profile", "id": pid}]})
    check("DELETE", f"/api/lists/{lid}/relationships/profiles", "/api/lists/{id}/relationships/profiles", 204,
          {"data": [{"type": "profile", "id": pid}]})
    check("POST", "/api/events", "/api/events", 202, {"data": {"type": "event", "attributes": {
        "properties": {"a": 1}, "unique_id": "u1", "metric": {"data": {"type": "metric", "attributes": {"name": "M"}}},
        "profile": {"data": {"type": "profile", "attributes": {"email": "c@example.com"}}}}}})
    check("POST", "/api/event-bulk-create-jobs", "/api/event-bulk-create-jobs", 202, {"data": {
        "type": "event-bulk-create-job", "attributes": {"events-bulk-create": {"data": [{
            "type": "event-bulk-create", "attributes": {
                "profile": {"data": {"type": "profile", "attributes": {"email": "c@example.com"}}},
                "events": {"data": [{"type": "event", "attributes": {"properties": {}, "metric": {"data": {
                    "type": "metric", "attributes": {"name": "M"}}}}}]}}}]}}}})
    job = check("POST", "/api/profile-bulk-import-jobs", "/api/profile-bulk-import-jobs", 202, {"data": {
        "type": "profile-bulk-import-job", "attributes": {"profiles": {"data": [
            {"type": "profile", "attributes": {"email": "e@example.com"}}]}},
        "relationships": {"lists": {"data": [{"type": "list", "id": lid}]}}}})
    jid = job["data"]["id"]
    check("GET", f"/api/profile-bulk-import-jobs/{jid}", "/api/profile-bulk-import-jobs/{job_id}", 200)
    check("GET", f"/api/profile-bulk-import-jobs/{jid}/import-errors",
          "/api/profile-bulk-import-jobs/{id}/import-errors", 200)
    # A finished job with row errors (paged), and the job list (newest first, filtered, paged).
    bad = check("POST", "/api/profile-bulk-import-jobs", "/api/profile-bulk-import-jobs", 202, {"data": {
        "type": "profile-bulk-import-job", "attributes": {"profiles": {"data": [
            {"type": "profile", "attributes": {"email": f"bad,{n}@example.com"}} for n in range(2)]}}}})
    for _ in range(50):
        status, polled = call("GET", f"/api/profile-bulk-import-jobs/{bad['data']['id']}")
        if status == 200 and polled["data"]["attributes"]["status"] == "complete":
            break
        time.sleep(0.2)
    errors = check("GET", f"/api/profile-bulk-import-jobs/{bad['data']['id']}/import-errors?page%5Bsize%5D=1",
                   "/api/profile-bulk-import-jobs/{id}/import-errors", 200)
    if len(errors["data"]) != 1 or "next" not in errors["links"]:
        sys.exit(f"FAIL import errors page: {errors}")
    check("GET", "/api/profile-bulk-import-jobs?sort=-created_at&filter=equals(status,'complete')&page%5Bsize%5D=1",
          "/api/profile-bulk-import-jobs", 200)
    sub = {"data": {"type": "profile-subscription-bulk-create-job", "attributes": {"profiles": {"data": [
        {"type": "profile", "attributes": {"email": "c@example.com", "subscriptions": {
            "email": {"marketing": {"consent": "SUBSCRIBED"}}}}}]}},
        "relationships": {"list": {"data": {"type": "list", "id": lid}}}}}
    check("POST", "/api/profile-subscription-bulk-create-jobs", "/api/profile-subscription-bulk-create-jobs", 202, sub)
    unsub = json.loads(json.dumps(sub))
    unsub["data"]["type"] = "profile-subscription-bulk-delete-job"
    unsub["data"]["attributes"]["profiles"]["data"][0]["attributes"]["subscriptions"]["email"]["marketing"]["consent"] = "UNSUBSCRIBED"
    check("POST", "/api/profile-subscription-bulk-delete-jobs", "/api/profile-subscription-bulk-delete-jobs", 202, unsub)
    camp = check("POST", "/api/campaigns", "/api/campaigns", 201, {"data": {"type": "campaign", "attributes": {
        "name": "C", "audiences": {"included": [lid]}, "send_strategy": {"method": "immediate"},
        "campaign-messages": {"data": [{"type": "campaign-message", "attributes": {"definition": {
            "channel": "email", "label": "Main", "content": {"subject": "Hi", "from_email": "s@example.com",
                                                             "from_label": "S"}}}}]}}}})
    cid = camp["data"]["id"]
    check("GET", "/api/campaigns?filter=equals(messages.channel,'email')", "/api/campaigns", 200)
    # The lookup campaign.create makes after an ambiguous attempt: and(…) of channel, name and created_at.
    lookup = ("and(equals(messages.channel,'email'),contains(name,\"C\"),"
              "greater-or-equal(created_at,2020-01-01T00:00:00Z))")
    found = check("GET", "/api/campaigns?filter=" + urllib.parse.quote(lookup, safe="") + "&sort=created_at",
                  "/api/campaigns", 200)
    if [c["id"] for c in found["data"]] != [cid]:
        sys.exit(f"FAIL the campaign lookup did not find exactly the campaign {cid}: {found['data']}")
    check("GET", f"/api/campaigns/{cid}", "/api/campaigns/{id}", 200)
    check("PATCH", f"/api/campaigns/{cid}", "/api/campaigns/{id}", 200,
          {"data": {"type": "campaign", "id": cid, "attributes": {"name": "C2"}}})
    check("POST", "/api/campaign-send-jobs", "/api/campaign-send-jobs", 202,
          {"data": {"type": "campaign-send-job", "id": cid}})
    check("GET", f"/api/campaign-send-jobs/{cid}", "/api/campaign-send-jobs/{id}", 200)
    check("PATCH", f"/api/campaign-send-jobs/{cid}", "/api/campaign-send-jobs/{id}", 204,
          {"data": {"type": "campaign-send-job", "id": cid, "attributes": {"action": "cancel"}}})
    flows = check("GET", "/api/flows", "/api/flows", 200)
    fid = flows["data"][0]["id"]
    check("GET", f"/api/flows/{fid}", "/api/flows/{id}", 200)
    check("PATCH", f"/api/flows/{fid}", "/api/flows/{id}", 200,
          {"data": {"type": "flow", "id": fid, "attributes": {"status": "live"}}})
    with urllib.request.urlopen(BASE + "/_sim/accounts/acct_contract/metrics") as r:
        mid = json.loads(r.read())["metrics"][0]["id"]
    for kind, template in (("campaign", "/api/campaign-values-reports"), ("flow", "/api/flow-values-reports")):
        report = check("POST", template, template, 200, {"data": {"type": f"{kind}-values-report", "attributes": {
            "statistics": ["opens", "open_rate", "conversions"], "timeframe": {"key": "last_30_days"},
            "conversion_metric_id": mid}}})
        if not report["data"]["attributes"]["results"]:
            sys.exit(f"FAIL POST {template}: no results for the sent campaign / live flow")
    # Error bodies: the spec's ClientError shape.
    status, err = call("GET", "/api/profiles/NOPE")
    jsonschema.validate(err, convert(spec["components"]["responses"]["ClientError"]["content"]["application/vnd.api+json"]["schema"]))
    print(f"{checked} passed, 0 failed")


if __name__ == "__main__":
    main()
