"""A container's CPU, memory and pids counters, from its cgroup: cgroup2, v1, or both (hybrid).

Where each counter is read is decided once per container (:func:`locate`), from what the node
offers:

* **cgroup2** (the container's directory of the cgroup2 hierarchy,
  :class:`~stockade.sensor.containers.discover.RunningContainer.cgroup_dir`): ``cpu.stat``
  (``usage_usec``, present in every cgroup2 directory, controllers enabled or not),
  ``memory.current`` / ``memory.stat`` / ``memory.max`` and ``pids.current`` / ``pids.max`` where
  the memory and pids controllers are enabled for it (a pure cgroup2 node);
* **cgroup v1** (a hybrid node such as this one: the controllers are v1 hierarchies, the cgroup2
  hierarchy at ``/sys/fs/cgroup/unified`` has none): ``cpuacct.usage``, ``memory.usage_in_bytes`` /
  ``memory.stat`` / ``memory.limit_in_bytes`` and ``pids.current`` / ``pids.max`` in the
  container's directory of each hierarchy, found from a process's ``/proc/<pid>/cgroup``.

cgroup2 is preferred where it has the counter. Every counter is hierarchical (a container's nested
cgroups are counted in it). A counter with no source is reported in :attr:`CgroupFiles.missing`,
and a file that cannot be read at sample time in the sample's own ``missing``: never an exception.
Memory is the working set, as `podman stats` and the kubelet count it: usage less inactive file
cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from stockade.sensor.containers.cgroup import cgroup_v1_hierarchies, mounted_dir
from stockade.sensor.procfs import read_cgroups

__all__ = [
    "CgroupFiles",
    "CgroupReading",
    "Hierarchies",
    "locate",
    "parse_keyed",
    "parse_limit",
    "read_cgroup",
    "read_text",
]

#: controller -> (mount point, the hierarchy's directory mounted there)
Hierarchies = dict[str, tuple[str, str]]
Version = Literal["v1", "v2"]
#: v1 limits at or above this are "no limit" (the kernel writes PAGE_COUNTER_MAX in bytes)
_NO_LIMIT = 2**62


def read_text(path: str, limit: int = 16384) -> tuple[str | None, str | None]:
    """(content, None), or (None, why) when `path` cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        return None, f"{path}: {e.strerror}"
    try:
        return os.read(fd, limit).decode("ascii", "replace"), None
    except OSError as e:
        return None, f"{path}: {e.strerror}"
    finally:
        os.close(fd)


def parse_keyed(text: str, keys: frozenset[str] | None = None) -> dict[str, int]:
    """A flat keyed file (``cpu.stat``, ``memory.stat``: ``key value`` lines) as {key: value};
    only `keys` when given; malformed lines are skipped."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if keys is not None and key not in keys:
            continue
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out


def parse_limit(text: str) -> int | None:
    """A limit file (``memory.max``, ``pids.max``, ``memory.limit_in_bytes``): None for no limit."""
    v = text.strip()
    if v in ("", "max"):
        return None
    try:
        n = int(v)
    except ValueError:
        return None
    return None if n >= _NO_LIMIT else n


@dataclass(frozen=True, slots=True)
class CgroupFiles:
    """Where one container's counters are read: (directory, cgroup version) per counter, None
    when this node has no source for it (``missing`` says why)."""

    cpu: tuple[str, Version] | None
    memory: tuple[str, Version] | None
    pids: tuple[str, Version] | None
    missing: tuple[str, ...] = ()


def _v1_dirs(pid: int, hierarchies: Hierarchies) -> dict[str, str]:
    """Process `pid`'s directory in each v1 hierarchy mounted here, by controller."""
    out: dict[str, str] = {}
    for controllers, path in read_cgroups(pid).items():
        for ctl in controllers.split(","):
            where = hierarchies.get(ctl)
            if not ctl or where is None:
                continue
            d = mounted_dir(where, path)
            if d is not None:  # else not visible from this mount
                out[ctl] = d
    return out


def _pick(
    v2: str | None, v2_file: str, v1: dict[str, str], controller: str, v1_file: str
) -> tuple[str, Version] | None:
    if v2 is not None and os.path.exists(os.path.join(v2, v2_file)):
        return v2, "v2"
    d = v1.get(controller)
    if d is not None and os.path.exists(os.path.join(d, v1_file)):
        return d, "v1"
    return None


