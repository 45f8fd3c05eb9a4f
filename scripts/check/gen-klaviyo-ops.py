#!/usr/bin/env python3
"""Generate Sources/KlaviyoSimCore/Generated/KlaviyoOperations.swift and
Sources/Klaviyo/Generated/KlaviyoRateLimits.swift from Klaviyo's OpenAPI spec.

Reads the spec named by $KLAVIYO_OPENAPI_SPEC (default: ../shared/klaviyo/openapi/stable.json relative to
the repository root) and writes one Swift table row per operation: method, path template, operationId,
burst (per 1 s), steady (per 60 s), optional daily cap, and scopes. For the operations the simulator
implements (IMPLEMENTED below) it also embeds the request body schema, with every $ref resolved and
documentation-only keys dropped, so the simulator can validate bodies against the spec itself.

The second file is the relay's rate-limit table: burst (per 1 s) and steady (per 60 s) of every operation
that has `x-klaviyo-ratelimit`, keyed by operationId (used by the shared Redis limiter in Sources/Relay).

Usage: python3 scripts/check/gen-klaviyo-ops.py           (run from anywhere; the output paths are fixed)
       python3 scripts/check/gen-klaviyo-ops.py --check   (exit 1 if a generated file differs from the spec)
"""
import json
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = os.environ.get("KLAVIYO_OPENAPI_SPEC", os.path.join(ROOT, "..", "shared", "klaviyo", "openapi", "stable.json"))
OUT = os.path.join(ROOT, "Sources", "KlaviyoSimCore", "Generated", "KlaviyoOperations.swift")
LIMITS_OUT = os.path.join(ROOT, "Sources", "Klaviyo", "Generated", "KlaviyoRateLimits.swift")

# Operations whose request schemas are embedded (the ones the simulator implements or will implement).
IMPLEMENTED = {
    "create_or_update_profile", "create_profile", "update_profile",
    "bulk_import_profiles", "create_list", "add_profiles_to_list", "remove_profiles_from_list",
    "create_event", "bulk_create_events", "create_campaign", "update_campaign", "send_campaign",
    "cancel_campaign_send", "update_flow", "bulk_subscribe_profiles", "bulk_unsubscribe_profiles",
}
KEEP = {"type", "enum", "required", "properties", "items", "nullable", "oneOf", "anyOf", "allOf",
        "additionalProperties", "minItems", "maxItems", "minimum", "maximum", "format"}
METHODS = ("get", "post", "put", "patch", "delete")


def swift_format(text: str, path: str) -> str:
    """The text as the repository formats it (`swift format` with .swift-format), as committed files are.

    Without a Swift toolchain the text is returned as generated, with a warning: the files then differ from
    the committed ones only by formatting (`make format` fixes that).
    """
    swift = shutil.which("swift") or ("/opt/swift/usr/bin/swift" if os.path.exists("/opt/swift/usr/bin/swift") else None)
    if swift is None:
        print("warning: swift not found; generated files are not formatted", file=sys.stderr)
        return text
    result = subprocess.run(
        [swift, "format", "format", "--configuration", os.path.join(ROOT, ".swift-format"),
         "--assume-filename", path],
        input=text, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"swift format failed on {os.path.relpath(path, ROOT)}: {result.stderr.strip()}")
    return result.stdout


