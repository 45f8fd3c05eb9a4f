#!/usr/bin/env python3
"""Validate every document in deploy/kubernetes/*.yaml against its published schema, offline.

- Kubernetes kinds (Deployment, Service, Job, ...): the upstream OpenAPI schemas of Kubernetes
  KUBERNETES_VERSION as bundled by the PyPI package kubernetes-validate (pinned in scripts/dev/install-deps.sh),
  in strict mode: an unknown field is an error, as with kubectl's default `--validate=strict`.
- KEDA's ScaledObject and TriggerAuthentication (keda.sh/v1alpha1): the openAPIV3Schema of KEDA's CRDs,
  vendored as JSON Schema in schemas/vendor/keda/ (scripts/check/gen-keda-schema.py; unknown fields are errors
  there too); their `metadata` is checked as Kubernetes ObjectMeta.
- kustomization.yaml: SchemaStore's kustomization schema, vendored in schemas/vendor/schemastore/ (kustomize
  itself publishes none); every `resources:` entry must be a file here, and every manifest here must be listed
  unless it is named *.example.yaml.
- What the deployment relies on beyond the schemas (issue #10): one `rabbitmq` trigger per work queue (the
  queues deploy/rabbitmq/definitions.json binds to the commands exchange), none on another queue such as
  a retry tier; minReplicaCount and maxReplicaCount set, min <= max (the CRD's CEL rule, which JSON Schema
  cannot express); the target Deployment exists, sets no `replicas` and is the consumer; no
  HorizontalPodAutoscaler (KEDA creates its own); each trigger's authenticationRef exists.
- The topology mode: the relay's ConfigMap sets RELAY_TOPOLOGY to `policies` (deploy/rabbitmq/definitions.json is
  policies-based), every relay workload reads that ConfigMap and the Secret (all must declare the same queues;
  setup and consume need RELAY_RABBITMQ_MANAGEMENT_URL), and the example Secret has RELAY_RABBITMQ_MANAGEMENT_URL.

Prints one line per document and exits 1 if any fails. `--self-test` instead checks deliberately broken copies
of the manifests, prints the error each one got, and exits 1 unless each breakage is reported (those that are
not go to stderr).
"""
import argparse
import copy
import functools
import json
import pathlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "deploy" / "kubernetes"
TOPOLOGY = ROOT / "deploy" / "rabbitmq" / "definitions.json"
VENDOR = ROOT / "schemas" / "vendor"

# The oldest Kubernetes the vendored KEDA release (v2.20) is tested against: what the manifests must work on.
KUBERNETES_VERSION = "1.33"
CONSUMER = "klaviyo-relay-consumer"
CONFIG_MAP = "klaviyo-relay-config"
SECRET = "klaviyo-relay-secrets"
COMMANDS_EXCHANGE = "klaviyo.commands"
RETRY_TIER_PREFIX = "klaviyo.retry."
KEDA_CRDS = {
    ("keda.sh/v1alpha1", "ScaledObject"): VENDOR / "keda" / "scaledobject-v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): VENDOR / "keda" / "triggerauthentication-v1alpha1.json",
}
KUSTOMIZATION = ("kustomize.config.k8s.io/v1beta1", "Kustomization")
KUSTOMIZATION_SCHEMA = VENDOR / "schemastore" / "kustomization.json"

# file name in deploy/kubernetes -> its YAML documents, in order (empty documents left out)
Manifests = dict[str, list[Any]]


@dataclass
class Verdict:
    file: str
    index: int  # 1-based position of the document in its file
    what: str  # Kind/name
    schema: str  # which schema the document was validated against
    errors: list[str]

    def line(self) -> str:
        where = f"{self.file}#{self.index} {self.what}"
        if not self.errors:
            return f"manifests: ok   {where} ({self.schema})"
        return "\n".join(f"manifests: FAIL deploy/kubernetes/{self.file}, document {self.index} ({self.what}): {e}"
                         for e in self.errors)


def name_of(body: dict[str, Any]) -> str | None:
    metadata = body.get("metadata")
    if not isinstance(metadata, dict):
        return None
    return metadata.get("name") or (f"{metadata['generateName']}*" if metadata.get("generateName") else None)


def describe(body: Any) -> str:
    if not isinstance(body, dict):
        return "not a mapping"
    name = name_of(body)
    return f"{body.get('kind', '?')}/{name}" if name else str(body.get("kind", "?"))


def error_text(error: jsonschema.ValidationError) -> str:
    return f"{error.json_path}: {error.message}"


