"""Container ids from cgroup paths, for every runtime's path shape (cgroup v1 and v2).

``parse_cgroup_path("/machine.slice/libpod-<64 hex>.scope")`` gives ``CgroupMatch("podman", id)``.
Shapes recognised (one path component at a time, the deepest first):

* podman: ``libpod-<id>`` (``/libpod_parent/libpod-<id>``, ``/machine.slice/libpod-<id>.scope``);
  ``libpod-conmon-<id>`` is podman's monitor, a host process;
* docker: ``/docker/<id>``, ``/system.slice/docker-<id>.scope``;
* containerd (CRI): ``cri-containerd-<id>.scope``, ``/kubepods/.../pod<uid>/<id>``;
* CRI-O: ``crio-<id>.scope`` (``crio-conmon-<id>`` is its monitor);
* any other component of exactly 64 hex digits is a container of an unknown runtime (``cri``
  under ``kubepods``); runc containers with a chosen cgroupsPath (``/<name>``) are not recognisable
  from the path alone: :mod:`stockade.sensor.containers.runc` matches them against runc's state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["CgroupMatch", "parse_cgroup_path"]

_HEX64 = r"[0-9a-f]{64}"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"^libpod-({_HEX64})(?:\.scope)?$"), "podman"),
    (re.compile(rf"^docker-({_HEX64})(?:\.scope)?$"), "docker"),
    (re.compile(rf"^cri-containerd-({_HEX64})(?:\.scope)?$"), "containerd"),
    (re.compile(rf"^crio-({_HEX64})(?:\.scope)?$"), "cri-o"),
    (re.compile(rf"^containerd-({_HEX64})(?:\.scope)?$"), "containerd"),
)
_MONITOR = re.compile(rf"^(?:libpod-conmon|crio-conmon)-{_HEX64}(?:\.scope)?$")
_BARE = re.compile(rf"^({_HEX64})$")
#: "pod<uid>" (cgroupfs) or "kubepods-besteffort-pod<uid with _>.slice" (systemd)
_POD = re.compile(
    r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$"
)


@dataclass(frozen=True, slots=True)
class CgroupMatch:
    """What a cgroup path says: the runtime (``podman``, ``docker``, ``containerd``, ``cri-o``,
    ``cri`` for a kubepods container of an unknown runtime, ``unknown``) and the full id."""

    runtime: str
    container_id: str
    #: the Kubernetes pod uid, when the path is under kubepods
    pod_uid: str | None = None


def parse_cgroup_path(path: str | None) -> CgroupMatch | None:
    """The container a cgroup path names, or None (a host cgroup, or a shape not recognised)."""
    if not path or path == "/":
        return None
    parts = [p for p in path.split("/") if p]
    pod_uid = None
    kube = False
    for p in parts:
        if p.startswith("kubepods"):
            kube = True
        m = _POD.search(p)
        if m is not None and kube:
            pod_uid = m.group(1).replace("_", "-")
    for i in range(len(parts) - 1, -1, -1):
        comp = parts[i]
        if _MONITOR.match(comp):
            return None
        for pat, runtime in _PATTERNS:
            m = pat.match(comp)
            if m is not None:
                return CgroupMatch(runtime, m.group(1), pod_uid)
        m = _BARE.match(comp)
        if m is not None:
            if i > 0 and parts[i - 1] == "docker":
                runtime = "docker"
            elif kube:
                runtime = "cri"
            else:
                runtime = "unknown"
            return CgroupMatch(runtime, m.group(1), pod_uid)
    return None
