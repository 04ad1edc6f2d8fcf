"""The last resort: kill every process of a container.

``kill_container(cgroup_dir)`` writes ``1`` to the cgroup2 directory's ``cgroup.kill`` (Linux >=
5.14: the kernel kills the whole subtree, processes forking meanwhile included, in about 10 ms
here), else sends SIGKILL to every pid listed in the ``cgroup.procs`` of the directory and its
sub-directories, again until none is left (a process may fork between the read and the kill).
Either way it waits until the cgroup is empty, or `timeout_s` passed, and says what it did.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from typing import Literal

from stockade.enforce.cgroup2 import check_cgroup2_dir
from stockade.enforce.interface import EnforceError

__all__ = ["KillResult", "kill_container", "pids_of"]

KillMethod = Literal["cgroup.kill", "sigkill"]


@dataclass(frozen=True, slots=True)
class KillResult:
    """What :func:`kill_container` did: how, how many processes were there when it started, whether
    the cgroup is empty now, and how long it took."""

    method: KillMethod
    pids: int
    empty: bool
    elapsed_s: float


def pids_of(cgroup_dir: str) -> list[int]:
    """The pids in `cgroup_dir` and its sub-cgroups."""
    out: list[int] = []
    for d, _subdirs, files in os.walk(cgroup_dir):
        if "cgroup.procs" not in files:
            continue
        try:
            with open(os.path.join(d, "cgroup.procs"), encoding="ascii") as f:
                out.extend(int(x) for x in f.read().split())
        except (OSError, ValueError):
            continue
    return out


def _sigkill_all(cgroup_dir: str) -> None:
    for pid in pids_of(cgroup_dir):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def kill_container(cgroup_dir: str, *, use_cgroup_kill: bool = True, timeout_s: float = 5.0) -> KillResult:
    """Kill every process of the cgroup2 directory `cgroup_dir` (see the module docstring);
    `use_cgroup_kill=False` takes the SIGKILL path even where cgroup.kill exists."""
    path = check_cgroup2_dir(cgroup_dir)
    t0 = time.monotonic()
    before = len(pids_of(path))
    knob = os.path.join(path, "cgroup.kill")
    method: KillMethod = "cgroup.kill" if use_cgroup_kill and os.path.exists(knob) else "sigkill"
    deadline = t0 + timeout_s
    while True:
        if method == "cgroup.kill":
            try:
                with open(knob, "w", encoding="ascii") as f:
                    f.write("1")
            except OSError as e:
                raise EnforceError(f"cgroup.kill of {path}: {e.strerror}") from e
        else:
            _sigkill_all(path)
        # wait a little for the processes to go; then again (one may have forked meanwhile)
        settle = min(time.monotonic() + 0.1, deadline)
        while pids_of(path) and time.monotonic() < settle:
            time.sleep(0.002)
        empty = not pids_of(path)
        if empty or time.monotonic() >= deadline:
            return KillResult(method, before, empty, time.monotonic() - t0)