@functools.cache
def kubernetes_errors(document_json: str) -> tuple[str, ...]:
    """Kubernetes' schema errors of one document (kubernetes-validate reports the first one). Cached by content:
    each call parses the 1.4 MB schema bundle, and the self-test checks mostly unchanged documents."""
    try:
        kubernetes_validate.validate(json.loads(document_json), KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return (error_text(error),)
    except kubernetes_validate.SchemaNotFoundError as error:
        return (f"no schema: {error.message} (nor a KEDA or kustomize one)",)
    return ()


class Schemas:
    def __init__(self) -> None:
        self.crds = {key: jsonschema.Draft202012Validator(json.loads(path.read_text()))
                     for key, path in KEDA_CRDS.items()}
        kustomization = json.loads(KUSTOMIZATION_SCHEMA.read_text())
        self.kustomization = jsonschema.validators.validator_for(kustomization)(kustomization)

    def check(self, body: dict[str, Any]) -> tuple[str, list[str]]:
        """(the schema used, its errors) for one document."""
        key = (body["apiVersion"], body["kind"])
        if key in self.crds:
            errors = sorted(self.crds[key].iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
            # The CRD leaves metadata open; the API server checks it as ObjectMeta. A ConfigMap has nothing
            # required besides it, so wrapping the metadata in one checks exactly that (same JSON paths).
            metadata = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": body.get("metadata", {})}
            return (KEDA_CRDS[key].relative_to(ROOT).as_posix(), [error_text(e) for e in errors] +
                    list(kubernetes_errors(json.dumps(metadata, sort_keys=True))))
        if key == KUSTOMIZATION:
            return (KUSTOMIZATION_SCHEMA.relative_to(ROOT).as_posix(),
                    [error_text(e) for e in self.kustomization.iter_errors(body)])
        return (f"Kubernetes {KUBERNETES_VERSION} schema", list(kubernetes_errors(json.dumps(body, sort_keys=True))))


def work_queues() -> set[str]:
    """The queues deploy/rabbitmq/definitions.json binds to the commands exchange (not the retry tiers)."""
    definitions = json.loads(TOPOLOGY.read_text())
    return {b["destination"] for b in definitions["bindings"]
            if b["source"] == COMMANDS_EXCHANGE and b["destination_type"] == "queue"}


def named(documents: list[dict[str, Any]], kind: str, name: str) -> list[dict[str, Any]]:
    return [d for d in documents if d["kind"] == kind and name_of(d) == name]


def scaledobject_rules(so: dict[str, Any], documents: list[dict[str, Any]], queues: set[str]) -> list[str]:
    spec = so.get("spec", {})
    errors = []
    for field in ("minReplicaCount", "maxReplicaCount"):
        if field not in spec:
            errors.append(f"$.spec.{field}: missing (the consumer pool's bounds must be explicit)")
    low, high = spec.get("minReplicaCount"), spec.get("maxReplicaCount")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        errors.append(f"$.spec.minReplicaCount: {low} is above maxReplicaCount {high}")
    target = spec.get("scaleTargetRef", {})
    if target.get("kind", "Deployment") != "Deployment" or not named(documents, "Deployment", target.get("name")):
        errors.append(f"$.spec.scaleTargetRef: no Deployment {target.get('name')!r} in the manifests")
    triggered: dict[str, int] = {}
    for i, trigger in enumerate(spec.get("triggers", [])):
        where = f"$.spec.triggers[{i}]"
        auth = trigger.get("authenticationRef")
        if auth and not named(documents, auth.get("kind", "TriggerAuthentication"), auth.get("name")):
            errors.append(f"{where}.authenticationRef: no {auth.get('kind', 'TriggerAuthentication')} "
                          f"{auth.get('name')!r} in the manifests")
        if trigger.get("type") != "rabbitmq":
            continue
        queue = trigger.get("metadata", {}).get("queueName")
        if isinstance(queue, str) and queue.startswith(RETRY_TIER_PREFIX):
            errors.append(f"{where}.metadata.queueName: {queue!r} is a retry tier: what waits there waits for "
                          "Klaviyo's limits, more pods would not help")
        elif queue not in queues:
            errors.append(f"{where}.metadata.queueName: {queue!r} is not a work queue ({', '.join(sorted(queues))})")
        elif queue in triggered:
            errors.append(f"{where}.metadata.queueName: {queue!r} already has trigger {triggered[queue]}")
        else:
            triggered[queue] = i
    for queue in sorted(queues - triggered.keys()):
        errors.append(f"$.spec.triggers: no rabbitmq trigger on work queue {queue!r}")
    return errors


def deployment_rules(body: dict[str, Any], documents: list[dict[str, Any]]) -> list[str]:
    name = name_of(body)
    targeted = [d for d in documents
                if d["kind"] == "ScaledObject" and d.get("spec", {}).get("scaleTargetRef", {}).get("name") == name]
    errors = []
    if targeted and "replicas" in body.get("spec", {}):
        errors.append("$.spec.replicas: set, but a ScaledObject scales this Deployment "
                      "(every apply would reset KEDA's count)")
    if name == CONSUMER and len(targeted) != 1:
        errors.append(f"$.metadata.name: {len(targeted)} valid ScaledObjects scale this Deployment, "
                      "exactly one must (KEDA owns the consumers' replica count)")
    return errors


def relay_environment_rules(body: dict[str, Any]) -> list[str]:
    """Every relay container (Deployment or Job) reads the relay's ConfigMap and Secret: the same RELAY_TOPOLOGY
    everywhere (they all declare the queues) and the management URL."""
    errors = []
    for i, container in enumerate(body["spec"]["template"]["spec"].get("containers", [])):
        if not str(container.get("image", "")).startswith("klaviyo-relay"):
            continue
        sources = {(kind, ref.get("name")) for entry in container.get("envFrom", []) for kind, ref in entry.items()
                   if isinstance(ref, dict)}
        for kind, wanted in (("configMapRef", CONFIG_MAP), ("secretRef", SECRET)):
            if (kind, wanted) not in sources:
                errors.append(f"$.spec.template.spec.containers[{i}].envFrom: no {kind} {wanted!r} (every relay "
                              "workload must read the same RELAY_TOPOLOGY, and setup and consume the management URL)")
    return errors


def rules(body: dict[str, Any], documents: list[dict[str, Any]], files: set[str], queues: set[str]) -> list[str]:
    """What the deployment relies on beyond the schemas (see the module docstring), for a document that passed
    its schema; `documents` are all those that did."""
    kind, name = body["kind"], name_of(body)
    if kind == "ScaledObject":
        return scaledobject_rules(body, documents, queues)
    if kind == "HorizontalPodAutoscaler":
        return ["$.kind: no HorizontalPodAutoscaler: KEDA's ScaledObject creates and owns the consumers' HPA"]
    if kind == "Deployment":
        return deployment_rules(body, documents) + relay_environment_rules(body)
    if kind == "Job":
        return relay_environment_rules(body)
    if kind == "ConfigMap" and name == CONFIG_MAP:
        mode = body.get("data", {}).get("RELAY_TOPOLOGY")
        if mode != "policies":
            return [f"$.data.RELAY_TOPOLOGY: {mode!r}, expected 'policies' (deploy/rabbitmq/definitions.json holds "
                    "the policies-based topology)"]
    if kind == "Secret" and name == SECRET and "RELAY_RABBITMQ_MANAGEMENT_URL" not in body.get("stringData", {}):
        return ["$.stringData.RELAY_RABBITMQ_MANAGEMENT_URL: missing (RELAY_TOPOLOGY=policies: setup and consume "
                "need the management API)"]
    if kind == "Kustomization":
        listed = body.get("resources", [])
        errors = [f"$.resources: {entry!r} is not a file in deploy/kubernetes" for entry in listed
                  if entry not in files]
        for file in sorted(files - set(listed) - {"kustomization.yaml"}):
            if not file.endswith(".example.yaml"):
                errors.append(f"$.resources: {file} is not listed (name it *.example.yaml if it should not be)")
        return errors
    return []


def check(manifests: Manifests, schemas: Schemas, queues: set[str]) -> list[Verdict]:
    """Every document against its schema, then those that pass against the rules (which may rely on the
    schema's types and refer to other valid documents)."""
    checked: list[tuple[Verdict, Any]] = []
    for file, bodies in manifests.items():
        for index, body in enumerate(bodies, start=1):
            verdict = Verdict(file, index, describe(body), "no schema", [])
            if not isinstance(body, dict) or not body.get("apiVersion") or not body.get("kind"):
                verdict.errors.append("$: not a Kubernetes object (apiVersion and kind required)")
            else:
                verdict.schema, verdict.errors = schemas.check(body)
            checked.append((verdict, body))
    valid = [body for verdict, body in checked if not verdict.errors]
    for verdict, body in checked:
        if not verdict.errors:
            verdict.errors = rules(body, valid, set(manifests), queues)
    return [verdict for verdict, _ in checked]


def load() -> Manifests:
    manifests = {}
    for path in sorted(MANIFESTS.glob("*.yaml")):
        try:
            manifests[path.name] = [body for body in yaml.safe_load_all(path.read_text()) if body is not None]
        except yaml.YAMLError as error:
            raise SystemExit(f"manifests: FAIL {path.relative_to(ROOT)}: not YAML: {error}")
    return manifests


def first(manifests: Manifests, kind: str) -> dict[str, Any]:
    return next(body for bodies in manifests.values() for body in bodies if body.get("kind") == kind)


def deployment(manifests: Manifests, name: str) -> dict[str, Any]:
    return next(body for bodies in manifests.values() for body in bodies
                if body.get("kind") == "Deployment" and body["metadata"]["name"] == name)


def triggers(manifests: Manifests) -> list[dict[str, Any]]:
    return first(manifests, "ScaledObject")["spec"]["triggers"]


HPA = {
    "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": CONSUMER, "namespace": "klaviyo-relay"},
    "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": CONSUMER},
             "minReplicas": 2, "maxReplicas": 20},
}

