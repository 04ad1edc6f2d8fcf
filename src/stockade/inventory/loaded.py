"""What a running process really uses: its executable and the files mapped into its memory.

``/proc/<pid>/exe`` and the file-backed lines of ``/proc/<pid>/maps`` (shared libraries, Python
and Node extension modules, the JVM's jars when mapped) give paths as the process sees them (its
own root, also inside a container). A process gone meanwhile, or not readable, gives nothing and
is counted by the caller. The files the sensor saw a process open (a pure-Python module, a jar
read through a descriptor) come from :mod:`stockade.inventory.opens`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["UsedFile", "used_files"]

#: maps lines naming these are not files of a package
_PSEUDO = ("[", "/dev/", "/memfd:", "/SYSV", "/anon_hugepage", "/proc/", "/sys/")


@dataclass(frozen=True, slots=True)
class UsedFile:
    """A file a process uses: how (``exe`` or ``maps``), and the process."""

    path: str
    pid: int
    comm: str
    via: str


def _comm(pid: int, proc: str) -> str:
    try:
        with open(f"{proc}/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def used_files(pid: int, proc: str = "/proc") -> Iterator[UsedFile]:
    """The executable and mapped files of `pid` (each path once; nothing if it is gone)."""
    comm = _comm(pid, proc)
    seen: set[str] = set()
    try:
        exe = os.readlink(f"{proc}/{pid}/exe")
    except OSError:
        exe = ""
    if exe.startswith("/"):
        exe = exe.removesuffix(" (deleted)")
        seen.add(exe)
        yield UsedFile(exe, pid, comm, "exe")
    try:
        with open(f"{proc}/{pid}/maps") as f:
            lines = f.read().splitlines()
    except OSError:
        return
    for line in lines:
        parts = line.split(None, 5)
        if len(parts) < 6:
            continue
        path = parts[5].removesuffix(" (deleted)")
        if not path.startswith("/") or path.startswith(_PSEUDO) or path in seen:
            continue
        seen.add(path)
        yield UsedFile(path, pid, comm, "maps")
