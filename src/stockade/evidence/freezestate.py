"""Whether a container is frozen, read from the kernel: ``cgroup.events`` (``frozen 1``) and
``cgroup.freeze`` of its cgroup2 directory, and ``freezer.state`` of the v1 freezer hierarchy
(what ``podman pause`` / ``runc pause`` use on a hybrid node). Either frozen is frozen."""

from __future__ import annotations

import os
from typing import Any

from stockade.sensor.containers.cgroup import cgroup_v1_hierarchies, mounted_dir
from stockade.sensor.procfs import read_cgroups

__all__ = ["freeze_state"]


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def freeze_state(cgroup2_dir: str | None, pid: int | None) -> dict[str, Any]:
    """``{"frozen": bool, "cgroup2": {...} | None, "v1_freezer": {...} | None}``."""
    out: dict[str, Any] = {"frozen": False, "cgroup2": None, "v1_freezer": None}
    if cgroup2_dir:
        events = _read(os.path.join(cgroup2_dir, "cgroup.events"))
        freeze = _read(os.path.join(cgroup2_dir, "cgroup.freeze"))
        frozen = any(line.split() == ["frozen", "1"] for line in (events or "").splitlines())
        out["cgroup2"] = {"dir": cgroup2_dir, "cgroup.freeze": freeze, "frozen": frozen}
        out["frozen"] |= frozen
    if pid is not None:
        path = read_cgroups(pid).get("freezer")
        mount = cgroup_v1_hierarchies().get("freezer")
        d = mounted_dir(mount, path) if path is not None and mount is not None else None
        if d is not None:
            state = _read(os.path.join(d, "freezer.state"))
            out["v1_freezer"] = {"dir": d, "freezer.state": state, "frozen": state == "FROZEN"}
            out["frozen"] |= state == "FROZEN"
    return out