# (breakage, how to break a copy of the manifests, a fragment the new error must contain)
BREAKAGES: list[tuple[str, Callable[[Manifests], object], str]] = [
    ("Deployment with an unknown container field",
     lambda m: deployment(m, CONSUMER)["spec"]["template"]["spec"]["containers"][0].update(imagePullPolcy="Always"),
     "'imagePullPolcy' was unexpected"),
    ("Deployment with a string replica count",
     lambda m: deployment(m, "klaviyo-relay-serve")["spec"].update(replicas="2"), "$.spec.replicas: '2'"),
    ("Service port given as a name", lambda m: first(m, "Service")["spec"]["ports"][0].update(port="http"),
     "$.spec.ports[0].port"),
    ("Job with a misspelled field", lambda m: first(m, "Job")["spec"].update(backofLimit=3),
     "'backofLimit' was unexpected"),
    ("PodDisruptionBudget with misspelled metadata",
     lambda m: first(m, "PodDisruptionBudget")["metadata"].update(lables={}), "'lables' was unexpected"),
    ("unknown kind", lambda m: m["namespace.yaml"].append({"apiVersion": "example.com/v1", "kind": "Widget",
                                                            "metadata": {"name": "w"}}), "no schema"),
    ("ScaledObject with a misspelled trigger field",
     lambda m: triggers(m)[0].update(authenticatonRef=triggers(m)[0].pop("authenticationRef")),
     "'authenticatonRef' was unexpected"),
    ("ScaledObject with a string minReplicaCount",
     lambda m: first(m, "ScaledObject")["spec"].update(minReplicaCount="2"), "$.spec.minReplicaCount: '2'"),
    ("ScaledObject trigger metadata value not a string",
     lambda m: triggers(m)[0]["metadata"].update(value=200), "$.spec.triggers[0].metadata.value"),
    ("ScaledObject with misspelled metadata",
     lambda m: first(m, "ScaledObject")["metadata"].update(namepsace="x"), "'namepsace' was unexpected"),
    ("TriggerAuthentication with a misspelled field",
     lambda m: first(m, "TriggerAuthentication")["spec"]["secretTargetRef"][0].update(parmeter="host"),
     "'parmeter' was unexpected"),
    ("Kustomization with a misspelled field",
     lambda m: first(m, "Kustomization").update(resource=first(m, "Kustomization").pop("resources")),
     "'resource' was unexpected"),
    ("Kustomization listing a missing file",
     lambda m: first(m, "Kustomization")["resources"].append("missing.yaml"), "'missing.yaml' is not a file"),
    ("manifest missing from the Kustomization",
     lambda m: first(m, "Kustomization")["resources"].remove("consumer-pdb.yaml"), "consumer-pdb.yaml is not listed"),
    ("trigger on a retry tier",
     lambda m: triggers(m).append({**copy.deepcopy(triggers(m)[0]), "name": "retry",
                                   "metadata": {**triggers(m)[0]["metadata"], "queueName": "klaviyo.retry.5s"}}),
     "'klaviyo.retry.5s' is a retry tier"),
    ("trigger on a queue that is not a work queue",
     lambda m: triggers(m)[0]["metadata"].update(queueName="klaviyo.profile"), "'klaviyo.profile' is not a work queue"),
    ("work queue without a trigger", lambda m: triggers(m).pop(), "no rabbitmq trigger on work queue"),
    ("two triggers on one work queue",
     lambda m: triggers(m)[2]["metadata"].update(queueName=triggers(m)[1]["metadata"]["queueName"]),
     "already has trigger 1"),
    ("ScaledObject without maxReplicaCount", lambda m: first(m, "ScaledObject")["spec"].pop("maxReplicaCount"),
     "$.spec.maxReplicaCount: missing"),
    ("ScaledObject with min above max", lambda m: first(m, "ScaledObject")["spec"].update(minReplicaCount=30),
     "is above maxReplicaCount"),
    ("ScaledObject targeting a missing Deployment",
     lambda m: first(m, "ScaledObject")["spec"]["scaleTargetRef"].update(name="klaviyo-relay-consumr"),
     "no Deployment 'klaviyo-relay-consumr'"),
    ("trigger authenticating with a missing TriggerAuthentication",
     lambda m: triggers(m)[1]["authenticationRef"].update(name="nope"), "no TriggerAuthentication 'nope'"),
    ("consumer Deployment with a fixed replica count",
     lambda m: deployment(m, CONSUMER)["spec"].update(replicas=3), "$.spec.replicas: set"),
    ("a HorizontalPodAutoscaler", lambda m: m["consumer-deployment.yaml"].append(copy.deepcopy(HPA)),
     "no HorizontalPodAutoscaler"),
    ("ConfigMap back in arguments mode", lambda m: first(m, "ConfigMap")["data"].update(RELAY_TOPOLOGY="arguments"),
     "$.data.RELAY_TOPOLOGY: 'arguments'"),
    ("ConfigMap without RELAY_TOPOLOGY", lambda m: first(m, "ConfigMap")["data"].pop("RELAY_TOPOLOGY"),
     "$.data.RELAY_TOPOLOGY: None"),
    ("example Secret without the management URL",
     lambda m: first(m, "Secret")["stringData"].pop("RELAY_RABBITMQ_MANAGEMENT_URL"),
     "RELAY_RABBITMQ_MANAGEMENT_URL: missing"),
    ("setup Job not reading the Secret",
     lambda m: next(body for body in m["setup-job.yaml"] if body["kind"] == "Job")["spec"]["template"]["spec"][
         "containers"][0]["envFrom"].pop(),
     "no secretRef 'klaviyo-relay-secrets'"),
    ("serve Deployment not reading the ConfigMap",
     lambda m: deployment(m, "klaviyo-relay-serve")["spec"]["template"]["spec"]["containers"][0]["envFrom"].pop(0),
     "no configMapRef 'klaviyo-relay-config'"),
]


