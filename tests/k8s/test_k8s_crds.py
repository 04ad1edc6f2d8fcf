"""The CRDs of the policy kinds: structural (the rules checked here, and shown to catch what is
not), generated from the models that validate the YAML files, so the schemas accept the
repository's own example policies and refuse what the models refuse; deploy/kubernetes/crds.yaml
is what `stockade k8s crds` prints."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import pytest
import yaml

from helpers import REPO
from stockade.k8s.crds import GROUP, KINDS, VERSION, crds, openapi_schema, structural_problems

STOCKADE = str(Path(sys.executable).parent / "stockade")
MODELS = {k.kind: k.model() for k in KINDS}


def _schema(kind: str) -> dict[str, Any]:
    (c,) = crds((kind,))
    s: dict[str, Any] = c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return s


def to_jsonschema(node: Any) -> Any:
    """An OpenAPI v3.0 / Kubernetes schema as JSON Schema: nullable, int-or-string, booleans of
    exclusiveMinimum/Maximum."""
    if isinstance(node, list):
        return [to_jsonschema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {
        k: to_jsonschema(v) for k, v in node.items() if not k.startswith("x-kubernetes") and k != "nullable"
    }
    for edge, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if out.get(edge) is True:
            out[edge] = out.pop(bound)
    if node.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"]
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else [*out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def examples() -> list[tuple[str, dict[str, Any]]]:
    """(origin, document) of every stockade.dev policy in the repository's docs and test data,
    and in the models' own docstrings."""
    found: list[tuple[str, dict[str, Any]]] = []
    texts = [(str(p.relative_to(REPO)), p.read_text()) for p in sorted((REPO / "docs").glob("*.md"))]
    blocks = [(o, b) for o, t in texts for b in re.findall(r"```ya?ml\n(.*?)```", t, re.S)]
    blocks += [
        (str(p.relative_to(REPO)), p.read_text()) for p in sorted((REPO / "tests").rglob("*.policy.yaml"))
    ]
    for m in MODELS.values():  # the docstring example of each kind's module (an indented block)
        mod = sys.modules[m.__module__]
        for b in re.findall(r"::\n\n((?:    .*\n|\n)+)", mod.__doc__ or ""):
            blocks.append((m.__module__, "\n".join(line[4:] for line in b.splitlines())))
    for origin, text in blocks:
        try:
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError:
            continue
        found += [(origin, d) for d in docs if isinstance(d, dict) and d.get("kind") in MODELS
                  and d.get("apiVersion") == f"{GROUP}/{VERSION}"]  # fmt: skip
    return found


EXAMPLES = examples()


def test_every_crd_is_structural_and_named() -> None:
    docs = crds()
    assert [d["spec"]["names"]["kind"] for d in docs] == [k.kind for k in KINDS]
    for d in docs:
        assert d["apiVersion"] == "apiextensions.k8s.io/v1"
        assert d["metadata"]["name"] == f"{d['spec']['names']['plural']}.{GROUP}"
        (v,) = d["spec"]["versions"]
        assert (v["name"], v["served"], v["storage"]) == (VERSION, True, True)
        s = v["schema"]["openAPIV3Schema"]
        assert structural_problems(s) == [], d["metadata"]["name"]
        assert "$ref" not in str(s) and "anyOf" not in str(s)


def test_the_structural_rules_catch_what_is_not() -> None:
    raw = MODELS["WorkloadPolicy"].model_json_schema(by_alias=True)
    problems = structural_problems(raw)
    assert any("$ref" in p for p in problems) and any("additionalProperties: false" in p for p in problems)
    bad: list[tuple[dict[str, Any], str]] = [
        ({"type": "object", "properties": {"a": {"description": "untyped"}}}, ".a: no type"),
        ({"type": "object", "properties": {"a": {"type": "string"}},
          "anyOf": [{"properties": {"b": {"type": "string"}}}]}, "names field 'b' not specified outside"),
        ({"type": "object", "properties": {"a": {"type": "string"}},
          "anyOf": [{"description": "x", "properties": {"a": {"type": "string"}}}]}, "inside a junctor"),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}},
         "properties and additionalProperties together"),
        ({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}},
         "only name and generateName"),
    ]  # fmt: skip
    for schema, why in bad:
        assert any(why in p for p in structural_problems(schema)), (schema, structural_problems(schema))
    ok = {"type": "object", "properties": {"p": {"x-kubernetes-int-or-string": True,
                                                 "anyOf": [{"type": "integer"}, {"type": "string"}]}}}  # fmt: skip
    assert structural_problems(ok) == []


