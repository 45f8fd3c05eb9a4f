#!/usr/bin/env python3
"""Structural check of schemas/asyncapi.yaml (part of scripts/test.sh).

No AsyncAPI 3.0 validator is packaged for Debian or installable offline, so this checks what a consumer of
the document relies on:
  - it parses as YAML, `asyncapi: 3.0.0`, has info.title/info.version, channels, operations;
  - every `$ref` resolves: local (`#/…`) to an existing node, relative files (`./x.schema.json#/…`) to an
    existing JSON Schema file (and the fragment inside it);
  - every operation has action send|receive, a channel ref, and its messages are messages of that channel;
  - every command schema in schemas/commands/ is a message of the commands channel (and no other type is).
Exits 1 with the problems. `--self-test` breaks a copy on purpose and makes sure each breakage is reported.
"""
import copy
import json
import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent / "schemas"
DOC = ROOT / "asyncapi.yaml"


def pointer(node, fragment):
    for part in [p for p in fragment.lstrip("/").split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(part)
    return node


def refs(node, where="#"):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield where, v
            else:
                yield from refs(v, f"{where}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from refs(v, f"{where}/{i}")


def check(doc):
    problems = []
    if not isinstance(doc, dict):
        return ["not a YAML mapping"]
    if doc.get("asyncapi") != "3.0.0":
        problems.append(f"asyncapi is {doc.get('asyncapi')!r}, expected '3.0.0'")
    info = doc.get("info") or {}
    for key in ("title", "version"):
        if not info.get(key):
            problems.append(f"info.{key} missing")
    for key in ("channels", "operations"):
        if not isinstance(doc.get(key), dict) or not doc[key]:
            problems.append(f"{key} missing or empty")
    for where, ref in refs(doc):
        target, _, fragment = ref.partition("#")
        try:
            if target == "":
                pointer(doc, fragment)
            else:
                path = (ROOT / target).resolve()
                if not path.is_file():
                    problems.append(f"{where}: $ref {ref}: no file {path}")
                    continue
                pointer(json.loads(path.read_text()), fragment)
        except KeyError as e:
            problems.append(f"{where}: $ref {ref} does not resolve (no {e})")
    channels = doc.get("channels") or {}
    for name, op in (doc.get("operations") or {}).items():
        if op.get("action") not in ("send", "receive"):
            problems.append(f"operations/{name}: action {op.get('action')!r}")
        cref = (op.get("channel") or {}).get("$ref", "")
        if not cref.startswith("#/channels/"):
            problems.append(f"operations/{name}: channel is not a #/channels/ ref")
            continue
        channel = cref.split("/")[2]
        for m in op.get("messages", []):
            if not m.get("$ref", "").startswith(f"#/channels/{channel}/messages/"):
                problems.append(f"operations/{name}: message {m.get('$ref')} is not a message of channel {channel}")
    types = {p.name[: -len(".schema.json")] for p in (ROOT / "commands").glob("*.schema.json")}
    messages = (doc.get("components") or {}).get("messages") or {}
    documented = set()
    for ref in (channels.get("commands") or {}).get("messages", {}).values():
        msg = messages.get(ref.get("$ref", "").split("/")[-1]) or {}
        documented.add(msg.get("name"))
        payload = (msg.get("payload") or {}).get("$ref", "")
        if payload != f"./commands/{msg.get('name')}.schema.json":
            problems.append(f"message {msg.get('name')}: payload {payload!r} is not its command schema")
    for t in sorted(types - documented):
        problems.append(f"command type {t} has a schema but no message on the commands channel")
    for t in sorted(documented - types):
        problems.append(f"message {t} on the commands channel has no schema in schemas/commands/")
    return problems


def self_test(doc):
    breakers = {
        "wrong version": lambda d: d.update(asyncapi="2.6.0"),
        "dangling file ref": lambda d: d["channels"]["results"]["messages"].update(
            result={"$ref": "./nope.schema.json"}),
        "dangling local ref": lambda d: d["operations"]["publishResult"]["messages"].append(
            {"$ref": "#/channels/results/messages/nope"}),
        "missing command message": lambda d: d["channels"]["commands"]["messages"].popitem(),
        "message of another channel": lambda d: d["operations"]["publishResult"]["messages"].append(
            {"$ref": "#/channels/dead_letters/messages/dead_letter"}),
    }
    failed = [f"the real document: {p}" for p in check(doc)]
    for name, breaker in breakers.items():
        broken = copy.deepcopy(doc)
        breaker(broken)
        if not check(broken):
            failed.append(f"breakage not reported: {name}")
    for f in failed:
        print(f"check-asyncapi self-test FAIL: {f}", file=sys.stderr)
    return 1 if failed else 0


def main(argv):
    doc = yaml.safe_load(DOC.read_text())
    if argv[:1] == ["--self-test"]:
        return self_test(doc)
    problems = check(doc)
    for p in problems:
        print(f"asyncapi.yaml: {p}", file=sys.stderr)
    if not problems:
        print(f"check-asyncapi: {DOC.relative_to(ROOT.parent)} is AsyncAPI 3.0.0, "
              f"{sum(1 for _ in refs(doc))} $refs resolve")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
