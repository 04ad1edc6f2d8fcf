"""Find one running container by what a user types: its full id, a unique id prefix, or its name.

``find_container("web")`` looks at the containers running on this node (the cgroup2 hierarchy,
:func:`~stockade.sensor.containers.discover.running_containers`) and gives a
:class:`FoundContainer`: id, name, runtime, cgroup2 directory, pids, init pid, what the runtime says
of it (:class:`~stockade.sensor.containers.info.ContainerInfo`) and the runtime's raw metadata
(``podman inspect``'s object, runc's state.json). An exact id wins over a name, a name over a
prefix; a prefix of several containers is a :class:`~stockade.errors.UsageError` listing them,
nothing at all a :class:`~stockade.errors.NotFoundError`. Names are podman's (asked with
``podman container inspect``, which resolves names itself) or, for the other runtimes, what
their metadata says (runc's name is its id).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from stockade.errors import NotFoundError, UsageError
from stockade.sensor.containers.cgroup import cgroup2_dir
from stockade.sensor.containers.discover import (
    RunningContainer,
    cgroup2_mount,
    cgroup_pids,
    running_containers,
)
from stockade.sensor.containers.info import ContainerInfo
from stockade.sensor.containers.podman import PodmanClient, info_from_inspect
from stockade.sensor.containers.resolver import ContainerResolver
from stockade.sensor.containers.runc import DEFAULT_RUNC_ROOTS, RuncIndex

__all__ = ["FoundContainer", "find_container"]


@dataclass(slots=True)
class FoundContainer:
    """A running container, found by :func:`find_container`."""

    id: str
    name: str | None
    runtime: str
    #: its cgroup2 directory on the host
    cgroup2_dir: str
    #: its cgroup2 id (the directory's inode number)
    cgroup_id: int
    #: its processes when it was found, lowest first
    pids: tuple[int, ...]
    #: its init process (the runtime's word when it is one of `pids`, else the lowest pid)
    init_pid: int
    info: ContainerInfo
    #: the runtime's own metadata: podman inspect's object, runc's state.json (None: not known)
    raw: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def short_id(self) -> str:
        """The 12-character id (``container.id``)."""
        return self.id[:12]

    def describe(self) -> str:
        """``<short id> (<name>)``, for messages."""
        return f"{self.short_id} ({self.name})" if self.name and self.name != self.id else self.short_id


def _runc_only(index: RuncIndex, known: dict[str, RunningContainer]) -> dict[str, RunningContainer]:
    """The runc containers whose cgroup path names no container (a cgroupsPath of their own),
    found in runc's state directories: their init process's cgroup2 directory and its pids."""
    index.refresh()
    root = (cgroup2_mount() or "/").rstrip("/")
    out: dict[str, RunningContainer] = {}
    for cid in list(index.states):
        if cid in known:
            continue
        st = index.state(cid)
        pid = st.data.get("init_process_pid") if st is not None else None
        if not isinstance(pid, int) or pid <= 0:
            continue
        d = cgroup2_dir(pid)
        if d is None:
            continue
        pids = sorted(cgroup_pids(d))
        try:
            ino = os.stat(d).st_ino
        except OSError:
            continue
        if pids and d.rstrip("/") != root:  # never the hierarchy's root: that is every process
            out[cid] = RunningContainer(cid, "runc", d, ino, tuple(pids))
    return out


def _podman_by_ref(
    client: PodmanClient, ref: str, running: dict[str, RunningContainer]
) -> dict[str, Any] | None:
    """podman's inspect object of the running container it knows by this name (None: none)."""
    if not client.available:
        return None
    d = client.inspect(ref)
    if d is None or d.get("Id") not in running:
        return None
    name = d.get("Name")
    return d if name == ref or str(name).lstrip("/") == ref else None


def _describe(
    c: RunningContainer,
    client: PodmanClient,
    runc_roots: tuple[str, ...],
    inspected: dict[str, Any] | None = None,
) -> FoundContainer:
    raw: dict[str, Any] | None = None
    info: ContainerInfo | None = None
    if c.runtime == "podman" and client.available:
        raw = inspected if inspected is not None else client.inspect(c.full_id)
        if raw is not None and raw.get("Id") == c.full_id:
            info = info_from_inspect(raw)
        else:
            raw = None
    if info is None:
        info = ContainerResolver(runc_roots=runc_roots, podman=client).by_id(c.full_id, c.runtime)
    if raw is None:
        st = RuncIndex(roots=runc_roots).state(c.full_id)
        raw = st.data if st is not None else None
    init = info.init_pid if info.init_pid in c.pids else c.pid
    return FoundContainer(
        id=c.full_id,
        name=info.name,
        runtime=info.runtime if info.runtime not in ("unknown", "") else c.runtime,
        cgroup2_dir=c.cgroup_dir,
        cgroup_id=c.cgroup_id,
        pids=c.pids,
        init_pid=init,
        info=info,
        raw=raw,
    )


def find_container(
    ref: str,
    *,
    podman: PodmanClient | None = None,
    runc_roots: tuple[str, ...] = DEFAULT_RUNC_ROOTS,
    cgroup_root: str | None = None,
) -> FoundContainer:
    """The running container `ref` names: its full id, its name, or a unique prefix of its id (in
    that order). UsageError for an empty ref or a prefix of several containers (they are listed);
    NotFoundError when no running container matches."""
    ref = ref.strip()
    if not ref:
        raise UsageError("no container given (its id, id prefix or name)")
    client = podman if podman is not None else PodmanClient()
    running = {c.full_id: c for c in running_containers(cgroup_root)}
    running.update(_runc_only(RuncIndex(roots=runc_roots), running))
    if ref in running:
        return _describe(running[ref], client, runc_roots)
    by_name = _podman_by_ref(client, ref, running)
    if by_name is not None:
        return _describe(running[str(by_name["Id"])], client, runc_roots, by_name)
    prefixed = sorted(cid for cid in running if cid.startswith(ref))
    if len(prefixed) == 1:
        return _describe(running[prefixed[0]], client, runc_roots)
    if len(prefixed) > 1:
        found = [_describe(running[cid], client, runc_roots) for cid in prefixed[:20]]
        listing = ", ".join(f.describe() for f in found)
        more = f" and {len(prefixed) - 20} more" if len(prefixed) > 20 else ""
        raise UsageError(
            f"container id prefix {ref!r} matches {len(prefixed)} running containers: {listing}{more}; "
            "give more characters"
        )
    # other runtimes' names: ask each running container's runtime (slower, only when nothing matched)
    resolver = ContainerResolver(runc_roots=runc_roots, podman=client)
    named = [cid for cid, c in running.items() if resolver.by_id(cid, c.runtime).name == ref]
    if len(named) == 1:
        return _describe(running[named[0]], client, runc_roots)
    if len(named) > 1:
        raise UsageError(
            f"{len(named)} running containers are named {ref!r}: {', '.join(n[:12] for n in named)}"
        )
    raise NotFoundError(f"no running container {ref!r} (by id, id prefix or name) on this node")
