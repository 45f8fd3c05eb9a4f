#!/usr/bin/env python3
"""Validate the requests klaviyo-sim recorded against Klaviyo's OpenAPI spec (issue #4, contract tests).

Usage:
  python3 scripts/check/check-requests-against-spec.py [--all] [--since SEQ] http://127.0.0.1:18089
  python3 scripts/check/check-requests-against-spec.py [--all] --file requests.ndjson   # one recorded request a line
  python3 scripts/check/check-requests-against-spec.py --self-test
  … [--min-requests N] [--expect-operations OP,OP,…] URL   # the floor a full test run always exceeds

Reads `GET /_sim/requests` (paginated with since/next_seq) and checks every recorded request:
  /api/…   the path matches an operation's path template; the method is one of that path's operations;
           every required header (incl. `revision`, format YYYY-MM-DD[.suffix]) is present; query parameters
           are declared by the operation and required ones are present; every `operator(field,…)` of a
           `filter` is one the parameter's description allows ("Allowed field(s)/operator(s)"), combined only
           with `and`/`or`/`not`, and no comparison takes a quoted value (Klaviyo's date-times and numbers
           are unquoted in filters); the body (required or not, per the
           operation's requestBody) validates against its schema (OpenAPI 3.0 `nullable` mapped to JSON
           Schema; `oneOf` read as `anyOf`, as check-responses-against-spec.py does); JSON:API content type.
  /oauth/… a simple check: authorize is a GET with the PKCE (S256) parameters; token and revoke are
           form-encoded POSTs with `grant_type` and its fields (token) or `token` (revoke).
By default only requests whose User-Agent starts with `klaviyo-relay` are checked (tests that drive the
simulator directly send malformed requests on purpose); `--all` checks everything.
Exits 1 if any request is invalid, printing each one and why; also exits 1 when fewer than `--min-requests`
requests were checked, or when an operation (the spec's operationId, or `oauth_token` / `oauth_revoke` /
`oauth_authorize`) listed in `--expect-operations` was never seen: an empty or short recording must not pass
as "0 invalid". Needs python3-jsonschema.
Spec path: $KLAVIYO_OPENAPI_SPEC, default ../shared/klaviyo/openapi/stable.json relative to the repo root.
"""
import json
import os
import re
import sys
import urllib.parse
import urllib.request

import jsonschema

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC_PATH = os.environ.get(
    "KLAVIYO_OPENAPI_SPEC", os.path.join(ROOT, "..", "shared", "klaviyo", "openapi", "stable.json"))
RELAY_AGENT = "klaviyo-relay"
REVISION = re.compile(r"^\d{4}-\d{2}-\d{2}(\.[A-Za-z0-9]+)?$")


class Spec:
    def __init__(self, spec):
        self.spec = spec
        self.schemas = spec.get("components", {}).get("schemas", {})
        self.templates = []  # (regex, literal segment count, template)
        for template in spec["paths"]:
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "/?$"
            literals = sum(1 for seg in template.split("/") if seg and not seg.startswith("{"))
            self.templates.append((re.compile(pattern), literals, template))
        self.converted = {}

    def convert(self, node):
        """OpenAPI 3.0 schema → JSON Schema: resolve $ref, map nullable, read oneOf as anyOf."""
        if isinstance(node, dict):
            if "$ref" in node:
                return self.convert(self.schemas[node["$ref"].split("/")[-1]])
            out = {("anyOf" if k == "oneOf" else k): self.convert(v) for k, v in node.items()
                   if k not in ("nullable", "example", "description", "discriminator", "readOnly", "writeOnly")}
            if node.get("nullable"):
                if "type" in out:
                    out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else out["type"] + ["null"]
                if "enum" in out:
                    out["enum"] = out["enum"] + [None]
                if "anyOf" in out:
                    out["anyOf"] = out["anyOf"] + [{"type": "null"}]
            return out
        if isinstance(node, list):
            return [self.convert(v) for v in node]
        return node

    def match(self, path):
        """The path template for a concrete path: the most specific (most literal segments) match."""
        found = [(lit, t) for rx, lit, t in self.templates if rx.match(path)]
        return max(found)[1] if found else None


