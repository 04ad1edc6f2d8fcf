"""The process table: what the sensor knows of every process, so ancestry survives short lives.

Fed by raw events from any backend (exec, fork/clone, exit, and whatever else names a process) and
by a /proc scan at start (:meth:`ProcessTable.scan`), it keeps one :class:`ProcEntry` per process:
pid, parent, comm, exe path, argv, cwd, uid/gid/loginuid, tty, session, start time, cgroup, mount
namespace. :meth:`ProcessTable.enrich` fills the fields an event lacks from it: ``proc.pname``,
``proc.pexepath``, ``proc.pcmdline``, ``proc.aname``/``proc.apid``/``proc.aexepath``/
``proc.acmdline`` (lists, parent first, and ``proc.aname[N]``, ``proc.apid[N]``,
``proc.aexepath[N]`` keys up to ``depth``), ``proc.sid``, ``proc.sname``, ``proc.tty``,
``proc.is_exe_from_memfd``, ``proc.cwd``, ...

Lifetimes: an exited process stays for ``grace_s`` seconds, and longer while entries of its
children remain, so a chain ``bash -> sh -> sleep`` whose members all exited at once still
resolves. Pid reuse: a fork always starts a new entry; an exec for an exited pid does too. The
entry the new process displaces is kept while entries of its children remain (a child holds its
parent's entry, not only its pid), so a survivor's ancestry stays right when the pids of its
exited ancestors are reused under process churn; an ancestor known only by a pid that started
after its child is a reused pid, and the walk stops there (missing, never wrong).

Memory is bounded: ``len(table)`` (entries and displaced ancestors) never exceeds ``max_entries``.
Past it, leaves go first (an entry no other entry names as its parent): exited leaves, oldest exit
first, then the least recently seen live leaves (a live process is read again from /proc on its next
event). An entry with children is never evicted, so no survivor loses an ancestor to eviction;
evicting a leaf may make its parent one. ``stats`` counts each kind (``evicted_exited``,
``evicted_live``, ``expired``, ``displaced``).

Cached fields (:meth:`ProcessTable.fields`) stay valid under churn: a new child, an exit or the
removal of a leaf changes no other entry's fields; an exec (or facts filled in later) of a leaf
drops that entry's own cache only, and of an entry others descend from (or a session leader) every
cache (the table's ``generation``).
"""

from __future__ import annotations

import os
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from stockade.sensor import procfs

__all__ = ["ProcEntry", "ProcessTable"]

EXEC_TYPES = frozenset({"execve", "execveat"})
FORK_TYPES = frozenset({"clone", "clone3", "fork", "vfork"})
EXIT_TYPES = frozenset({"procexit"})
#: an exec reported with a start time this far from the entry's is another process (pid reuse)
_START_SLACK_NS = 2_000_000_000
#: a parent that started this long after its child is a later process with the parent's pid (start
#: times from /proc have clock-tick resolution)
_PARENT_SLACK_NS = 20_000_000
#: what a fork child takes from its parent's entry
_INHERITED = (
    "name",
    "exepath",
    "exe",
    "args",
    "cmdline",
    "cwd",
    "uid",
    "gid",
    "loginuid",
    "tty",
    "sid",
    "cgroup_path",
    "mntns",
    "exe_upper",
    "container",
)