def main() -> int:
    with open(SPEC) as f:
        spec = json.load(f)
    schemas = spec["components"]["schemas"]

    def resolve(node, depth=0):
        if depth > 40:
            raise SystemExit("schema nesting too deep")
        if isinstance(node, dict):
            if "$ref" in node:
                return resolve(schemas[node["$ref"].split("/")[-1]], depth + 1)
            out = {}
            for k, v in node.items():
                if k not in KEEP:
                    continue
                if k == "properties":
                    out[k] = {pk: resolve(pv, depth + 1) for pk, pv in v.items()}
                elif k == "format" and v not in ("date-time", "uri", "email"):
                    continue
                else:
                    out[k] = resolve(v, depth + 1)
            return out
        if isinstance(node, list):
            return [resolve(v, depth + 1) for v in node]
        return node

    def rate(value, unit):
        if value is None:
            return "nil"
        n, u = value.split("/")
        if u != unit:
            raise SystemExit(f"unexpected rate unit {value}")
        return str(int(n))

    rows = []
    limits = {}
    for path, item in spec["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if not isinstance(op, dict) or "operationId" not in op:
                continue
            rl = op.get("x-klaviyo-ratelimit", {})
            if rl.get("burst") is not None and rl.get("steady") is not None:
                if op["operationId"] in limits:
                    raise SystemExit(f"duplicate operationId {op['operationId']}")
                limits[op["operationId"]] = (rate(rl["burst"], "s"), rate(rl["steady"], "m"), rate(rl.get("daily"), "d"))
            scopes = op.get("x-klaviyo-scopes", [])
            schema = "nil"
            if op["operationId"] in IMPLEMENTED and "requestBody" in op:
                content = op["requestBody"]["content"]
                body = next(iter(content.values()))["schema"]
                text = json.dumps(resolve(body), separators=(",", ":"), sort_keys=True)
                schema = '#"' + text + '"#'
            rows.append(
                "        KlaviyoOperation(\n"
                f"            method: \"{method.upper()}\", path: \"{path}\", operationId: \"{op['operationId']}\",\n"
                f"            burst: {rate(rl.get('burst'), 's')}, steady: {rate(rl.get('steady'), 'm')}, "
                f"daily: {rate(rl.get('daily'), 'd')},\n"
                f"            scopes: {json.dumps(scopes)},\n"
                f"            requestSchema: {schema}),"
            )

    revision = spec.get("info", {}).get("version", "?")
    operations = (
        "// GENERATED FILE: do not edit by hand.\n"
        f"// Generator: scripts/check/gen-klaviyo-ops.py, from Klaviyo's OpenAPI spec (info.version {revision}).\n"
        "// Regenerate: python3 scripts/check/gen-klaviyo-ops.py (spec path from $KLAVIYO_OPENAPI_SPEC).\n\n"
        "extension KlaviyoOperation {\n"
        f"    /// Every operation of Klaviyo's API revision {revision}, in spec order.\n"
        "    static let all: [KlaviyoOperation] = [\n"
        + "\n".join(rows)
        + "\n    ]\n}\n"
    )
    entries = "\n".join(
        f'        "{op}": KlaviyoRateLimit(burst: {burst}, steady: {steady}'
        + (f", daily: {daily}" if daily != "nil" else "")
        + "),"
        for op, (burst, steady, daily) in sorted(limits.items())
    )
    rate_limits = (
        "// GENERATED FILE: do not edit by hand.\n"
        f"// Generator: scripts/check/gen-klaviyo-ops.py, from Klaviyo's OpenAPI spec (info.version {revision}).\n"
        "// Regenerate: python3 scripts/check/gen-klaviyo-ops.py (spec path from $KLAVIYO_OPENAPI_SPEC).\n\n"
        "/// Klaviyo's rate limits per operation (`x-klaviyo-ratelimit`): burst per 1 s, steady per 60 s, daily cap.\n"
        "public enum KlaviyoRateLimits {\n"
        f"    /// The limits of every operation of API revision {revision} that declares them, by operationId.\n"
        "    public static let table: [String: KlaviyoRateLimit] = [\n"
        + entries
        + "\n    ]\n}\n"
    )
    outputs = [(OUT, operations, f"{len(rows)} operations"), (LIMITS_OUT, rate_limits, f"{len(limits)} rate limits")]
    outputs = [(path, swift_format(text, path), what) for path, text, what in outputs]
    if "--check" in sys.argv[1:]:
        stale = []
        for path, text, _ in outputs:
            try:
                with open(path) as f:
                    current = f.read()
            except FileNotFoundError:
                current = None
            if current != text:
                stale.append(os.path.relpath(path, ROOT))
        if stale:
            print("out of date with the spec (run python3 scripts/check/gen-klaviyo-ops.py): " + ", ".join(stale),
                  file=sys.stderr)
            return 1
        print("generated files match the spec", file=sys.stderr)
        return 0
    for path, text, what in outputs:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        print(f"wrote {what} to {os.path.relpath(path, ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