def error_lines(manifests: Manifests, schemas: Schemas, queues: set[str]) -> list[str]:
    return [f"{v.file}#{v.index}: {e}" for v in check(manifests, schemas, queues) for e in v.errors]


def self_test(manifests: Manifests, schemas: Schemas, queues: set[str]) -> int:
    """Each breakage must add an error containing its fragment to those of the unbroken manifests."""
    baseline = set(error_lines(manifests, schemas, queues))
    failed = 0
    for name, breakage, fragment in BREAKAGES:
        broken = copy.deepcopy(manifests)
        breakage(broken)
        new = [e for e in error_lines(broken, schemas, queues) if e not in baseline]
        caught = [e for e in new if fragment in e]
        if caught:
            print(f"manifests self-test: rejected {name}: {caught[0]}")
        else:
            failed += 1
            print(f"manifests self-test: FAIL {name} was not reported (expected {fragment!r}; new errors: "
                  f"{new or 'none'})", file=sys.stderr)
    print(f"manifests self-test: {len(BREAKAGES) - failed} of {len(BREAKAGES)} breakages reported")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--self-test", action="store_true",
                        help="check that deliberately broken copies of the manifests are rejected")
    args = parser.parse_args()
    manifests, schemas, queues = load(), Schemas(), work_queues()
    if args.self_test:
        return self_test(manifests, schemas, queues)
    verdicts = check(manifests, schemas, queues)
    for verdict in verdicts:
        print(verdict.line())
    failing = sum(1 for v in verdicts if v.errors)
    print(f"manifests: {len(verdicts)} documents in {len(manifests)} files of deploy/kubernetes, {failing} failing "
          f"(Kubernetes {KUBERNETES_VERSION}, kubernetes-validate {kubernetes_validate.__version__})")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