@dataclass(slots=True)
class ProcEntry:
    """One process; any attribute may be unknown (None)."""

    pid: int
    start_ns: int | None = None
    ppid: int | None = None
    name: str | None = None
    exepath: str | None = None
    exe: str | None = None
    args: str | None = None
    cmdline: str | None = None
    cwd: str | None = None
    uid: int | None = None
    gid: int | None = None
    loginuid: int | None = None
    tty: int | None = None
    sid: int | None = None
    vpid: int | None = None
    cgroup_path: str | None = None
    mntns: int | None = None
    exe_upper: bool | None = None
    #: what enrichment attached (the resolved container); opaque to the table
    container: Any = None
    #: enrichment looked at proc.is_exe_upper_layer for this program already
    drift_checked: bool = False
    #: monotonic time of exit; None while alive
    exited_at: float | None = None
    #: entries held by the table whose ``counted_parent`` this one is
    children: int = 0
    #: the entry of this process's parent, linked when first found: its ancestry walks through it
    #: even after the parent's pid was reused (the parent's entry is then held while linked)
    counted_parent: ProcEntry | None = None
    #: no longer the table's entry for its pid (the pid was reused), held for its children
    displaced: bool = False
    #: when it was gone (ns since the epoch): its exit's time, or the start of the process that
    #: took its pid; a process started later is not its child
    gone_by_ns: int | None = None
    #: (table generation, the proc.* fields enrich() adds): rebuilt when the table changed
    fields_cache: tuple[int, dict[str, Any]] | None = None

    @property
    def is_exe_from_memfd(self) -> bool | None:
        """Whether the program runs from a memfd (a file-less executable); None if unknown."""
        p = self.exepath or self.exe
        if p is None:
            return None
        return p.startswith("/memfd:") or p.startswith("memfd:")

    def full_cmdline(self) -> str | None:
        """proc.cmdline: the name and the arguments; unknown while the arguments are (a name
        alone would say the program ran without any)."""
        if self.cmdline is not None:
            return self.cmdline
        if self.name is None or self.args is None:
            return None
        return f"{self.name} {self.args}" if self.args else self.name


#: event key -> ProcEntry attribute, for what an event says about its process
_EVENT_ATTRS = (
    ("proc.ppid", "ppid"),
    ("proc.name", "name"),
    ("proc.exepath", "exepath"),
    ("proc.exe", "exe"),
    ("proc.args", "args"),
    ("proc.cmdline", "cmdline"),
    ("proc.cwd", "cwd"),
    ("user.uid", "uid"),
    ("group.gid", "gid"),
    ("user.loginuid", "loginuid"),
    ("proc.tty", "tty"),
    ("proc.sid", "sid"),
    ("proc.vpid", "vpid"),
    ("_cgroup_path", "cgroup_path"),
    ("_mntns", "mntns"),
    ("_exe_upper", "exe_upper"),
)
#: ProcEntry attribute -> the field filled from it when the event lacks it
_FILL = (
    ("ppid", "proc.ppid"),
    ("name", "proc.name"),
    ("exepath", "proc.exepath"),
    ("exe", "proc.exe"),
    ("args", "proc.args"),
    ("cwd", "proc.cwd"),
    ("uid", "user.uid"),
    ("gid", "group.gid"),
    ("loginuid", "user.loginuid"),
    ("tty", "proc.tty"),
    ("sid", "proc.sid"),
    ("vpid", "proc.vpid"),
)


def read_session(pid: int) -> int | None:
    """The session id from /proc/<pid>/stat (field 6)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
        return int(raw[raw.rfind(b")") + 2 :].split()[3])
    except (OSError, ValueError, IndexError):
        return None


def _other_process(entry: ProcEntry, ev: dict[str, Any]) -> bool:
    """Whether the event's process started at another time than the entry's (a later process
    with its pid)."""
    return _other_start(entry, ev.get("_start_ns"))


def _other_start(entry: ProcEntry, start: Any) -> bool:
    """Whether `start` (a start time the kernel gave) is not the entry's process's."""
    return (
        start.__class__ is int
        and entry.start_ns is not None
        and abs(start - entry.start_ns) > _START_SLACK_NS
    )


def _started_after(parent: ProcEntry, child: ProcEntry) -> bool:
    """Whether `parent` started after `child`: a later process with the parent's pid."""
    return (
        parent.start_ns is not None
        and child.start_ns is not None
        and parent.start_ns > child.start_ns + _PARENT_SLACK_NS
    )


def _born_after_gone(child: ProcEntry, parent: ProcEntry) -> bool:
    """Whether `child` started after `parent` was gone (exited, or its pid taken): not its child
    (an earlier process with the parent's pid)."""
    return (
        parent.gone_by_ns is not None
        and child.start_ns is not None
        and child.start_ns > parent.gone_by_ns + _PARENT_SLACK_NS
    )