ALLOWED_FILTERS = re.compile(r"`([^`]+)`: ((?:`[^`]+`(?:, )?)+)")
QUOTED = re.compile(r"\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'")
CONDITION = re.compile(r"([a-z][a-z-]*)\(([A-Za-z0-9_.\-]+),")
COMPARISONS = ("greater-or-equal", "greater-than", "less-or-equal", "less-than")


def filter_problems(description, value):
    """Why a `filter` value is not one its parameter's description allows (empty when it is, or when the
    description lists no allowed fields)."""
    marker = "Allowed field(s)/operator(s):"
    if marker not in description:
        return []
    allowed = {field: set(re.findall(r"`([^`]+)`", ops))
               for field, ops in ALLOWED_FILTERS.findall(description[description.index(marker):])}
    bare = QUOTED.sub('""', value)  # a quoted value cannot be mistaken for a condition
    problems = []
    conditions = CONDITION.findall(bare)
    if not conditions:
        problems.append(f"filter {value!r} has no operator(field,value) condition")
    for op, field in conditions:
        if op in ("and", "or", "not"):
            continue
        if op not in allowed.get(field, set()):
            problems.append(f"filter condition {op}({field},…) is not allowed (allowed: "
                            + ", ".join(f"{f}: {'/'.join(sorted(o))}" for f, o in allowed.items()) + ")")
        elif op in COMPARISONS and re.search(re.escape(f"{op}({field},") + '""', bare):
            problems.append(f"filter condition {op}({field},…) compares with a quoted value (Klaviyo takes "
                            "date-times and numbers unquoted)")
    return problems


def check_api(spec, req):
    """The problems with one recorded /api request (empty when valid)."""
    problems = []
    path, method = req.get("path", ""), req.get("method", "").upper()
    template = spec.match(path)
    if template is None:
        return [f"no operation in the spec has a path template matching {path}"]
    op = spec.spec["paths"][template].get(method.lower())
    if op is None:
        return [f"{template} has no {method} operation"]
    headers = {k.lower(): v for k, v in (req.get("headers") or {}).items()}
    params = op.get("parameters", []) + spec.spec["paths"][template].get("parameters", [])
    declared_query = set()
    query = urllib.parse.parse_qs(req.get("query") or "", keep_blank_values=True)
    for p in params:
        if "$ref" in p:
            p = spec.spec["components"]["parameters"][p["$ref"].split("/")[-1]]
        if p["in"] == "header" and p.get("required") and p["name"].lower() not in headers:
            problems.append(f"required header `{p['name']}` missing")
        if p["in"] == "query":
            declared_query.add(p["name"])
            if p.get("required") and p["name"] not in query:
                problems.append(f"required query parameter `{p['name']}` missing")
            if p["name"] == "filter":
                for value in query.get("filter", []):
                    problems += filter_problems(p.get("description", ""), value)
    if "revision" in headers and not REVISION.match(headers["revision"]):
        problems.append(f"revision header {headers['revision']!r} is not YYYY-MM-DD[.suffix]")
    if not headers.get("authorization", "").startswith(("Klaviyo-API-Key ", "Bearer ")):
        problems.append("authorization is neither `Klaviyo-API-Key …` nor `Bearer …`")
    for name in query:
        if name not in declared_query:
            problems.append(f"query parameter `{name}` is not declared by {method} {template}")
    body = req.get("body")
    request_body = op.get("requestBody")
    if request_body is None:
        if body is not None:
            problems.append(f"{method} {template} takes no body, but one was sent")
    elif body is None:
        if request_body.get("required"):
            problems.append(f"{method} {template} requires a body, none was sent")
    else:
        content = request_body.get("content", {})
        ctype = headers.get("content-type", "").split(";")[0].strip()
        if ctype not in content:
            problems.append(f"content-type {ctype!r} is not one of {sorted(content)}")
        media = content.get(ctype) or next(iter(content.values()))
        if isinstance(body, str):
            problems.append("body is not JSON")
        else:
            key = (template, method)
            if key not in spec.converted:
                spec.converted[key] = spec.convert(media["schema"])
            validator = jsonschema.Draft7Validator(spec.converted[key])
            for err in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))[:3]:
                pointer = "/" + "/".join(str(p) for p in err.absolute_path)
                problems.append(f"body {pointer}: {err.message[:300]}")
    return problems


