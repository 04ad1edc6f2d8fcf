"""Stockade's policy kinds as Kubernetes CustomResourceDefinitions (docs/k8s-deploy.md).

Each CRD's OpenAPI v3 schema is generated from the same pydantic model that validates the kind's
YAML files, made structural as ``apiextensions.k8s.io/v1`` requires:

- ``$ref`` to ``$defs`` inlined; ``anyOf [X, null]`` becomes X with ``nullable: true``;
- ``anyOf [integer, string]`` becomes ``x-kubernetes-int-or-string: true``; any other mix of
  types (none in the models today) ``x-kubernetes-preserve-unknown-fields: true``;
- ``const`` becomes a one-value ``enum``; ``exclusiveMinimum: N`` becomes ``minimum: N`` with
  ``exclusiveMinimum: true`` (OpenAPI 3.0);
- a field with a ``mode="before"`` validator (it accepts more than its type says, such as a
  playbook's ``memory: all`` for ``[all]``) is ``x-kubernetes-preserve-unknown-fields: true``:
  the model checks it when Stockade loads the object;
- ``additionalProperties: false`` is dropped (v1 forbids it: unknown fields are pruned, or
  refused with ``kubectl --validate=strict``), as are ``title`` and ``default``;
- ``metadata`` is the Kubernetes object's own (``type: object``): a kind's free-form metadata
  fields beyond name, labels and annotations (a playbook's ``description``) belong in annotations
  when the policy is a cluster object.

:func:`structural_problems` checks a schema against the structural rules (Kubernetes docs,
"Specifying a structural schema"); the tests run it over every CRD made here.

Adding a kind is one entry in :data:`KINDS`.
"""

from __future__ import annotations

import copy
import importlib
import typing
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel

__all__ = ["GROUP", "KINDS", "VERSION", "CrdKind", "crd", "crds", "openapi_schema", "structural_problems"]

GROUP: Final = "stockade.dev"
VERSION: Final = "v1alpha1"


@dataclass(frozen=True, slots=True)
class CrdKind:
    """A policy kind: names, scope, and its model (``module:Class``, imported when needed)."""

    kind: str
    plural: str
    scope: str  # Namespaced | Cluster
    model_path: str
    short_names: tuple[str, ...] = ()

    def model(self) -> type[BaseModel]:
        """The pydantic model that validates the kind's YAML files."""
        module, _, name = self.model_path.partition(":")
        cls = getattr(importlib.import_module(module), name)
        assert isinstance(cls, type) and issubclass(cls, BaseModel), self.model_path
        return cls


KINDS: Final = (
    CrdKind("WorkloadPolicy", "workloadpolicies", "Namespaced", "stockade.policy.model:WorkloadPolicy", ("wpol",)),
    CrdKind("ResponsePlaybook", "responseplaybooks", "Cluster", "stockade.incidents.playbook:ResponsePlaybook", ("rpb",)),
    CrdKind("AdmissionPolicy", "admissionpolicies", "Cluster", "stockade.k8s.admission.policy:AdmissionPolicy", ("apol",)),
)  # fmt: skip

_DROP = frozenset(("title", "default", "$defs", "definitions", "examples"))


def _loose_fields(model: type[BaseModel], seen: dict[str, set[str]] | None = None) -> dict[str, set[str]]:
    """Model class name -> the (aliased) fields a ``mode="before"`` validator loosens, for
    every model reachable from `model`."""
    seen = {} if seen is None else seen
    if model.__name__ in seen:
        return seen
    decorators = model.__pydantic_decorators__.field_validators.values()
    loose = {f for d in decorators if d.info.mode == "before" for f in d.info.fields}
    seen[model.__name__] = {
        (info.validation_alias if isinstance(info.validation_alias, str) else name)
        for name, info in model.model_fields.items()
        if name in loose
    }
    todo = [info.annotation for info in model.model_fields.values()]
    while todo:
        t = todo.pop()
        if isinstance(t, type) and issubclass(t, BaseModel):
            _loose_fields(t, seen)
        todo.extend(typing.get_args(t))
    return seen


_LOOSE = {"x-kubernetes-preserve-unknown-fields": True}


