"""A Kubernetes object as the checks see it: its body, where it came from, and its pod template.

Workload kinds carry a pod template at different places; :func:`pod_template` finds it so that
every check written for a Pod applies to Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs,
CronJobs, ReplicationControllers and PodTemplates alike. Paths are tuples of keys and list indexes
(``("spec", "template", "spec", "containers", 0, "securityContext")``); :meth:`K8sObject.line_of`
turns one into the line of the source file it was read from (the nearest enclosing field that has
a line), so a finding points at the offending field.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CONTAINER_LISTS",
    "POD_TEMPLATE_PATHS",
    "Container",
    "K8sObject",
    "Path",
    "PodTemplate",
    "pod_template",
    "value_at",
]

Path = tuple[str | int, ...]

#: where each workload kind keeps its pod spec, and the metadata beside it (annotations: AppArmor)
POD_TEMPLATE_PATHS: dict[str, tuple[Path, Path]] = {
    "Pod": (("spec",), ("metadata",)),
    "PodTemplate": (("template", "spec"), ("template", "metadata")),
    "Deployment": (("spec", "template", "spec"), ("spec", "template", "metadata")),
    "StatefulSet": (("spec", "template", "spec"), ("spec", "template", "metadata")),
    "DaemonSet": (("spec", "template", "spec"), ("spec", "template", "metadata")),
    "ReplicaSet": (("spec", "template", "spec"), ("spec", "template", "metadata")),
    "ReplicationController": (("spec", "template", "spec"), ("spec", "template", "metadata")),
    "Job": (("spec", "template", "spec"), ("spec", "template", "metadata")),
    "CronJob": (
        ("spec", "jobTemplate", "spec", "template", "spec"),
        ("spec", "jobTemplate", "spec", "template", "metadata"),
    ),
}

#: the container lists of a pod spec, in the order Kubernetes documents them
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")


def value_at(body: Any, path: Path) -> Any:
    """The value at `path` (keys and list indexes) in `body`; None when any step is missing or of
    the wrong type."""
    node = body
    for key in path:
        if type(node) is dict and type(key) is str:  # the common case, without the ABC checks
            node = node.get(key)
            if node is None:
                return None
            continue
        if isinstance(key, int):
            if not isinstance(node, list) or key >= len(node):
                return None
        elif not isinstance(node, Mapping):
            return None
        node = node[key] if isinstance(key, int) else node.get(key)
        if node is None:
            return None
    return node


@dataclass(slots=True)
class K8sObject:
    """One Kubernetes object: `body` as parsed, and where it came from.

    `file` is the path it was read from (``-`` for standard input, None for an object that came
    from an AdmissionReview or the API server), `line` the line its document starts on, `lines`
    the line of each field path the loader recorded (empty when unknown), `doc` its index in the
    file (0 for the first document; items of a ``List`` share their document's index).
    """

    body: dict[str, Any]
    file: str | None = None
    line: int | None = None
    lines: dict[Path, int] = field(default_factory=dict)
    doc: int = 0

    @property
    def kind(self) -> str:
        """The object kind (empty when missing)."""
        return str(self.body.get("kind") or "")

    @property
    def api_version(self) -> str:
        """The apiVersion (empty when missing)."""
        return str(self.body.get("apiVersion") or "")

    @property
    def metadata(self) -> dict[str, Any]:
        """The metadata mapping (empty when missing or not a mapping)."""
        m = self.body.get("metadata")
        return m if isinstance(m, dict) else {}

    @property
    def name(self) -> str:
        """metadata.name, else generateName, else empty."""
        return str(self.metadata.get("name") or self.metadata.get("generateName") or "")

    @property
    def namespace(self) -> str | None:
        """The namespace written in the object (None when it names none: the scan's default)."""
        ns = self.metadata.get("namespace")
        return str(ns) if ns else None

    def get(self, path: Path) -> Any:
        """The value at `path`, None when any step is missing (or of the wrong type)."""
        return value_at(self.body, path)

    def line_of(self, path: Path = ()) -> int | None:
        """The source line of `path`, or of its nearest recorded parent; the document's line else."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.line

    def resource(self) -> dict[str, str | None]:
        """``{"kind", "namespace", "name"}`` as findings report it."""
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name}


@dataclass(frozen=True, slots=True)
class Container:
    """One container of a pod spec: which list it is in, its index there, its body and path."""

    list_name: str  # containers | initContainers | ephemeralContainers
    index: int
    body: dict[str, Any]
    path: Path

    @property
    def name(self) -> str:
        """The container name (its list and index when it has none)."""
        return str(self.body.get("name") or f"{self.list_name}[{self.index}]")

    def get(self, *keys: str | int) -> Any:
        """The value at `keys` inside the container, None when missing."""
        return value_at(self.body, keys)


@dataclass(frozen=True, slots=True)
class PodTemplate:
    """The pod spec of a workload object, its path inside the object, and its metadata."""

    spec: dict[str, Any]
    path: Path
    metadata: dict[str, Any]
    metadata_path: Path

    def get(self, *keys: str | int) -> Any:
        """A field of the pod spec (``get("securityContext", "runAsNonRoot")``)."""
        return value_at(self.spec, keys)

    def at(self, *keys: str | int) -> Path:
        """The object path of a pod spec field, for a finding's line."""
        return self.path + keys

    @property
    def annotations(self) -> dict[str, Any]:
        """The pod template annotations (AppArmor profiles live there before 1.30)."""
        a = self.metadata.get("annotations")
        return a if isinstance(a, dict) else {}

    def containers(self, lists: tuple[str, ...] = CONTAINER_LISTS) -> Iterator[Container]:
        """Every container of the lists named (all three by default), in order."""
        for list_name in lists:
            items = self.spec.get(list_name)
            if not isinstance(items, list):
                continue
            for i, c in enumerate(items):
                if isinstance(c, dict):
                    yield Container(list_name, i, c, (*self.path, list_name, i))


def pod_template(obj: K8sObject) -> PodTemplate | None:
    """The pod template of a workload object (a Pod's own spec); None for other kinds or when the
    object has no pod spec where its kind keeps one."""
    where = POD_TEMPLATE_PATHS.get(obj.kind)
    if where is None:
        return None
    spec_path, meta_path = where
    spec = obj.get(spec_path)
    if not isinstance(spec, dict):
        return None
    meta = obj.get(meta_path)
    return PodTemplate(spec, spec_path, meta if isinstance(meta, dict) else {}, meta_path)