def check_oauth(req):
    """A simple check of an OAuth request (not part of the /api spec)."""
    path, method = req.get("path", ""), req.get("method", "").upper()
    body = req.get("body")
    ctype = (req.get("headers") or {}).get("content-type", "")
    if path == "/oauth/authorize":
        # The browser step of the authorization-code flow with PKCE (S256).
        query = urllib.parse.parse_qs(req.get("query") or "", keep_blank_values=True)
        if method != "GET":
            return [f"{method} /oauth/authorize: the authorization request is a GET"]
        problems = [f"/oauth/authorize: `{k}` missing" for k in
                    ("response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge",
                     "code_challenge_method") if k not in query]
        if query.get("response_type", ["code"])[0] != "code":
            problems.append("/oauth/authorize: response_type must be code")
        if query.get("code_challenge_method", ["S256"])[0] != "S256":
            problems.append("/oauth/authorize: code_challenge_method must be S256")
        return problems
    if method != "POST":
        return [f"{method} {path}: OAuth endpoints take POST"]
    if not ctype.startswith("application/x-www-form-urlencoded"):
        return [f"{path}: content-type {ctype!r}, expected application/x-www-form-urlencoded"]
    if not isinstance(body, dict):
        return [f"{path}: no form body"]
    if path == "/oauth/token":
        grant = body.get("grant_type")
        need = {"authorization_code": ["code", "code_verifier", "redirect_uri"],
                "refresh_token": ["refresh_token"]}.get(grant)
        if need is None:
            return [f"/oauth/token: grant_type {grant!r} is neither authorization_code nor refresh_token"]
        return [f"/oauth/token: `{k}` missing" for k in need if k not in body]
    if path == "/oauth/revoke":
        return [] if "token" in body else ["/oauth/revoke: `token` missing"]
    return [f"unknown OAuth endpoint {path}"]


def operation_of(spec, req):
    """The spec's operationId of a recorded request (`oauth_token` etc. for OAuth paths), or None."""
    path, method = req.get("path", ""), req.get("method", "").lower()
    if path.startswith("/oauth/"):
        return "oauth_" + path[len("/oauth/"):].strip("/")
    template = spec.match(path)
    if template is None:
        return None
    return (spec.spec["paths"][template].get(method) or {}).get("operationId")


def check_all(spec, requests, everything=False, seen=None):
    """(checked, [(request, problems)]); counts each checked request's operation in `seen` (a dict) if given."""
    checked, invalid = 0, []
    for req in requests:
        agent = (req.get("headers") or {}).get("user-agent", "")
        if not everything and not agent.startswith(RELAY_AGENT):
            continue
        path = req.get("path", "")
        if path.startswith("/api/"):
            problems = check_api(spec, req)
        elif path.startswith("/oauth/"):
            problems = check_oauth(req)
        else:
            problems = [f"{path} is neither a Klaviyo /api path nor an OAuth path"]
        checked += 1
        if seen is not None:
            operation = operation_of(spec, req)
            seen[operation] = seen.get(operation, 0) + 1
        if problems:
            invalid.append((req, problems))
    return checked, invalid


