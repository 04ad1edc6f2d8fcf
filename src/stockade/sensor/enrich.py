"""Enricher: raw sensor event -> event with process ancestry, container and Kubernetes fields.

``Enricher.enrich(raw)`` feeds the process table (:mod:`stockade.sensor.proctable`), resolves the
process's container from its cgroup path (the raw event's ``_cgroup_path``, else the table's, else
``/proc/<pid>/cgroup``) and mount namespace (:mod:`stockade.sensor.containers.resolver`), decides
``proc.is_exe_upper_layer`` on exec (:mod:`stockade.sensor.containers.drift`, unless the backend said
it with ``_exe_upper``), and returns a new dict without the private ``_`` keys. Fields the backend
gave are never overwritten. Host processes get ``container.id`` ``host``; a process whose container
cannot be established (gone before /proc was read, its parent not in a container) gets ``unknown``,
never ``host``, and is counted in ``stats["container_unknown"]``.

The container dicts it adds (``container.mounts``, ``container.labels``) are shared between events:
read them, never change them.

This is the agent's per-event hot path: the container's fields and the process table's are each
prepared once (per container, per process and table generation) and merged with the event's own in
one step, natively where ``scripts/build-native.sh`` built ``_merge.c`` (:func:`merge` otherwise:
the same dict).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from stockade.behavior.ops import RUNTIMES
from stockade.sensor import native, procfs
from stockade.sensor.containers.drift import exe_upper_layer
from stockade.sensor.containers.info import ContainerInfo
from stockade.sensor.containers.resolver import ContainerResolver
from stockade.sensor.interface import PRIVATE_KEYS
from stockade.sensor.proctable import EXEC_TYPES, ProcEntry, ProcessTable
from stockade.sensor.users import UserNames

__all__ = ["Enricher", "merge"]

#: OCI runtimes: the container a child of theirs runs in is named on their command line
_RUNTIME_VERBS = frozenset({"exec", "create", "run"})
_HOST_FIELDS = {"container.id": "host", "container.name": "host"}
#: a process whose container cannot be established (gone before /proc was read, no cgroup or mount
#: namespace in its events, no parent in a container): never the host's. Rules on containers
#: (``container.id != host``) still see it; ``stats["container_unknown"]`` counts it.
UNKNOWN_CONTAINER = "unknown"
_UNKNOWN_FIELDS = {"container.id": UNKNOWN_CONTAINER, "container.name": UNKNOWN_CONTAINER}
_NO_FIELDS: dict[str, Any] = {}
_PRIVATE = frozenset(PRIVATE_KEYS)
#: the native merge (same result as merge()), or None
_native_merge: Any = getattr(native.load("stockade.sensor._merge"), "merge", None)


def merge(base: Mapping[str, Any], fields: Mapping[str, Any], raw: Mapping[str, Any]) -> dict[str, Any]:
    """``{**base, **fields, **raw}`` without the private keys: a new dict, later ones winning."""
    ev = {**base, **fields, **raw}
    for k in PRIVATE_KEYS:
        ev.pop(k, None)
    return ev


class Enricher:
    """Process table + container resolver applied to every raw event; see the module's docstring."""

    def __init__(
        self,
        table: ProcessTable | None = None,
        resolver: ContainerResolver | None = None,
        *,
        read_proc: bool = True,
        drift: bool = True,
        native_merge: bool = True,
    ) -> None:
        """`native_merge`: merge with the native module where it is built (:func:`merge` otherwise)."""
        self.table = table if table is not None else ProcessTable(read_proc=read_proc)
        self.resolver = resolver if resolver is not None else ContainerResolver()
        self.read_proc = read_proc
        self.drift = drift
        self.users = UserNames()
        #: events, host, container, drift_overlay, drift_mtime, drift_unknown, drift_backend
        self.stats: Counter[str] = Counter()
        self._native_merge = _native_merge if native_merge else None

    def start(self) -> int:
        """Take the processes already running into the table (a /proc scan); how many."""
        return self.table.scan()

    def enrich_batch(self, raws: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each raw event enriched, in order."""
        return [self.enrich(r) for r in raws]

    def enrich(self, raw: dict[str, Any]) -> dict[str, Any]:
        """The enriched event (a new dict without ``_`` keys): the event's own fields, then the
        container's, then the process table's (each prepared once and merged: the hot path)."""
        self.stats["events"] += 1
        entry = self.table.observe(raw)
        info, known = self._container(raw, entry)
        base: dict[str, Any]
        if not known:
            self.stats["container_unknown"] += 1
            base = _UNKNOWN_FIELDS
        elif info is None:
            self.stats["host"] += 1
            base = _HOST_FIELDS
        else:
            self.stats["container"] += 1
            base = info.fields()
        # the backend gave the ancestry itself: the table fills in the rest only
        given = entry is not None and ("proc.aname" in raw or "proc.aname[1]" in raw or "proc.pname" in raw)
        fields = self.table.fields(entry) if entry is not None and not given else _NO_FIELDS
        m = self._native_merge
        ev: dict[str, Any] = m(base, fields, raw, _PRIVATE) if m is not None else merge(base, fields, raw)
        if entry is not None:
            if given:
                self.table.enrich(ev, entry)
            self._drift(raw, ev, entry, info, known)
        if known and ("user.name" not in ev or "group.name" not in ev):
            self._user_names(ev, info)
        return ev

    def _user_names(self, ev: dict[str, Any], info: ContainerInfo | None) -> None:
        """user.name / group.name from the passwd and group files the process sees (a container's
        are read through its init process, whose root is the container's once it runs)."""
        if info is None:
            users, groups = self.users.names("host", None)
        else:
            pid = info.init_pid or ev.get("proc.pid")
            users, groups = self.users.names(info.full_id, pid if isinstance(pid, int) else None)
        uid, gid = ev.get("user.uid"), ev.get("group.gid")
        if uid is not None and "user.name" not in ev:
            name = users.get(uid)
            if name is not None:
                ev["user.name"] = name
        if gid is not None and "group.name" not in ev:
            name = groups.get(gid)
            if name is not None:
                ev["group.name"] = name

    def _container(self, raw: dict[str, Any], entry: ProcEntry | None) -> tuple[ContainerInfo | None, bool]:
        """(container or None for the host, whether it is known at all)."""
        cg = raw.get("_cgroup_path")
        mntns = raw.get("_mntns")
        if entry is not None:
            cached = entry.container
            if cached is not None and (cg is None or cg == cached[0]):
                info = cached[1]
                if info is None or info.complete:
                    return info, True
            if cg is None:
                cg = entry.cgroup_path
            if mntns is None:
                mntns = entry.mntns
            if cg is None and self.read_proc and entry.exited_at is None:
                live_cg, live_mntns = procfs.read_placement(entry.pid)
                if live_cg is not None:
                    cg = entry.cgroup_path = live_cg
                if mntns is None and live_mntns is not None:
                    mntns = entry.mntns = live_mntns
        if cg is None and mntns is None:
            return self._parent_container(entry)
        info = self.resolver.resolve(cg, mntns if isinstance(mntns, int) else None)
        if entry is not None:
            entry.container = (cg, info)
        return info, True

    def _parent_container(self, entry: ProcEntry | None) -> tuple[ContainerInfo | None, bool]:
        """For a process whose own cgroup and namespace are unknown (gone before /proc was read):
        its parent's container when the parent is in one (exec cannot leave a container), or the
        container a runtime ancestor was asked to run it in (``runc exec <id>``: the runtime moves
        its child into the container before the exec). Anything else is unknown: a host parent may
        have moved its child, so the host is never assumed."""
        if entry is None:
            return None, False
        parent = self.table.get(entry.ppid) if entry.ppid is not None else None
        cached = parent.container if parent is not None else None
        if cached is not None and cached[1] is not None:
            self.stats["container_from_parent"] += 1
            entry.container = cached
            info: ContainerInfo = cached[1]
            return info, True
        found = self._runtime_target(parent)
        if found is not None:
            self.stats["container_from_runtime"] += 1
            entry.container = (None, found)
            return found, True
        return None, False

    def _runtime_target(self, proc: ProcEntry | None) -> ContainerInfo | None:
        """The known container named on the command line of a runtime (runc, crun, ...) that is
        `proc` or one of its nearest runtime ancestors (``runc init`` runs below ``runc exec``)."""
        for _ in range(4):
            if proc is None or not _is_runtime(proc):
                return None
            words = (proc.args or "").split()
            if _RUNTIME_VERBS.intersection(words):
                for w in words:
                    info = self.resolver.cached(w)
                    if info is not None:
                        return info
                return None
            proc = self.table.get(proc.ppid) if proc.ppid is not None else None
        return None

    def _drift(
        self,
        raw: dict[str, Any],
        ev: dict[str, Any],
        entry: ProcEntry,
        info: ContainerInfo | None,
        known: bool,
    ) -> None:
        if "proc.is_exe_upper_layer" in ev:
            return
        if "_exe_upper" in raw:
            self.stats["drift_backend"] += 1
            ev["proc.is_exe_upper_layer"] = bool(raw["_exe_upper"])
            return
        if not entry.drift_checked and self.drift and known:
            entry.drift_checked = True
            if info is None:
                entry.exe_upper = False
            elif not _is_file_path(entry.exepath or ev.get("proc.exepath")):
                # no executable file to judge: the runtime's init between clone and exec shows "/"
                entry.drift_checked = False
            elif raw.get("evt.type") in EXEC_TYPES or entry.exe_upper is None:
                r = exe_upper_layer(
                    info,
                    entry.exepath or ev.get("proc.exepath"),
                    entry.pid if entry.exited_at is None else None,
                )
                self.stats[f"drift_{r.method}"] += 1
                entry.exe_upper = r.upper
        if entry.exe_upper is not None:
            ev["proc.is_exe_upper_layer"] = entry.exe_upper


def _is_file_path(p: Any) -> bool:
    return isinstance(p, str) and p.startswith("/") and len(p) > 1 and not p.endswith("/")


def _is_runtime(proc: ProcEntry) -> bool:
    """An OCI runtime process, by its executable or its name (runc names its init stages
    ``runc:[N:...]`` and runs them from a copy of itself)."""
    exe = os.path.basename(proc.exepath or proc.exe or "")
    return exe in RUNTIMES or (proc.name or "").split(":", 1)[0] in RUNTIMES
