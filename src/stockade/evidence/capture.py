"""Capture a running container (or some of its processes) into a sealed evidence bundle.

:func:`capture_container` reads, never changes, the container: /proc for its processes, sockets,
maps and memory; the overlay's upper layer for its files; the runtime's metadata; the store for
its recent events and alerts. No exec into it. The volatile part (processes, open files, network,
maps, memory) is read inside the `freezer`'s block when one is given (the caller's way to freeze
the container: ``stockade.enforce.freeze.frozen(cgroup2_dir)``); the manifest records what the
freezer said and what the kernel said (``cgroup.events``, ``freezer.state``) before, during and
after. A memory dump taken while the container was running is kept, and the manifest says so.

What a collector could not read is recorded in the manifest's ``problems`` (never dropped
silently); a failure of the capture itself removes the partial bundle.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stockade import __version__
from stockade.audit.keys import NodeKey
from stockade.errors import UsageError
from stockade.evidence.bundle import Bundle, BundleWriter, bundle_id, now_text
from stockade.evidence.freezestate import freeze_state
from stockade.evidence.fschanges import DEFAULT_ARCHIVE_CAP, container_layers, upper_changes
from stockade.evidence.hostinfo import host_metadata
from stockade.evidence.memory import DEFAULT_MEMORY_CAP, dump_memory
from stockade.evidence.network import read_net_tables, sockets_of
from stockade.evidence.processes import ExeHasher, ProcessEvidence, process_facts, process_tree_text
from stockade.evidence.records import safe_records
from stockade.model.timeutil import format_time_ns
from stockade.sensor.containers.discover import cgroup_pids
from stockade.sensor.containers.lookup import FoundContainer

if TYPE_CHECKING:
    from stockade.storage.store import Store

__all__ = ["Freezer", "MemorySpec", "capture_container", "collector", "memory_pids"]

#: a context manager factory freezing the container for its block; its bool: frozen inside
Freezer = Callable[[], contextlib.AbstractContextManager[bool]]
#: the processes whose memory is dumped: pids, or "all"
MemorySpec = Sequence[int | str]


def collector(actor: str = "", command: str | None = None) -> dict[str, Any]:
    """Who collects: the user and uid of this process, the host, Stockade's version, the command."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return {
        "user": user,
        "uid": os.getuid(),
        "host": socket.gethostname(),
        "stockade_version": __version__,
        "command": command if command is not None else " ".join(sys.argv),
        "actor": actor or f"{user}@{socket.gethostname()}",
        "pid": os.getpid(),
    }


def memory_pids(memory: MemorySpec | None, pids: Sequence[int]) -> list[int]:
    """The pids whose memory to dump: those named (each must be one of `pids`), or all of `pids`."""
    if not memory:
        return []
    out: list[int] = []
    for m in memory:
        if isinstance(m, str) and m.strip().lower() == "all":
            return list(pids)
        try:
            pid = int(m)
        except ValueError:
            raise UsageError(f"--memory {m!r}: a pid of the container or 'all'") from None
        if pid not in pids:
            raise UsageError(f"--memory {pid}: not a process of the captured container ({_few(pids)})")
        out.append(pid)
    return out


def _few(pids: Sequence[int]) -> str:
    return "pids " + ", ".join(str(p) for p in list(pids)[:10]) + (" ..." if len(pids) > 10 else "")


def _target_pids(found: FoundContainer, pids: Sequence[int] | None) -> list[int]:
    current = sorted(set(cgroup_pids(found.cgroup2_dir)) or set(found.pids))
    if not pids:
        return current
    for p in pids:
        if p not in current:
            raise UsageError(f"--pid {p}: not a process of container {found.describe()} ({_few(current)})")
    return sorted(set(pids))


def _container_doc(found: FoundContainer) -> dict[str, Any]:
    info = {k: v for k, v in asdict(found.info).items() if not k.startswith("_")}
    return {
        "id": found.id,
        "name": found.name,
        "runtime": found.runtime,
        "cgroup2_dir": found.cgroup2_dir,
        "cgroup_id": found.cgroup_id,
        "pids": list(found.pids),
        "init_pid": found.init_pid,
        "info": info,
    }