def fetch(base, since=0):
    while True:
        url = f"{base.rstrip('/')}/_sim/requests?since={since}&limit=5000"
        with urllib.request.urlopen(url, timeout=30) as r:
            page = json.load(r)
        yield from page["requests"]
        if not page["requests"] or page["next_seq"] <= since:
            return
        since = page["next_seq"]


def self_test(spec):
    """The validator accepts a good request and rejects each deliberately broken variant."""
    good = {
        "seq": 1, "method": "POST", "path": "/api/profile-import", "query": "", "status": 201,
        "headers": {"revision": "2025-10-15", "content-type": "application/vnd.api+json",
                    "accept": "application/vnd.api+json", "user-agent": "klaviyo-relay/test",
                    "authorization": "Klaviyo-API-Key pk_…REDACTED"},
        "body": {"data": {"type": "profile", "attributes": {"email": "sarah@example.com", "first_name": None}}},
    }
    broken = {
        "missing revision": lambda r: r["headers"].pop("revision"),
        "bad revision": lambda r: r["headers"].update(revision="15-10-2025"),
        "unknown path": lambda r: r.update(path="/api/profile-imports"),
        "wrong method": lambda r: r.update(method="PUT"),
        "wrong resource type": lambda r: r["body"]["data"].update(type="profiles"),
        "missing data": lambda r: r.update(body={"attributes": {}}),
        "attribute of wrong type": lambda r: r["body"]["data"]["attributes"].update(email=42),
        "undeclared query": lambda r: r.update(query="page%5Bsize%5D=5"),
        "no body": lambda r: r.update(body=None),
        "no auth": lambda r: r["headers"].pop("authorization"),
    }
    failures = []
    _, invalid = check_all(spec, [good])
    if invalid:
        failures.append(f"the good request was rejected: {invalid[0][1]}")
    get_ok = {**good, "method": "GET", "path": "/api/campaign-send-jobs/01JOB", "body": None, "query": ""}
    _, invalid = check_all(spec, [get_ok])
    if invalid:
        failures.append(f"a good GET was rejected: {invalid[0][1]}")
    # The campaign lookup campaign.create makes after an ambiguous attempt, and broken variants of its filter.
    lookup = ("and(equals(messages.channel,'email'),contains(name,\"Say \\\"hi(x,\\\"\"),"
              "greater-or-equal(created_at,2026-11-29T11:50:00Z))")
    campaigns = {**get_ok, "path": "/api/campaigns",
                 "query": urllib.parse.urlencode({"filter": lookup, "sort": "created_at"})}
    _, invalid = check_all(spec, [campaigns])
    if invalid:
        failures.append(f"the campaign lookup was rejected: {invalid[0][1]}")
    for name, bad in {
        "filter on a field the operation does not allow": lookup.replace("contains(name", "contains(subject"),
        "filter with an operator the field does not allow": lookup.replace("contains(name", "equals(name"),
        "filter comparing with a quoted date-time": lookup.replace("T11:50:00Z", "T11:50:00Z'").replace(
            "created_at,", "created_at,'"),
    }.items():
        _, invalid = check_all(spec, [{**campaigns, "query": urllib.parse.urlencode({"filter": bad})}])
        if not invalid:
            failures.append(f"broken request ({name}) was accepted")
        else:
            print(f"self-test: rejected ({name}): {invalid[0][1][0]}")
    for name, breaker in broken.items():
        req = json.loads(json.dumps(good))
        breaker(req)
        _, invalid = check_all(spec, [req])
        if not invalid:
            failures.append(f"broken request ({name}) was accepted")
        else:
            print(f"self-test: rejected ({name}): {invalid[0][1][0]}")
    oauth_bad = {"method": "POST", "path": "/oauth/token", "headers": {"user-agent": "klaviyo-relay/test",
                 "content-type": "application/x-www-form-urlencoded"}, "body": {"grant_type": "refresh_token"}}
    if not check_all(spec, [oauth_bad])[1]:
        failures.append("OAuth refresh without refresh_token was accepted")
    authorize = {"method": "GET", "path": "/oauth/authorize", "headers": {"user-agent": "klaviyo-relay/test"},
                 "query": "response_type=code&client_id=c&redirect_uri=http%3A%2F%2Fx&scope=accounts%3Aread"
                          "&state=s&code_challenge=abc&code_challenge_method=S256"}
    if check_all(spec, [authorize])[1]:
        failures.append("a good /oauth/authorize was rejected")
    if not check_all(spec, [{**authorize, "query": authorize["query"].replace("S256", "plain")}])[1]:
        failures.append("/oauth/authorize with code_challenge_method=plain was accepted")
    if not floor_problems(spec, [], 1, ["create_event"]):
        failures.append("an empty recording passed a floor of one request")
    if not floor_problems(spec, [good], 1, ["create_event"]):
        failures.append("a recording without create_event passed --expect-operations create_event")
    if floor_problems(spec, [good, get_ok], 2, ["create_or_update_profile", "get_campaign_send_job"]):
        failures.append("a recording meeting its floor was rejected")
    for f in failures:
        print(f"self-test FAIL: {f}", file=sys.stderr)
    return 1 if failures else 0