def test_examples_of_each_kind_are_found() -> None:
    kinds = {d["kind"] for _, d in EXAMPLES}
    assert kinds == set(MODELS), f"no example of {set(MODELS) - kinds}"


@pytest.mark.parametrize(
    ("origin", "doc"), EXAMPLES, ids=[f"{o}:{d['metadata']['name']}" for o, d in EXAMPLES]
)
def test_schema_accepts_the_repository_examples(origin: str, doc: dict[str, Any]) -> None:
    MODELS[doc["kind"]].model_validate(doc)  # the model accepts it ...
    errors = list(jsonschema.Draft202012Validator(to_jsonschema(_schema(doc["kind"]))).iter_errors(doc))
    assert not errors, f"{origin}: {[e.message for e in errors]}"  # ... and so does the CRD


#: (kind, dotted path to set, value): each refused by the model; the schema must refuse it too
INVALID = [
    ("WorkloadPolicy", "spec.action", "maybe"),
    ("WorkloadPolicy", "spec.workload", None),
    ("WorkloadPolicy", "spec.process", [{"action": "allow"}]),  # path is required
    ("WorkloadPolicy", "spec.network", [{"direction": "sideways"}]),
    ("WorkloadPolicy", "spec.network", [{"ports": [[80]]}]),
    ("WorkloadPolicy", "spec.file", [{"path": "/x", "access": ["delete"]}]),
    ("WorkloadPolicy", "spec.privileged", [{"operation": "no-such-operation"}]),
    ("WorkloadPolicy", "spec.syscalls", "read"),
    ("WorkloadPolicy", "spec", None),
    ("ResponsePlaybook", "spec.actions", []),
    ("ResponsePlaybook", "spec.actions", [{"action": "explode"}]),
    ("ResponsePlaybook", "spec.actions", [{"action": "kill", "approval": "sometimes"}]),
    ("ResponsePlaybook", "spec.trigger.incident_score", 101),
    ("ResponsePlaybook", "spec.trigger.rules", "a rule"),
    ("ResponsePlaybook", "spec.enabled", "yes please"),
    ("ResponsePlaybook", "spec.trigger", None),
]


def _set(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    d = copy.deepcopy(doc)
    *parents, last = path.split(".")
    node = d
    for p in parents:
        node = node[p]
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value
    return d


@pytest.mark.parametrize(("kind", "path", "value"), INVALID, ids=[f"{k}:{p}={v!r}" for k, p, v in INVALID])
def test_schema_refuses_what_the_model_refuses(kind: str, path: str, value: Any) -> None:
    base = next(d for _, d in EXAMPLES if d["kind"] == kind)
    doc = _set(base, path, value)
    with pytest.raises(pydantic.ValidationError):
        MODELS[kind].model_validate(doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, to_jsonschema(_schema(kind)))


def test_schema_comes_from_the_model() -> None:
    s = openapi_schema(MODELS["WorkloadPolicy"])
    spec = s["properties"]["spec"]
    from stockade.policy.model import PolicySpec

    assert set(spec["properties"]) == set(PolicySpec.model_fields)
    assert spec["properties"]["network"]["items"]["properties"]["ports"]["items"] == {
        "x-kubernetes-int-or-string": True
    }
    assert spec["properties"]["file"]["items"]["properties"]["except"]["nullable"] is True


def test_cli_prints_the_deployed_crds() -> None:
    r = subprocess.run([STOCKADE, "k8s", "crds"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert list(yaml.safe_load_all(r.stdout)) == crds()
    deployed = REPO / "deploy" / "kubernetes" / "crds.yaml"
    assert deployed.read_text() == r.stdout, "regenerate: stockade k8s crds > deploy/kubernetes/crds.yaml"