def _resolve(node: Any, defs: dict[str, Any], loose: dict[str, set[str]]) -> Any:
    """`node` with every ``$ref`` inlined and the structural rewrites applied."""
    if isinstance(node, list):
        return [_resolve(n, defs, loose) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = str(node["$ref"]).rsplit("/", 1)[-1]
        merged = {**copy.deepcopy(defs[name]), **{k: v for k, v in node.items() if k != "$ref"}}
        for f in loose.get(name, ()):
            if f in merged.get("properties", {}):
                merged["properties"][f] = dict(_LOOSE)
        return _resolve(merged, defs, loose)
    out: dict[str, Any] = {}
    for k, v in node.items():
        out.update(_rewrite(k, v, defs, loose))
    if "anyOf" in node:
        out = _any_of([_resolve(b, defs, loose) for b in node["anyOf"]], out)
    if "enum" in out and "type" not in out:
        out["type"] = "integer" if all(isinstance(e, int) for e in out["enum"]) else "string"
    return out


def _rewrite(k: str, v: Any, defs: dict[str, Any], loose: dict[str, set[str]]) -> dict[str, Any]:
    """One keyword of a schema node, as a structural schema has it (empty: dropped)."""
    if k in _DROP or k == "anyOf" or (k == "additionalProperties" and v is False):
        return {}
    if k == "properties":
        return {k: {name: _resolve(sub, defs, loose) for name, sub in v.items()}}
    if k in ("items", "additionalProperties") and isinstance(v, dict):
        return {k: _resolve(v, defs, loose)}
    if k == "description":
        return {k: " ".join(str(v).split())}
    if k == "const":
        return {"enum": [v]}
    if k in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(v, bool):
        return {"minimum" if k == "exclusiveMinimum" else "maximum": v, k: True}
    return {k: v}


def _any_of(branches: list[dict[str, Any]], out: dict[str, Any]) -> dict[str, Any]:
    """``anyOf`` as structural schemas allow it: nullable, int-or-string, or preserved."""
    non_null = [b for b in branches if b.get("type") != "null"]
    if len(non_null) == 1:
        out = {**non_null[0], **out}
    elif sorted(str(b.get("type")) for b in non_null) == ["integer", "string"]:
        out["x-kubernetes-int-or-string"] = True
    else:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if len(non_null) < len(branches):
        out["nullable"] = True
    return out


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI v3 schema of a policy model, as a CRD's ``openAPIV3Schema``."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    loose = _loose_fields(model)
    for f in loose.get(model.__name__, ()):
        raw["properties"][f] = dict(_LOOSE)
    schema: dict[str, Any] = _resolve(raw, raw.get("$defs", {}), loose)
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {"type": "string"}
    props["kind"] = {"type": "string"}
    props["metadata"] = {"type": "object"}  # the object's ObjectMeta
    schema["required"] = [
        r for r in schema.get("required", []) if r not in ("apiVersion", "kind", "metadata")
    ]
    return schema


def crd(k: CrdKind) -> dict[str, Any]:
    """The CustomResourceDefinition of a kind."""
    singular = k.kind.lower()
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{k.plural}.{GROUP}", "labels": {"app.kubernetes.io/part-of": "stockade"}},
        "spec": {
            "group": GROUP,
            "scope": k.scope,
            "names": {
                "kind": k.kind,
                "listKind": f"{k.kind}List",
                "plural": k.plural,
                "singular": singular,
                "shortNames": list(k.short_names),
                "categories": ["stockade"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": openapi_schema(k.model())},
                }
            ],
        },
    }


def crds(kinds: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The CRDs of `kinds` (every kind when empty), in :data:`KINDS` order."""
    return [crd(k) for k in KINDS if not kinds or k.kind in kinds]


_JUNCTORS = ("allOf", "anyOf", "oneOf", "not")
_NOT_IN_JUNCTORS = ("description", "type", "default", "additionalProperties", "nullable")


def structural_problems(schema: dict[str, Any]) -> list[str]:
    """Why `schema` is not structural (empty when it is): a missing ``type`` on a node, ``$ref``,
    ``properties`` with ``additionalProperties``, ``additionalProperties: false``, a junctor
    setting what it may not or naming fields not specified outside it, and metadata restricted
    beyond name and generateName."""
    out: list[str] = []
    _structural(schema, "", out, in_junctor=False)
    meta = schema.get("properties", {}).get("metadata")
    if isinstance(meta, dict):
        extra = set(meta.get("properties", {})) - {"name", "generateName"}
        if extra or set(meta) - {"type", "properties", "description"}:
            out.append("metadata: only name and generateName may be restricted")
    return out


def _structural(node: Any, at: str, out: list[str], in_junctor: bool) -> None:
    if not isinstance(node, dict):
        out.append(f"{at or '/'}: not a schema")
        return
    out.extend(f"{at or '/'}: {p}" for p in _node_problems(node, in_junctor))
    for name, sub in node.get("properties", {}).items():
        _structural(sub, f"{at}.{name}", out, in_junctor)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            _structural(node[key], f"{at}[{key}]", out, in_junctor)
    for j in _JUNCTORS:
        subs = node.get(j)
        for i, sub in enumerate(subs if isinstance(subs, list) else [subs] if subs is not None else []):
            int_or_string = node.get("x-kubernetes-int-or-string") is True
            if int_or_string and isinstance(sub, dict) and sub.keys() <= {"type"}:
                continue  # the int-or-string pattern: anyOf [integer, string]
            _structural(sub, f"{at}<{j}[{i}]>", out, in_junctor=True)
            for name in sub.get("properties", {}) if isinstance(sub, dict) else ():
                if name not in node.get("properties", {}):
                    out.append(f"{at or '/'}: {j} names field {name!r} not specified outside it")


def _node_problems(node: dict[str, Any], in_junctor: bool) -> list[str]:
    """What one schema node breaks of the structural rules (its children aside)."""
    out = []
    if "$ref" in node or "definitions" in node or "$defs" in node:
        out.append("$ref and definitions are not allowed")
    special = (
        node.get("x-kubernetes-int-or-string") is True
        or node.get("x-kubernetes-preserve-unknown-fields") is True
    )
    if in_junctor:
        bad = [k for k in _NOT_IN_JUNCTORS if k in node]
        if bad:
            out.append(f"{', '.join(bad)} inside a junctor")
    elif not node.get("type") and not special:
        out.append("no type")
    if node.get("additionalProperties") is False:
        out.append("additionalProperties: false")
    if isinstance(node.get("additionalProperties"), dict) and node.get("properties"):
        out.append("properties and additionalProperties together")
    return out
