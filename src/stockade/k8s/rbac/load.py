"""RBAC objects from files: multi-document YAML or JSON, ``List`` kinds unwrapped. Objects of other
kinds are ignored; a document that cannot be read or an RBAC object that is malformed is reported
as ``file:line: message`` and the rest is read."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stockade.k8s.rbac.authorizer import Authorizer
from stockade.k8s.rbac.model import Binding, Role

__all__ = ["RbacObjects", "add_objects", "load_rbac"]

#: libyaml's parser when the build has it (10x faster than the pure Python one)
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
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


def _items(doc: Any) -> Iterator[Any]:
    if (
        isinstance(doc, dict)
        and str(doc.get("kind", "")).endswith("List")
        and isinstance(doc.get("items"), list)
    ):
        for item in doc["items"]:
            yield from _items(item)
    elif doc is not None:
        yield doc


def _documents(text: str, where: str, problems: list[str]) -> Iterator[tuple[int, Any]]:
    loader = _LOADER(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            yield node.start_mark.line + 1, loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problems.append(f"{where}{line}: not YAML: {e.problem or e}")
    except yaml.YAMLError as e:
        problems.append(f"{where}: not YAML: {e}")
    finally:
        loader.dispose()


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
    """The RBAC objects of the files at `paths` (``-`` for standard input)."""
    out = RbacObjects()
    for p in paths:
        where = str(p)
        try:
            text = sys.stdin.read() if where == "-" else Path(p).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            out.problems.append(f"{where}: cannot read: {getattr(e, 'strerror', None) or e}")
            continue
        for line, doc in _documents(text, where, out.problems):
            add_objects(out, _items(doc), f"{where}:{line}")
    return out