def _processes(w: BundleWriter, targets: list[int]) -> tuple[list[ProcessEvidence], dict[int, str]]:
    """Each process's facts (raw environ and cmdline kept apart) and its maps."""
    hasher = ExeHasher()
    procs: list[ProcessEvidence] = []
    maps: dict[int, str] = {}
    for pid in targets:
        p = process_facts(pid, hasher)
        if p is None:
            w.problem(f"process {pid}: exited before it was read")
            continue
        procs.append(p)
        if p.environ_raw is not None:
            w.write_bytes(f"raw/environ/{pid}", p.environ_raw)
        else:
            w.problem(f"process {pid}: /proc/{pid}/environ could not be read")
        if p.cmdline_raw is not None:
            w.write_bytes(f"raw/cmdline/{pid}", p.cmdline_raw)
        try:
            with open(f"/proc/{pid}/maps", encoding="utf-8", errors="surrogateescape") as f:
                maps[pid] = f.read()
        except OSError as e:
            w.problem(f"process {pid}: /proc/{pid}/maps: {e.strerror or e}")
            continue
        w.write_bytes(f"maps/{pid}.maps", maps[pid].encode("utf-8", "surrogateescape"))
    w.write_json("processes.json", [p.summary for p in procs])
    w.write_bytes("process-tree.txt", process_tree_text(procs).encode())
    return procs, maps


def _network(w: BundleWriter, net_pid: int, procs: list[ProcessEvidence]) -> list[dict[str, Any]]:
    """The sockets of the network namespace of `net_pid`, with the captured processes holding them."""
    owners: dict[int, list[int]] = {}
    for p in procs:
        for ino in p.sockets:
            owners.setdefault(ino, []).append(p.pid)
    tables, problems = read_net_tables(net_pid)
    for msg in problems:
        w.problem(f"network: {msg}")
    for name, data in tables.items():
        w.write_bytes(f"raw/net/{name}", data)
    sockets = sockets_of(tables, owners)
    w.write_json("network.json", {"netns_of_pid": net_pid, "sockets": sockets})
    return sockets


def _memory(w: BundleWriter, dump: list[int], maps: dict[int, str], cap: int) -> list[dict[str, Any]]:
    dumps: list[dict[str, Any]] = []
    for pid in dump:
        if pid not in maps:
            w.problem(f"memory {pid}: no maps (the process is gone), not dumped")
            continue
        index = dump_memory(pid, maps[pid], w.path(f"memory/{pid}.mem"), cap)
        if "error" in index:
            w.problem(f"memory {pid}: {index['error']}")
        w.write_json(f"memory/{pid}.json", index)
        dumps.append({"pid": pid, "bytes": index["bytes"], "regions_capped": index.get("regions_capped", 0)})
    return dumps


def _volatile(
    w: BundleWriter, found: FoundContainer, targets: list[int], dump: list[int], memory_cap: int
) -> dict[str, Any]:
    """Processes, open files, sockets, maps and memory: what changes from moment to moment."""
    procs, maps = _processes(w, targets)
    net_pid = found.init_pid if found.init_pid in targets else (targets[0] if targets else found.init_pid)
    sockets = _network(w, net_pid, procs)
    state_during = freeze_state(found.cgroup2_dir, found.init_pid)
    dumps = _memory(w, dump, maps, memory_cap)
    return {
        "processes": len(procs),
        "sockets": len(sockets),
        "listening": sum(1 for s in sockets if s.get("state") == "LISTEN" or s.get("listening")),
        "established": sum(1 for s in sockets if s.get("state") == "ESTABLISHED"),
        "redacted": {
            str(p.pid): p.summary["environ_redacted"] for p in procs if p.summary["environ_redacted"]
        },
        "memory_dumps": dumps,
        "state_during": state_during,
    }


