"""Freeze and thaw a container: its processes stop where they are (no CPU, no syscalls, memory and
open files kept), so evidence can be taken from a container that cannot react, and it resumes
exactly where it stopped.

Two mechanisms, both measured here:

``v1``  the cgroup v1 freezer (``freezer.state``: ``FROZEN``/``THAWED``) of the directory that
        ``/proc/<pid>/cgroup`` names for the ``freezer`` controller. This is what runc, and so
        ``podman pause`` and ``runc pause``, use on a node whose controllers are v1 (this one: v1
        controllers plus a cgroup2 hierarchy at /sys/fs/cgroup/unified).
``v2``  ``cgroup.freeze`` of the container's cgroup2 directory (wait for ``frozen 1`` in
        ``cgroup.events``); what runc uses on a pure cgroup2 node.

The default (``method=None``) is the one the runtime itself uses: v1 where the container has a v1
freezer, else v2. Then ``runc state``/``runc list`` say ``paused`` while we hold it frozen, ``runc
resume`` would thaw it, and a container someone paused with ``podman pause`` reads as frozen here
(so :func:`frozen` leaves it paused). Podman's own record is another matter: it changes only with
``podman pause``/``unpause``, so ``podman ps`` shows a container we froze as ``Up`` and ``podman
unpause`` refuses it ("not paused"): thaw it with :func:`thaw`. The two freezers are independent
(a process is stopped while either holds it): :func:`is_frozen` reads both, :func:`thaw` without a
method thaws both.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from stockade.enforce.cgroup2 import check_cgroup2_dir
from stockade.enforce.interface import EnforceError
from stockade.sensor.containers.cgroup import cgroup_v1_hierarchies, mounted_dir
from stockade.sensor.containers.discover import cgroup2_mount, cgroup_pids
from stockade.sensor.procfs import read_cgroups

__all__ = ["FreezeMethod", "FreezeResult", "freeze", "freezer_v1_dir", "frozen", "is_frozen", "thaw"]

FreezeMethod = Literal["v1", "v2"]


@dataclass(frozen=True, slots=True)
class FreezeResult:
    """What :func:`freeze` or :func:`thaw` did: with which `method`, on which directory, whether
    the cgroup is now in the state asked for (`done`), whether it was already (`already`), its
    process count and how long it took."""

    cgroup_dir: str
    method: FreezeMethod
    directory: str
    done: bool
    already: bool
    pids: int
    elapsed_s: float
    detail: str = ""


def freezer_v1_dir(cgroup2_dir: str) -> str | None:
    """The v1 freezer directory of the container whose cgroup2 directory is `cgroup2_dir` (the one
    /proc/<pid>/cgroup names for a process of it; else the same path under the freezer mount), or
    None where there is no v1 freezer."""
    mount = cgroup_v1_hierarchies().get("freezer")
    if mount is None:
        return None
    for pid in cgroup_pids(cgroup2_dir)[:1]:
        for controllers, path in read_cgroups(pid).items():
            if "freezer" in controllers.split(","):
                d = mounted_dir(mount, path)
                return d if d and os.path.isfile(os.path.join(d, "freezer.state")) else None
    root = cgroup2_mount()
    if root is None:
        return None
    rel = os.path.relpath(cgroup2_dir, root)
    d = os.path.normpath(os.path.join(mount[0], rel))
    return d if os.path.isfile(os.path.join(d, "freezer.state")) else None


def _method(path: str, method: FreezeMethod | None) -> tuple[FreezeMethod, str]:
    if method not in (None, "v1", "v2"):
        raise EnforceError(f"unknown freeze method {method!r}: v1 or v2")
    v1 = freezer_v1_dir(path) if method in (None, "v1") else None
    if method == "v1" and v1 is None:
        raise EnforceError(f"{path}: no cgroup v1 freezer for this container")
    if v1 is not None:
        return "v1", v1
    if not os.path.isfile(os.path.join(path, "cgroup.freeze")):
        raise EnforceError(f"{path}: no cgroup.freeze (Linux >= 5.2 cgroup2) and no v1 freezer")
    return "v2", path


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii") as f:
            return f.read()
    except OSError as e:
        raise EnforceError(f"{path}: {e.strerror}") from e


def _write(path: str, value: str) -> None:
    try:
        with open(path, "w", encoding="ascii") as f:
            f.write(value)
    except OSError as e:
        raise EnforceError(f"writing {value!r} to {path}: {e.strerror}") from e


def _state(method: FreezeMethod, d: str) -> bool:
    """Whether the freezer `d` holds its cgroup frozen (all of it)."""
    if method == "v1":
        return _read(os.path.join(d, "freezer.state")).strip() == "FROZEN"
    return "frozen 1" in _read(os.path.join(d, "cgroup.events")).splitlines()


def _set(cgroup2_dir: str, method: FreezeMethod | None, freeze_it: bool, timeout_s: float) -> FreezeResult:
    path = check_cgroup2_dir(cgroup2_dir)
    m, d = _method(path, method)
    t0 = time.monotonic()
    already = _state(m, d) == freeze_it
    if m == "v1":
        _write(os.path.join(d, "freezer.state"), "FROZEN" if freeze_it else "THAWED")
    else:
        _write(os.path.join(d, "cgroup.freeze"), "1" if freeze_it else "0")
    deadline = t0 + timeout_s
    while _state(m, d) != freeze_it and time.monotonic() < deadline:
        time.sleep(0.005)
    done = _state(m, d) == freeze_it
    detail = "" if done else f"not {'frozen' if freeze_it else 'thawed'} after {timeout_s}s"
    return FreezeResult(path, m, d, done, already, len(cgroup_pids(path)), time.monotonic() - t0, detail)


def freeze(cgroup2_dir: str, *, method: FreezeMethod | None = None, timeout_s: float = 5.0) -> FreezeResult:
    """Freeze the container of `cgroup2_dir` (module docstring for `method`), waiting up to
    `timeout_s` until every process is stopped (`done` False if not)."""
    return _set(cgroup2_dir, method, True, timeout_s)


def thaw(cgroup2_dir: str, *, method: FreezeMethod | None = None, timeout_s: float = 5.0) -> FreezeResult:
    """Thaw the container of `cgroup2_dir`; without `method`, whichever freezer holds it (both if
    both do: the result names the v1 one then)."""
    path = check_cgroup2_dir(cgroup2_dir)
    if method is None and os.path.isfile(os.path.join(path, "cgroup.freeze")) and _state("v2", path):
        res = _set(path, "v2", False, timeout_s)
        v1 = freezer_v1_dir(path)
        if v1 is None or not _state("v1", v1):
            return res
    return _set(path, method, False, timeout_s)


def is_frozen(cgroup2_dir: str) -> bool:
    """Whether the container of `cgroup2_dir` is frozen, by either freezer."""
    path = check_cgroup2_dir(cgroup2_dir)
    if os.path.isfile(os.path.join(path, "cgroup.events")) and _state("v2", path):
        return True
    v1 = freezer_v1_dir(path)
    return v1 is not None and _state("v1", v1)


@contextmanager
def frozen(cgroup2_dir: str, *, method: FreezeMethod | None = None, timeout_s: float = 5.0) -> Iterator[bool]:
    """Hold the container frozen for the block: freeze it unless it is frozen already, and on exit
    thaw it only if this froze it (a container someone paused stays paused). Yields whether it is
    frozen during the block (False: freezing did not complete in `timeout_s`; the block runs)."""
    if is_frozen(cgroup2_dir):
        yield True
        return
    res = freeze(cgroup2_dir, method=method, timeout_s=timeout_s)
    try:
        yield res.done
    finally:
        thaw(cgroup2_dir, method=res.method, timeout_s=timeout_s)
