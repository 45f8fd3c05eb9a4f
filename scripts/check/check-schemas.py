#!/usr/bin/env python3
"""Validate every example in schemas/examples with a standard JSON Schema (2020-12) validator.

Each folder schemas/examples/<name>/{valid,invalid}/*.json is checked against the schema <name> maps to
(envelope, result, dead-letter-headers, connection-event, or commands/<type>). Valid examples must pass and invalid ones must
fail. Writes the verdicts (file -> true/false) as JSON to the path given with --verdicts, so the Swift test
suite can check that its decoder agrees on every file. Exits 1 on any disagreement.
"""
import argparse
import json
import pathlib
import sys

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

ROOT = pathlib.Path(__file__).resolve().parents[2] / "schemas"


def load_registry():
    resources = []
    for path in ROOT.rglob("*.schema.json"):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


def schema_for(name):
    if name in ("envelope", "result", "dead-letter-headers", "connection-event"):
        return ROOT / f"{name}.schema.json"
    return ROOT / "commands" / f"{name}.schema.json"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--verdicts", help="write file -> valid verdicts as JSON here")
    args = parser.parse_args()
    registry = load_registry()
    for path in ROOT.rglob("*.schema.json"):
        Draft202012Validator.check_schema(json.loads(path.read_text()))
    verdicts = {}
    failures = []
    checked = 0
    for folder in sorted((ROOT / "examples").iterdir()):
        schema_path = schema_for(folder.name)
        if not schema_path.exists():
            failures.append(f"{folder}: no schema {schema_path}")
            continue
        validator = Draft202012Validator(
            json.loads(schema_path.read_text()), registry=registry, format_checker=FormatChecker()
        )
        for verdict in ("valid", "invalid"):
            for example in sorted((folder / verdict).glob("*.json")):
                errors = list(validator.iter_errors(json.loads(example.read_text())))
                is_valid = not errors
                verdicts[str(example.relative_to(ROOT))] = is_valid
                checked += 1
                if is_valid != (verdict == "valid"):
                    reason = errors[0].message if errors else "no error"
                    failures.append(f"{example.relative_to(ROOT)}: expected {verdict}, validator said "
                                    f"{'valid' if is_valid else 'invalid'} ({reason})")
    if args.verdicts:
        pathlib.Path(args.verdicts).write_text(json.dumps(verdicts, indent=1, sort_keys=True))
    for failure in failures:
        print("schema check: " + failure, file=sys.stderr)
    print(f"schema check: {checked} examples, {len(failures)} disagreements")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