def floor_problems(spec, requests, min_requests, expected_operations, everything=False):
    """Why a recording is too thin to mean anything (empty when it meets the floor)."""
    seen = {}
    checked, _ = check_all(spec, requests, everything, seen)
    problems = []
    if checked < min_requests:
        problems.append(f"only {checked} request(s) checked, fewer than the {min_requests} the suite always makes")
    missing = [op for op in expected_operations if not seen.get(op)]
    if missing:
        problems.append("never saw " + ", ".join(missing))
    return problems


def take_option(argv, name):
    """(value or None, argv without `name value`)."""
    if name not in argv:
        return None, argv
    i = argv.index(name)
    return argv[i + 1], argv[:i] + argv[i + 2:]


def main(argv):
    everything = "--all" in argv
    argv = [a for a in argv if a != "--all"]
    min_requests, argv = take_option(argv, "--min-requests")
    min_requests = int(min_requests or 0)
    expected, argv = take_option(argv, "--expect-operations")
    expected = [op for op in (expected or "").split(",") if op]
    try:
        spec = Spec(json.load(open(SPEC_PATH)))
    except OSError as e:
        sys.exit(f"cannot read Klaviyo's OpenAPI spec at {SPEC_PATH} ({e.strerror}); set KLAVIYO_OPENAPI_SPEC")
    if argv[:1] == ["--self-test"]:
        return self_test(spec)
    since = 0
    if argv[:1] == ["--since"]:
        since, argv = int(argv[1]), argv[2:]
    if argv[:1] == ["--file"]:
        with open(argv[1]) as f:
            requests = [json.loads(line) for line in f if line.strip()]
        source = argv[1]
    elif len(argv) == 1:
        requests, source = list(fetch(argv[0], since)), argv[0]
    else:
        print(__doc__, file=sys.stderr)
        return 2
    seen = {}
    checked, invalid = check_all(spec, requests, everything, seen)
    for req, problems in invalid:
        print(f"INVALID #{req.get('seq')} {req.get('method')} {req.get('path')}"
              f"{'?' + req['query'] if req.get('query') else ''}:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
    print(f"check-requests-against-spec: {checked} request(s) from {source} checked against "
          f"{os.path.relpath(SPEC_PATH)}, {len(invalid)} invalid")
    thin = floor_problems(spec, requests, min_requests, expected, everything) if (min_requests or expected) else []
    for p in thin:
        print(f"check-requests-against-spec: FAIL: {p}", file=sys.stderr)
    if min_requests or expected:
        print(f"check-requests-against-spec: floor {min_requests} request(s), {len(expected)} operation(s) expected: "
              f"{'met' if not thin else 'NOT met'} ({len(seen)} distinct operation(s) seen)")
    return 1 if invalid or thin else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
