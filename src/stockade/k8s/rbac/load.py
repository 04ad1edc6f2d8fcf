"""RBAC objects from files: multi-document YAML or JSON, ``List`` kinds unwrapped. Objects of other
kinds are ignored; a document that cannot be read or an RBAC object that is malformed is reported
as ``file:line: message`` and the rest is read."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stockade.k8s.load import load_paths
from stockade.k8s.rbac.authorizer import Authorizer
from stockade.k8s.rbac.model import Binding, Role

__all__ = ["RbacObjects", "add_objects", "load_rbac"]

ROLE_KINDS = frozenset({"Role", "ClusterRole"})
BINDING_KINDS = frozenset({"RoleBinding", "ClusterRoleBinding"})


@dataclass(slots=True)
class RbacObjects:
    """The roles and bindings read, and the problems met."""

    roles: list[Role] = field(default_factory=list)
    bindings: list[Binding] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def authorizer(self) -> Authorizer:
        """The authorizer over these objects."""
        return Authorizer(self.roles, self.bindings)


def add_objects(out: RbacObjects, objects: Iterable[Any], origin: str = "") -> RbacObjects:
    """Add the Roles, ClusterRoles and bindings among `objects` (dicts) to `out` (others ignored;
    malformed ones reported in `out.problems`); returns `out`."""
    for obj in objects:
        if not isinstance(obj, dict):
            out.problems.append(f"{origin}: not a Kubernetes object")
            continue
        kind = obj.get("kind")
        try:
            if kind in ROLE_KINDS:
                out.roles.append(Role.from_dict(obj, origin))
            elif kind in BINDING_KINDS:
                out.bindings.append(Binding.from_dict(obj, origin))
        except ValueError as e:
            out.problems.append(f"{origin}: {kind}: {e}")
    return out


def load_rbac(paths: Iterable[str | Path]) -> RbacObjects:
    """The RBAC objects of the files and directories at `paths` (``-`` for standard input), read
    by the manifest loader (:func:`stockade.k8s.load.load_paths`: lines, lists, located errors)."""
    loaded = load_paths([str(p) for p in paths], stdin=sys.stdin.buffer)
    out = RbacObjects(problems=[str(e) for e in loaded.errors])
    for obj in loaded.objects:
        add_objects(out, [obj.body], f"{obj.file}:{obj.line}")
    return out
