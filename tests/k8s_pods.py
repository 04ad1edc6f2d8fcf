"""Builders the check tests share: a Pod from a spec, a container, and the same pod wrapped in a
Deployment or a CronJob with the paths of its fields moved along."""

from __future__ import annotations

import copy
from typing import Any

from stockade.k8s.objects import POD_TEMPLATE_PATHS, Path

Body = dict[str, Any]

IMAGE = "registry.example.com/app:1.0"


def ctr(name: str = "app", **fields: Any) -> Body:
    """A container named `name` with a pinned image and `fields`."""
    return {"name": name, "image": IMAGE, **fields}


def sc(**fields: Any) -> Body:
    """A container with a securityContext of `fields`."""
    return ctr(securityContext=fields)


def pod(*containers: Body, meta: Body | None = None, **spec: Any) -> Body:
    """A Pod in namespace ``app`` with `containers` (one plain container when none) and `spec`."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "app", **(meta or {})},
        "spec": {"containers": list(containers) or [ctr()], **spec},
    }


def wrap(body: Body, kind: str) -> Body:
    """The Pod `body` as the pod template of a `kind` (Deployment, CronJob, ...); other kinds as is."""
    if body.get("kind") != "Pod" or kind == "Pod":
        return copy.deepcopy(body)
    meta = dict(body["metadata"])
    top = {k: meta.pop(k) for k in ("name", "namespace") if k in meta}
    out: Body = {"apiVersion": "apps/v1", "kind": kind, "metadata": {**top, "name": f"{kind.lower()}-x"}}
    spec_path, _ = POD_TEMPLATE_PATHS[kind]
    node = out
    for key in spec_path[:-2]:  # down to the template's parent
        node = node.setdefault(str(key), {})
    node["template"] = {"metadata": meta, "spec": copy.deepcopy(body["spec"])}
    return out


def moved(path: Path, kind: str) -> Path:
    """The path in a `kind` wrapping of a Pod of the Pod's field at `path`."""
    if kind == "Pod" or not path:
        return path
    spec_path, meta_path = POD_TEMPLATE_PATHS[kind]
    if path[0] == "spec":
        return spec_path + path[1:]
    if path[0] == "metadata" and len(path) > 1 and path[1] in ("labels", "annotations"):
        return meta_path + path[1:]
    return path
