"""What Stockade knows about one container, and the Falco fields it fills."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from stockade.model.images import split_image

# the runtime readers' name for the lenient parser of runtime metadata times (Go's format)
from stockade.model.timeutil import parse_runtime_time_ns as parse_rfc3339_ns

__all__ = [
    "ContainerInfo",
    "engine_mounts",
    "init_pid",
    "mount_dict",
    "parse_rfc3339_ns",
    "read_json_object",
    "split_image",
]


@dataclass(slots=True)
class ContainerInfo:
    """A container's metadata; everything but ``full_id`` and ``runtime`` may be unknown (None)."""

    full_id: str
    #: container.type: podman, docker, containerd, cri-o, runc, cri, unknown
    runtime: str
    name: str | None = None
    image: str | None = None
    image_repository: str | None = None
    image_tag: str | None = None
    image_digest: str | None = None
    image_id: str | None = None
    privileged: bool | None = None
    #: [{"source", "dest", "mode", "rdwr", "propagation", "spec"}]
    mounts: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    k8s_pod_name: str | None = None
    k8s_ns_name: str | None = None
    k8s_pod_uid: str | None = None
    #: container start (ns since the epoch)
    start_ns: int | None = None
    #: the root filesystem on the host (a plain directory or the overlay's merged dir)
    rootfs: str | None = None
    #: the overlay upper directory on the host, when the root filesystem is an overlay
    upperdir: str | None = None
    #: the root filesystem's type ("overlay", a plain directory's "ext4", ...), once looked at
    root_fstype: str | None = None
    init_pid: int | None = None
    #: where the metadata came from ("podman inspect", "runc state", "cri bundle", "cgroup path")
    origin: str = "cgroup path"
    #: True when the runtime described it (False: only the id from the cgroup path is known)
    complete: bool = False
    _fields: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def short_id(self) -> str:
        """The 12-character id (container.id)."""
        return self.full_id[:12]

    def fields(self) -> dict[str, Any]:
        """The container.* and k8s.* fields of an event in this container (unknowns left out).

        Computed once: the dict is shared, callers copy from it and never change it."""
        if self._fields is None:
            self._fields = self._make_fields()
        return self._fields

    def _make_fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "container.id": self.short_id,
            "container.full_id": self.full_id,
            "container.type": self.runtime,
        }
        for key, attr in _OPTIONAL_FIELDS:
            v = getattr(self, attr)
            if v is not None:
                out[key] = v
        if self.image_id is not None:
            out["container.image.id"] = self.image_id[:12]
        if self.complete:
            out["container.mounts"] = self.mounts
            out["container.labels"] = self.labels
        return out


#: event field -> the ContainerInfo attribute that fills it when known
_OPTIONAL_FIELDS = (
    ("container.name", "name"),
    ("container.image", "image"),
    ("container.image.repository", "image_repository"),
    ("container.image.tag", "image_tag"),
    ("container.image.digest", "image_digest"),
    ("container.privileged", "privileged"),
    ("container.start_ts", "start_ns"),
    ("k8s.pod.name", "k8s_pod_name"),
    ("k8s.ns.name", "k8s_ns_name"),
    ("k8s.pod.uid", "k8s_pod_uid"),
)


def mount_dict(source: str, dest: str, rw: bool, propagation: str = "", mode: str = "") -> dict[str, Any]:
    """One ``container.mounts`` entry in Falco's terms (``spec`` is what ``container.mount[X]`` prints)."""
    return {
        "source": source,
        "dest": dest,
        "mode": mode,
        "rdwr": rw,
        "propagation": propagation,
        "spec": f"{source}:{dest}:{mode}:{str(rw).lower()}:{propagation}",
    }


def engine_mounts(items: Any) -> list[dict[str, Any]]:
    """``container.mounts`` from docker's MountPoints or podman's Mounts (the same keys)."""
    return [
        mount_dict(
            str(m.get("Source", "")),
            str(m.get("Destination", "")),
            bool(m.get("RW")),
            str(m.get("Propagation") or ""),
            str(m.get("Mode") or ""),
        )
        for m in items
        if isinstance(m, dict)
    ]


def init_pid(state: dict[str, Any]) -> int | None:
    """The container's init pid from a docker/podman ``State`` object (0 = not running)."""
    pid = state.get("Pid")
    return pid if isinstance(pid, int) and pid > 0 else None


def read_json_object(path: str) -> dict[str, Any] | None:
    """A JSON object from a runtime's file, or None (missing, being rewritten, not an object)."""
    try:
        with open(path, "rb") as f:
            data = orjson.loads(f.read())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
