"""The node's own facts: hostname, OS release, kernel, architecture, boot time, cgroup version and
the container runtimes present.

The OS release is read by :func:`os_release` (``/etc/os-release``, else ``/usr/lib/os-release``,
parsed as evidence bundles parse it); the count of the host's packages is filled by the package
scan of ``/`` where it runs (``packages``: None until then).
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from stockade.evidence.hostinfo import parse_os_release
from stockade.model.timeutil import format_time_ns
from stockade.sensor.containers.cgroup import cgroup2_hierarchy
from stockade.sensor.procfs import boot_epoch_ns

__all__ = ["RUNTIMES", "cgroup_version", "container_runtimes", "host_facts", "os_release"]

#: container runtimes looked for: name -> (binaries, API sockets)
RUNTIMES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "podman": (("podman",), ("/run/podman/podman.sock",)),
    "docker": (("docker", "dockerd"), ("/run/docker.sock", "/var/run/docker.sock")),
    "containerd": (("containerd",), ("/run/containerd/containerd.sock",)),
    "cri-o": (("crio",), ("/run/crio/crio.sock", "/var/run/crio/crio.sock")),
    "runc": (("runc",), ()),
    "crun": (("crun",), ()),
}


def os_release(root: str = "/") -> dict[str, str]:
    """The os-release of the tree at `root` (empty when it has none)."""
    for rel in ("etc/os-release", "usr/lib/os-release"):
        try:
            with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
                return parse_os_release(f.read())
        except OSError:
            continue
    return {}


def cgroup_version(mountinfo: str = "/proc/self/mountinfo") -> str:
    """``v2`` (unified), ``hybrid`` (v1 controllers and a cgroup2 hierarchy apart) or ``v1``."""
    hierarchy = cgroup2_hierarchy(mountinfo)
    if hierarchy is None:
        return "v1"
    return "v2" if hierarchy[0].rstrip("/") == "/sys/fs/cgroup" else "hybrid"


def container_runtimes() -> list[dict[str, Any]]:
    """The container runtimes installed (a binary on PATH) or serving (an API socket)."""
    out: list[dict[str, Any]] = []
    for name, (binaries, sockets) in RUNTIMES.items():
        path = next((p for p in (shutil.which(b) for b in binaries) if p), None)
        sock = next((s for s in sockets if os.path.exists(s)), None)
        if path or sock:
            out.append({"name": name, "path": path, "socket": sock})
    return out


def host_facts(hostname: str) -> dict[str, Any]:
    """This node's facts (module docstring)."""
    u = os.uname()
    rel = os_release()
    boot = boot_epoch_ns()
    return {
        "hostname": hostname,
        "os": {
            "id": rel.get("ID"),
            "version_id": rel.get("VERSION_ID"),
            "pretty_name": rel.get("PRETTY_NAME"),
            "codename": rel.get("VERSION_CODENAME"),
        },
        "kernel": u.release,
        "kernel_version": u.version,
        "architecture": u.machine,
        "boot_time": format_time_ns(boot),
        "cgroup_version": cgroup_version(),
        "runtimes": container_runtimes(),
        "cpus": os.cpu_count(),
        #: the host's packages (a package scan of /): None until one ran
        "packages": None,
    }