def _known_prefix(values: list[Any]) -> list[Any]:
    """The values up to the first unknown one (lists never hold None)."""
    for i, v in enumerate(values):
        if v is None:
            return values[:i]
    return values


class ProcessTable:
    """Processes by pid, fed by raw events and /proc; see the module's docstring."""

    def __init__(
        self,
        *,
        max_entries: int = 65536,
        grace_s: float = 30.0,
        depth: int = 8,
        read_proc: bool = True,
        clock: Callable[[], float] = time.monotonic,
        max_cached: int = 4096,
    ) -> None:
        self.max_entries = max_entries
        self.grace_s = grace_s
        self.depth = depth
        self.read_proc = read_proc
        self.clock = clock
        #: pid -> the entry of the process that has it now, least recently seen first
        self._entries: OrderedDict[int, ProcEntry] = OrderedDict()
        #: id(entry) -> exited entries (displaced ones included), in order of exit
        self._exited: OrderedDict[int, ProcEntry] = OrderedDict()
        #: entries no longer in _entries (their pid was reused), held for their children
        self._displaced = 0
        self._boot_ns = procfs.boot_epoch_ns()
        #: inserted, exited, expired, evicted_exited, evicted_live, displaced, proc_reads, reused
        self.stats: Counter[str] = Counter()
        #: bumped by every change that can alter the fields or ancestry of entries other than the
        #: changed one (module docstring): the entries' cached fields are valid for one generation
        self.generation = 0
        self.max_cached = max_cached
        self._cached: OrderedDict[int, ProcEntry] = OrderedDict()

    def __len__(self) -> int:
        """The entries held: one per pid known, and the displaced ancestors kept for their children."""
        return len(self._entries) + self._displaced

    @property
    def displaced(self) -> int:
        """Entries held only for their children (their pid now names another process)."""
        return self._displaced

    def __contains__(self, pid: object) -> bool:
        return pid in self._entries

    def get(self, pid: int) -> ProcEntry | None:
        """The entry of `pid`, if the table has one."""
        return self._entries.get(pid)

    # -- feeding ---------------------------------------------------------------------------

    def scan(self, pids: Iterable[int] | None = None) -> int:
        """Add the processes now in /proc (all of them, or `pids`); the number added."""
        if pids is None:
            try:
                pids = [int(p) for p in os.listdir(procfs.PROC) if p.isdigit()]
            except OSError:
                return 0
        n = 0
        for pid in pids:
            if self._from_proc(pid) is not None:
                n += 1
        return n

    def _from_proc(self, pid: int) -> ProcEntry | None:
        if pid <= 0:
            return None
        self.stats["proc_reads"] += 1
        info = procfs.snapshot(pid, self._boot_ns)
        if info.start_ns is None:
            return None
        e = ProcEntry(
            pid=pid,
            start_ns=info.start_ns,
            ppid=info.ppid,
            name=info.comm,
            exepath=info.exe or None,
            cwd=None if info.cwd is None else procfs.dir_path(info.cwd),
            uid=info.uid,
            gid=info.gid,
            loginuid=info.loginuid,
            tty=info.tty,
            sid=read_session(pid),
            vpid=info.vpid,
            cgroup_path=info.cgroup_path,
            mntns=info.mntns,
        )
        if info.args:
            e.exe = info.args[0]
            e.args = " ".join(info.args[1:])
        elif info.args == [] and (pid == 2 or info.ppid == 2):
            e.args = ""  # a kernel thread: no arguments (a zombie's are unknown)
        self._insert(e)
        return e

    def observe(self, ev: dict[str, Any]) -> ProcEntry | None:
        """Update the table from one raw event; the entry of the event's process."""
        pid = ev.get("proc.pid")
        if not isinstance(pid, int):
            return None
        etype = ev.get("evt.type")
        if etype in EXEC_TYPES:
            return self._on_exec(pid, ev)
        if etype in FORK_TYPES:
            return self._on_fork(pid, ev)
        entry = self._entries.get(pid)
        if entry is not None and _other_process(entry, ev):
            # a later process with the pid, whose fork (and the old one's exit) was lost
            self.stats["reused"] += 1
            entry = None
        if entry is None:
            entry = self._from_proc(pid) if self.read_proc else None
            if entry is None:
                entry = ProcEntry(pid=pid, start_ns=ev.get("_start_ns"))
                self._apply(entry, ev)
                self._insert(entry)
        else:
            self._entries.move_to_end(pid)
            self._fill_missing(entry, ev)
        if etype in EXIT_TYPES:
            tid = ev.get("thread.tid")
            if tid is None or tid == pid:
                self._mark_exited(entry)
                t = ev.get("evt.time")
                if t.__class__ is int:
                    entry.gone_by_ns = t
        return entry

    def _on_exec(self, pid: int, ev: dict[str, Any]) -> ProcEntry | None:
        res = ev.get("evt.rawres")
        if isinstance(res, int) and res < 0:
            return self._entries.get(pid)  # a failed exec changes nothing
        entry = self._entries.get(pid)
        start = ev.get("_start_ns")
        if entry is not None and (entry.exited_at is not None or _other_process(entry, ev)):
            self.stats["reused"] += 1
            entry = None
        if entry is None:
            entry = ProcEntry(pid=pid, start_ns=start if isinstance(start, int) else None)
            self._apply(entry, ev)
            if self.read_proc and (entry.ppid is None or entry.sid is None or entry.start_ns is None):
                self._complete_from_proc(entry)
            self._insert(entry)
            return entry
        self._entries.move_to_end(pid)
        self._changed(entry)
        # the new program: what the previous image said about itself is gone, and so is what it
        # may have changed between its fork and this exec (a runtime's `exec` joins the container's
        # namespaces and cgroup and changes directory, then execs): what the exec event does not
        # say is unknown, never the old image's
        entry.name = entry.exepath = entry.exe = entry.args = entry.cmdline = entry.cwd = None
        entry.cgroup_path = entry.mntns = None
        entry.exe_upper = None
        entry.container = None
        entry.drift_checked = False
        old_ppid = entry.ppid
        self._apply(entry, ev)
        if old_ppid is not None and entry.ppid != old_ppid:
            # reparented because the parent exited before /proc was read: keep the real ancestry
            old_parent = entry.counted_parent
            if old_parent is None or old_parent.pid != old_ppid:
                old_parent = self._entries.get(old_ppid)
            if old_parent is not None and old_parent.exited_at is not None:
                entry.ppid = old_ppid
        if entry.name is None and entry.exepath:
            entry.name = os.path.basename(entry.exepath)[:15]
        self._link_parent(entry)
        return entry

    def _complete_from_proc(self, entry: ProcEntry) -> None:
        st = procfs.read_stat(entry.pid)
        if st is None:
            return
        if entry.ppid is None:
            entry.ppid = st["ppid"]
        if entry.tty is None:
            entry.tty = st["tty"]
        if entry.start_ns is None:
            entry.start_ns = self._boot_ns + st["starttime_ticks"] * (
                1_000_000_000 // (os.sysconf("SC_CLK_TCK") or 100)
            )
        if entry.sid is None:
            entry.sid = read_session(entry.pid)

    def _on_fork(self, pid: int, ev: dict[str, Any]) -> ProcEntry | None:
        res = ev.get("evt.rawres")
        flags = ev.get("evt.arg.flags")
        if isinstance(flags, str) and "CLONE_THREAD" in flags:
            return self._entries.get(pid)  # a new thread, not a process
        if isinstance(res, int) and res < 0:
            return self._entries.get(pid)
        parent_pid: int | None
        if isinstance(res, int) and res > 0:
            # the parent's side of the call: the child is `res`
            parent_pid, child_pid, child_side = pid, res, False
        else:
            ppid = ev.get("proc.ppid")
            parent_pid, child_pid, child_side = (ppid if isinstance(ppid, int) else None), pid, True
        start = ev.get("_start_ns")
        if not isinstance(start, int) or not child_side:
            t = ev.get("evt.time")
            start = t if isinstance(t, int) else None
        child = ProcEntry(pid=child_pid, ppid=parent_pid, start_ns=start)
        parent = self._forking(parent_pid, child, ev.get("_pstart_ns"))
        if parent is not None:
            # the child runs its parent's program, in its cgroup and namespaces (and so its container)
            for attr in _INHERITED:
                setattr(child, attr, getattr(parent, attr))
        if child_side:
            self._apply(child, ev)
        # a new process: no other entry's fields change (no bump of the generation)
        self._insert(child, fresh=True)
        return child if child_side else parent

    def _forking(self, pid: int | None, child: ProcEntry, pstart: Any = None) -> ProcEntry | None:
        """The entry of process `pid`, which forks `child` now: the pid's entry unless its process
        was gone before the child was born, or started at another time than the fork says the parent
        did (`pstart`: the exit and the fork of the pid's next process were lost): then read from
        /proc, as for a pid not in the table."""
        if pid is None:
            return None
        parent = self._entries.get(pid)
        stale = parent is not None and _other_start(parent, pstart)
        if parent is not None and (stale or _born_after_gone(child, parent)):
            parent = None
        if parent is None and self.read_proc:
            parent = self._from_proc(pid)
        if parent is None and stale:
            # the pid's process now, known only by its start: it takes the pid from the stale entry
            parent = ProcEntry(pid=pid, start_ns=pstart)
            self._insert(parent)
        return parent

    def _apply(self, entry: ProcEntry, ev: dict[str, Any]) -> None:
        for key, attr in _EVENT_ATTRS:
            v = ev.get(key)
            if v is not None:
                setattr(entry, attr, v)

    def _fill_missing(self, entry: ProcEntry, ev: dict[str, Any]) -> None:
        changed = False
        for key, attr in _EVENT_ATTRS:
            if getattr(entry, attr) is None:
                v = ev.get(key)
                if v is not None:
                    setattr(entry, attr, v)
                    changed = True
        if changed:
            self._changed(entry)

    def _changed(self, entry: ProcEntry) -> None:
        """`entry`'s own facts changed: its cached fields go, and every entry's when others may show
        them (it has children, or it leads a session)."""
        if entry.children or entry.sid == entry.pid:
            self.generation += 1
        elif entry.fields_cache is not None:
            entry.fields_cache = None
            self._cached.pop(id(entry), None)

    # -- bookkeeping -----------------------------------------------------------------------

    def _insert(self, entry: ProcEntry, *, fresh: bool = False) -> None:
        """Make `entry` the one of its pid. A `fresh` one is a new process (a fork child): no other
        entry can name it yet; any other may be the parent or session leader others missed."""
        old = self._entries.get(entry.pid)
        if old is not None and old is not entry:
            self._drop(old, entry)
        self._entries[entry.pid] = entry
        if not fresh:
            self.generation += 1
        self.stats["inserted"] += 1
        self._link_parent(entry)
        self._housekeep()

    def _drop(self, old: ProcEntry, new: ProcEntry) -> None:
        """`old`'s pid now names `new`: remove it, or hold it for its children."""
        if not old.children:
            self._remove(old)
            return
        del self._entries[old.pid]
        self._mark_exited(old)  # its pid was reused: it is gone, whether its exit was seen or not
        if old.gone_by_ns is None:
            old.gone_by_ns = new.start_ns
        old.displaced = True
        self._displaced += 1
        self.stats["displaced"] += 1

    def _link_parent(self, entry: ProcEntry) -> None:
        """Link `entry` to its parent's entry (kept if it is still linked to that process)."""
        ppid = entry.ppid
        linked = entry.counted_parent
        if linked is not None and linked.pid == ppid and not _born_after_gone(entry, linked):
            return
        parent = self._entries.get(ppid) if ppid is not None else None
        if parent is not None and (
            parent is entry or _started_after(parent, entry) or _born_after_gone(entry, parent)
        ):
            parent = None
        self._link(entry, parent)

    def _link(self, entry: ProcEntry, parent: ProcEntry | None) -> None:
        old = entry.counted_parent
        if parent is old:
            return
        if old is not None:
            old.children -= 1
        entry.counted_parent = parent
        if parent is not None:
            parent.children += 1

    def _mark_exited(self, entry: ProcEntry) -> None:
        if entry.exited_at is None:
            entry.exited_at = self.clock()
            self._exited[id(entry)] = entry
            self.stats["exited"] += 1

    def _remove(self, entry: ProcEntry) -> None:
        """Forget `entry` (a leaf: no held entry names it as its parent)."""
        if self._cached.pop(id(entry), None) is not None:
            entry.fields_cache = None
        if self._entries.get(entry.pid) is entry:
            del self._entries[entry.pid]
        self._exited.pop(id(entry), None)
        if entry.displaced:
            entry.displaced = False
            self._displaced -= 1
        self._link(entry, None)

    def _housekeep(self) -> None:
        now = self.clock()
        exited = self._exited
        # expire: exited more than grace_s ago and no child entry left (a few per call)
        for _ in range(8):
            if not exited:
                break
            key, e = next(iter(exited.items()))
            if e.exited_at is None or now - e.exited_at < self.grace_s:
                break
            if e.children > 0:
                exited.move_to_end(key)
                continue
            self._remove(e)
            self.stats["expired"] += 1
        if len(self) > self.max_entries:
            self._evict()

    def _evict(self) -> None:
        """Remove leaves until the table holds max_entries: exited ones first (oldest exit first),
        then live ones (least recently seen first)."""
        while len(self) > self.max_entries:
            kind = "evicted_exited"
            victim = self._leaf(self._exited, live=False)
            if victim is None:
                kind = "evicted_live"
                victim = self._leaf(self._entries, live=True)
            if victim is None:  # cannot be: the entries held form a forest, which has leaves
                self.stats["evict_failed"] += 1
                return
            self.stats[kind] += 1
            self._remove(victim)

    @staticmethod
    def _leaf(entries: OrderedDict[int, ProcEntry], *, live: bool) -> ProcEntry | None:
        """The first entry of `entries` with no children (alive, with `live`), or None; the ones
        passed over go to the end (each is looked at once per round)."""
        for _ in range(len(entries)):
            key, e = next(iter(entries.items()))
            if e.children == 0 and (not live or e.exited_at is None):
                return e
            entries.move_to_end(key)
        return None

    def expire(self) -> None:
        """Drop every exited entry past its grace period that has no children left."""
        now = self.clock()
        for e in list(self._exited.values()):
            if e.exited_at is not None and now - e.exited_at >= self.grace_s and e.children == 0:
                self._remove(e)
                self.stats["expired"] += 1

    # -- reading ---------------------------------------------------------------------------

    def parent_of(self, entry: ProcEntry) -> ProcEntry | None:
        """The entry's parent, if known: the entry linked to it (held even after the parent's pid
        was reused), else the pid's entry unless it started after its "child" (a reused pid)."""
        ppid = entry.ppid
        if ppid is None or ppid <= 0 or ppid == entry.pid:
            return None
        parent = self._entries.get(ppid)
        linked = entry.counted_parent
        if (
            linked is not None
            and linked.pid == ppid
            and (linked is parent or linked.displaced)
            and not _born_after_gone(entry, linked)
        ):
            return linked
        if parent is None and self.read_proc and entry.exited_at is None:
            parent = self._from_proc(ppid)
        if parent is None or _started_after(parent, entry) or _born_after_gone(entry, parent):
            return None
        if parent is not linked and self._held(entry) and self._held(parent):
            self._link(entry, parent)  # found now: held for this entry from now on
            self._changed(entry)  # and its descendants' ancestry changed
        return parent

    def _held(self, entry: ProcEntry) -> bool:
        """Whether the table holds `entry` (not evicted while reading /proc, say)."""
        return entry.displaced or self._entries.get(entry.pid) is entry

    def ancestors(self, entry: ProcEntry, depth: int | None = None) -> list[ProcEntry]:
        """Parent first, at most `depth` (default: the table's)."""
        out: list[ProcEntry] = []
        seen = {id(entry)}
        cur = entry
        for _ in range(self.depth if depth is None else depth):
            p = self.parent_of(cur)
            if p is None or id(p) in seen:
                break
            out.append(p)
            seen.add(id(p))
            cur = p
        return out

    def session_leader(self, entry: ProcEntry) -> ProcEntry | None:
        """The process whose pid is the session id, else the eldest ancestor in the same session."""
        sid = entry.sid
        if sid is None:
            return None
        if sid == entry.pid:
            return entry
        leader = self._entries.get(sid) if sid > 0 else None
        if leader is not None and leader.sid == sid:
            return leader
        eldest = None
        for a in self.ancestors(entry, 64):
            if a.sid != sid:
                break
            eldest = a
        return eldest

    def enrich(self, ev: dict[str, Any], entry: ProcEntry | None = None) -> dict[str, Any]:
        """Fill the process fields `ev` lacks from the table (in place; returns `ev`)."""
        if entry is None:
            pid = ev.get("proc.pid")
            entry = self._entries.get(pid) if isinstance(pid, int) else None
            if entry is None:
                return ev
        if "proc.aname" in ev or "proc.aname[1]" in ev or "proc.pname" in ev:
            # the backend gave the ancestry itself: fill the rest only
            for k, v in self._fields(entry, ancestry=False).items():
                ev.setdefault(k, v)
            return ev
        for k, v in self.fields(entry).items():
            ev.setdefault(k, v)
        return ev

    def fields(self, entry: ProcEntry) -> dict[str, Any]:
        """The proc.* fields of an event of `entry`'s process, ancestry included (cached for the
        table's generation: shared, never to be changed by the caller)."""
        cached = entry.fields_cache
        if cached is not None and cached[0] == self.generation:
            return cached[1]
        out = self._fields(entry, ancestry=True)
        # reading /proc for a missing parent may have added entries: cache for the generation now
        entry.fields_cache = (self.generation, out)
        # at most max_cached entries hold a cache (1-3 KB each): the least recently built drop theirs
        cached_by = self._cached
        cached_by[id(entry)] = entry
        cached_by.move_to_end(id(entry))
        if len(cached_by) > self.max_cached:
            _, old = cached_by.popitem(last=False)
            old.fields_cache = None
        return out

    def _fields(self, entry: ProcEntry, *, ancestry: bool) -> dict[str, Any]:
        ev: dict[str, Any] = {}
        for attr, key in _FILL:
            v = getattr(entry, attr)
            if v is not None:
                ev[key] = v
        c = entry.full_cmdline()
        if c is not None:
            ev["proc.cmdline"] = c
        m = entry.is_exe_from_memfd
        if m is not None:
            ev["proc.is_exe_from_memfd"] = m
        if entry.sid is not None:
            ev["proc.is_sid_leader"] = entry.sid == entry.pid
        leader = self.session_leader(entry)
        if leader is not None and leader.name is not None:
            ev["proc.sname"] = leader.name
        if ancestry:
            anc = self.ancestors(entry)
            if anc:
                _ancestry_fields(ev, anc)
        return ev


def _ancestry_fields(ev: dict[str, Any], anc: list[ProcEntry]) -> None:
    """The parent's and every ancestor's fields (proc.pname, proc.aname[i], ...), nearest first."""
    names = [a.name for a in anc]
    pids = [a.pid for a in anc]
    paths = [a.exepath for a in anc]
    cmds = [a.full_cmdline() for a in anc]
    p = anc[0]
    if p.name is not None:
        ev["proc.pname"] = p.name
    if p.exepath is not None:
        ev["proc.pexepath"] = p.exepath
    if p.exe is not None:
        ev["proc.pexe"] = p.exe
    if cmds[0] is not None:
        ev["proc.pcmdline"] = cmds[0]
    ev.setdefault("proc.ppid", p.pid)
    ev["proc.apid"] = pids
    for key, values in (("proc.aname", names), ("proc.aexepath", paths), ("proc.acmdline", cmds)):
        known = _known_prefix(values)
        if known:
            ev[key] = known
    for i, (n, pid, path) in enumerate(zip(names, pids, paths, strict=True), start=1):
        if n is not None:
            ev[f"proc.aname[{i}]"] = n
        ev[f"proc.apid[{i}]"] = pid
        if path is not None:
            ev[f"proc.aexepath[{i}]"] = path
