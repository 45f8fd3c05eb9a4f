#!/usr/bin/env python3
"""Generate Sources/KlaviyoSimCore/Generated/KlaviyoOperations.swift from Klaviyo's OpenAPI spec.

Reads the spec named by $KLAVIYO_OPENAPI_SPEC (default: ../shared/klaviyo/openapi/stable.json relative to
the repository root) and writes one Swift table row per operation: method, path template, operationId,
burst (per 1 s), steady (per 60 s), optional daily cap, and scopes. For the operations the simulator
implements (IMPLEMENTED below) it also embeds the request body schema, with every $ref resolved and
documentation-only keys dropped, so the simulator can validate bodies against the spec itself.

Usage: python3 scripts/gen-klaviyo-ops.py   (run from anywhere; the output path is fixed)
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.environ.get("KLAVIYO_OPENAPI_SPEC", os.path.join(ROOT, "..", "shared", "klaviyo", "openapi", "stable.json"))
OUT = os.path.join(ROOT, "Sources", "KlaviyoSimCore", "Generated", "KlaviyoOperations.swift")

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
    for path, item in spec["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if not isinstance(op, dict) or "operationId" not in op:
                continue
            rl = op.get("x-klaviyo-ratelimit", {})
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
    with open(OUT, "w") as f:
        f.write(
            "// GENERATED FILE: do not edit by hand.\n"
            f"// Generator: scripts/gen-klaviyo-ops.py, from Klaviyo's OpenAPI spec (info.version {revision}).\n"
            "// Regenerate: python3 scripts/gen-klaviyo-ops.py (spec path from $KLAVIYO_OPENAPI_SPEC).\n\n"
            "extension KlaviyoOperation {\n"
            f"    /// Every operation of Klaviyo's API revision {revision}, in spec order.\n"
            "    static let all: [KlaviyoOperation] = [\n"
        )
        f.write("\n".join(rows))
        f.write("\n    ]\n}\n")
    print(f"wrote {len(rows)} operations to {os.path.relpath(OUT, ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