def locate(v2_dir: str | None, pid: int, hierarchies: Hierarchies | None = None) -> CgroupFiles:
    """Where the counters of the container whose cgroup2 directory is `v2_dir` and which runs
    process `pid` are read (module docstring). `hierarchies`: the v1 hierarchies (default: this
    node's, :func:`~stockade.sensor.containers.cgroup.cgroup_v1_hierarchies`)."""
    h = cgroup_v1_hierarchies() if hierarchies is None else hierarchies
    v1 = _v1_dirs(pid, h) if h else {}
    cpu = _pick(v2_dir, "cpu.stat", v1, "cpuacct", "cpuacct.usage")
    memory = _pick(v2_dir, "memory.current", v1, "memory", "memory.usage_in_bytes")
    pids = _pick(v2_dir, "pids.current", v1, "pids", "pids.current")
    where = f"in {v2_dir or 'no cgroup2 directory'}" + (" nor its v1 hierarchy" if h else "")
    missing = []
    if cpu is None:
        missing.append(f"cpu: no cpu.stat {where}")
    if memory is None:
        missing.append(f"memory: no memory controller {where}")
    if pids is None:
        missing.append(f"pids: no pids controller {where} (processes counted)")
    return CgroupFiles(cpu, memory, pids, tuple(missing))


@dataclass(slots=True)
class CgroupReading:
    """The counters read from a container's cgroup at one time (None: not read)."""

    cpu_usage_ns: int | None = None
    memory_bytes: int | None = None
    memory_limit_bytes: int | None = None
    pids: int | None = None
    pids_limit: int | None = None


_CPU_KEYS = frozenset({"usage_usec"})
_INACTIVE = {"v2": "inactive_file", "v1": "total_inactive_file"}


def _read_cpu(where: tuple[str, Version], out: CgroupReading, problems: list[str]) -> None:
    d, version = where
    text, why = read_text(os.path.join(d, "cpu.stat" if version == "v2" else "cpuacct.usage"))
    if text is None:
        problems.append(f"cpu: {why}")
    elif version == "v2":
        usec = parse_keyed(text, _CPU_KEYS).get("usage_usec")
        out.cpu_usage_ns = usec * 1000 if usec is not None else None
    else:
        out.cpu_usage_ns = int(text) if text.strip().isdigit() else None


def _read_memory(where: tuple[str, Version], out: CgroupReading, problems: list[str]) -> None:
    d, version = where
    usage_file, limit_file = (
        ("memory.current", "memory.max")
        if version == "v2"
        else ("memory.usage_in_bytes", "memory.limit_in_bytes")
    )
    text, why = read_text(os.path.join(d, usage_file))
    if text is None or not text.strip().isdigit():
        problems.append(f"memory: {why or usage_file + ': not a number'}")
        return
    usage = int(text)
    stat, _ = read_text(os.path.join(d, "memory.stat"))
    key = _INACTIVE[version]
    inactive = parse_keyed(stat, frozenset({key})).get(key, 0) if stat is not None else 0
    out.memory_bytes = max(0, usage - inactive)
    limit, _ = read_text(os.path.join(d, limit_file))
    out.memory_limit_bytes = parse_limit(limit) if limit is not None else None


def _read_pids(where: tuple[str, Version], out: CgroupReading, problems: list[str]) -> None:
    d, _ = where
    text, why = read_text(os.path.join(d, "pids.current"))
    if text is None or not text.strip().isdigit():
        problems.append(f"pids: {why or 'pids.current: not a number'}")
        return
    out.pids = int(text)
    limit, _ = read_text(os.path.join(d, "pids.max"))
    out.pids_limit = parse_limit(limit) if limit is not None else None


def read_cgroup(files: CgroupFiles, problems: list[str]) -> CgroupReading:
    """The counters `files` locates, read now; what could not be read is appended to `problems`."""
    out = CgroupReading()
    if files.cpu is not None:
        _read_cpu(files.cpu, out, problems)
    if files.memory is not None:
        _read_memory(files.memory, out, problems)
    if files.pids is not None:
        _read_pids(files.pids, out, problems)
    return out