def _filesystem(w: BundleWriter, found: FoundContainer, archive_cap: int) -> dict[str, Any]:
    layers, why = container_layers(found)
    if layers is None:
        doc: dict[str, Any] = {"known": False, "reason": why, "changes": []}
    else:
        try:
            doc = upper_changes(layers, w.path("fs/changes.tar"), archive_cap)
        except OSError as e:
            doc = {
                "known": False,
                "reason": f"the upper layer {layers.upper} could not be read: {e}",
                "changes": [],
            }
            w.problem(f"filesystem: {doc['reason']}")
    w.write_json("fs/changes.json", doc)
    if found.runtime == "podman":
        _podman_diff(w, found)
    return {"known": doc["known"], "counts": doc.get("counts", {}), "reason": doc.get("reason")}


def _podman_diff(w: BundleWriter, found: FoundContainer) -> None:
    try:
        r = subprocess.run(
            ["podman", "diff", "--format", "json", found.id], capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        w.problem(f"podman diff: {e}")
        return
    if r.returncode != 0:
        w.problem(f"podman diff: {r.stderr.decode('utf-8', 'replace').strip()[:300]}")
        return
    w.write_bytes("fs/podman-diff.json", r.stdout)


def capture_container(
    found: FoundContainer,
    data_dir: str | Path,
    *,
    store: Store | None = None,
    pids: Sequence[int] | None = None,
    memory: MemorySpec | None = None,
    reason: str = "",
    actor: str = "",
    freezer: Freezer | None = None,
    command: str | None = None,
    memory_cap: int = DEFAULT_MEMORY_CAP,
    archive_cap: int = DEFAULT_ARCHIVE_CAP,
    key: NodeKey | None = None,
) -> Bundle:
    """Capture `found` into a sealed bundle under ``data_dir/evidence`` (module docstring).

    `pids`: only these processes of the container (default: all); `memory`: the pids whose memory
    to dump, or ``["all"]``; `freezer`: freezes the container around the volatile part. UsageError
    for a pid that is not the container's."""
    targets = _target_pids(found, pids)
    dump = memory_pids(memory, targets)
    key = key or NodeKey.load_or_create(data_dir)
    started_ns = time.time_ns()
    who = collector(actor, command)
    w = BundleWriter(data_dir, bundle_id(found.id, started_ns))
    try:
        w.write_json("host.json", host_metadata())
        w.write_json("container/container.json", _container_doc(found))
        if found.raw is not None:
            w.write_json("container/inspect.json", found.raw)
        before = freeze_state(found.cgroup2_dir, found.init_pid)
        said: bool | None = None
        with freezer() if freezer is not None else contextlib.nullcontext(None) as frozen_said:
            said = frozen_said
            volatile = _volatile(w, found, targets, dump, memory_cap)
        after = freeze_state(found.cgroup2_dir, found.init_pid)
        during = volatile.pop("state_during")
        if dump and not during["frozen"]:
            w.problem(
                "memory was dumped while the container was running (not frozen): it may be inconsistent"
            )
        fs = _filesystem(w, found, archive_cap)
        records_meta = None
        if store is not None:
            events, alerts, records_meta = safe_records(store, found.info, w.problems)
            if records_meta is not None:
                w.write_jsonl("store/events.jsonl", events)
                w.write_jsonl("store/alerts.jsonl", alerts)
                w.write_json("store/query.json", records_meta)
        frozen = {
            "freezer": "given" if freezer is not None else "none",
            "freezer_said": said,
            "before": before,
            "during": during,
            "after": after,
            "memory_dumped_frozen": bool(dump) and bool(during["frozen"]),
        }
        target = {
            "kind": "process" if pids else "container",
            "container_id": found.id,
            "container_name": found.name,
            "runtime": found.runtime,
            "image": found.info.image,
            "cgroup2_dir": found.cgroup2_dir,
            "init_pid": found.init_pid,
            "pids": targets,
            "memory_pids": dump,
        }
        summary = {
            "target": target,
            **volatile,
            "filesystem": fs,
            "store": records_meta,
            "frozen_during_capture": during["frozen"],
            "problems": list(w.problems),
        }
        w.write_json("summary.json", summary)
        manifest = {
            "target": target,
            "reason": reason,
            "collector": who,
            "started": format_time_ns(started_ns),
            "ended": now_text(),
            "frozen": frozen,
        }
        return w.seal(key, manifest, actor=who["actor"], note=reason)
    except BaseException:
        w.abandon()
        raise
