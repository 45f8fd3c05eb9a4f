#!/usr/bin/env python3
"""Validates schemas/asyncapi.yaml as AsyncAPI 3.0 (part of scripts/test.sh).

1. The AsyncAPI 3.0.0 object model of pydantic-asyncapi (PyPI, pinned in scripts/dev/install-deps.sh): every
   object, field type, required field and enum of the specification. Two tightenings and one correction:
   - a key an object does not define must be a specification extension (`x-…`), as the spec requires
     (the models themselves silently accept unknown keys, so a misspelled field would pass);
   - the AMQP bindings are checked against the AMQP bindings specification 0.3.0
     (github.com/asyncapi/bindings/blob/master/amqp/README.md), which pydantic-asyncapi 0.3.2 deviates from:
     it names the channel kinds `queue`/`exchange` (the spec: `queue`/`routingKey`) and requires a message
     binding's optional contentEncoding and messageType. Our models (below) follow the spec and forbid
     unknown fields, so e.g. deliveryMode on a message binding (it is an operation binding) is reported.
2. What a consumer of the document relies on, beyond the object model:
  - it parses as YAML, `asyncapi: 3.0.0`, has info.title/info.version, channels, operations;
  - every `$ref` resolves: local (`#/…`) to an existing node, relative files (`./x.schema.json#/…`) to an
    existing JSON Schema file (and the fragment inside it);
  - every operation has action send|receive, a channel ref, and its messages are messages of that channel;
  - every command schema in schemas/commands/ is a message of the commands channel (and no other type is).
Exits 1 with the problems. `--self-test` breaks a copy on purpose and makes sure each breakage is reported.
"""
import copy
import functools
import importlib.util
import json
import pathlib
import sys
import types
from typing import Literal, Optional

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2] / "schemas"
DOC = ROOT / "asyncapi.yaml"


@functools.cache
def load_asyncapi_v3():
    """pydantic-asyncapi's v3 models, built on AMQP binding models that follow the bindings spec 0.3.0.

    The package's modules bind the AMQP models at import time, so they are replaced in its bindings module
    before v3 (and common) are imported; the package's __init__ (a v2/v3 union) is not needed and not run."""
    from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, model_validator

    spec = importlib.util.find_spec("pydantic_asyncapi")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("check-asyncapi: pydantic-asyncapi is not installed (scripts/dev/install-deps.sh installs it)")
    package = types.ModuleType("pydantic_asyncapi")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["pydantic_asyncapi"] = package
    import pydantic_asyncapi.bindings.amqp as amqp

    class Strict(BaseModel):
        model_config = ConfigDict(extra="forbid", populate_by_name=True)

    class Exchange(Strict):
        name: Optional[str] = Field(None, max_length=255)
        type: Optional[Literal["topic", "direct", "fanout", "default", "headers"]] = None
        durable: Optional[bool] = None
        autoDelete: Optional[bool] = None
        vhost: str = "/"

    class Queue(Strict):
        name: Optional[str] = Field(None, max_length=255)
        durable: Optional[bool] = None
        exclusive: Optional[bool] = None
        autoDelete: Optional[bool] = None
        vhost: str = "/"

    class ChannelBinding(Strict):
        is_: Literal["queue", "routingKey"] = Field("routingKey", alias="is")
        exchange: Optional[Exchange] = None
        queue: Optional[Queue] = None
        bindingVersion: Literal["0.3.0"] = "0.3.0"

        @model_validator(mode="after")
        def kind_matches_object(self):
            if self.is_ == "queue" and self.exchange is not None:
                raise ValueError("a queue channel (is: queue) describes a queue, not an exchange")
            if self.is_ == "routingKey" and self.queue is not None:
                raise ValueError("a routing-key channel (is: routingKey) describes an exchange, not a queue")
            return self

    class OperationBinding(Strict):
        expiration: Optional[NonNegativeInt] = None
        userId: Optional[str] = None
        cc: Optional[list[str]] = None
        priority: Optional[int] = None
        deliveryMode: Optional[Literal[1, 2]] = None
        mandatory: Optional[bool] = None
        bcc: Optional[list[str]] = None
        timestamp: Optional[bool] = None
        ack: Optional[bool] = None
        bindingVersion: Literal["0.3.0"] = "0.3.0"

    class MessageBinding(Strict):
        contentEncoding: Optional[str] = None
        messageType: Optional[str] = None
        bindingVersion: Literal["0.3.0"] = "0.3.0"

    amqp.AMQPChannelBinding = ChannelBinding
    amqp.AMQPOperationBinding = OperationBinding
    amqp.AMQPMessageBinding = MessageBinding
    import pydantic_asyncapi.v3 as v3

    return v3


def unknown_keys(node, where="#"):
    """Keys the validated models did not define and that are not `x-` extensions (JSON Schemas excluded:
    jsonschema checks those)."""
    from pydantic import BaseModel

    if isinstance(node, BaseModel):
        if type(node).__name__ == "Schema":
            return
        for key in (node.model_extra or {}):
            if not key.startswith("x-"):
                yield f"{where}: unknown field {key!r} ({type(node).__name__} defines no such field)"
        for name in type(node).model_fields:
            value = getattr(node, name)
            alias = type(node).model_fields[name].alias or name
            yield from unknown_keys(value, f"{where}/{alias}")
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from unknown_keys(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from unknown_keys(value, f"{where}/{i}")


def validate_model(doc):
    from pydantic import ValidationError

    v3 = load_asyncapi_v3()
    try:
        model = v3.AsyncAPI.model_validate(doc)
    except ValidationError as error:
        return [f"AsyncAPI 3.0: {'/'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
    return list(unknown_keys(model))



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
    if not isinstance(doc, dict):
        return ["not a YAML mapping"]
    problems = validate_model(doc)
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
        "misspelled field": lambda d: d["channels"]["results"].update(adress="x"),
        "unknown exchange type": lambda d: d["channels"]["results"]["bindings"]["amqp"]["exchange"].update(
            type="topik"),
        "channel kind outside the AMQP bindings spec": lambda d: d["channels"]["results"]["bindings"]["amqp"].update(
            {"is": "exchange"}),
        "queue channel describing an exchange": lambda d: d["channels"]["queue_profiles"]["bindings"]["amqp"].update(
            exchange={"name": "x", "type": "topic"}),
        "delivery mode on a message binding": lambda d: d["components"]["messages"]["result"].update(
            bindings={"amqp": {"deliveryMode": 2}}),
        "delivery mode 3": lambda d: d["operations"]["publishResult"]["bindings"]["amqp"].update(deliveryMode=3),
        "operation without a channel": lambda d: d["operations"]["publishResult"].pop("channel"),
        "message example without payload or headers": lambda d: d["components"]["messages"]["result"].update(
            examples=[{"name": "empty"}]),
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
