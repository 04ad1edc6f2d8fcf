"""Exec and open enforcement per container: fanotify permission events answered by a policy.

:class:`FileGuard` holds one fanotify permission group (:class:`~stockade.enforce.fanotify_perm.PermGroup`)
per protected container and one thread that answers them all (epoll over the groups). Each
``execve`` (``FAN_OPEN_EXEC_PERM``) and ``open`` (``FAN_OPEN_PERM``) of a regular file inside the
container waits until the thread has asked the container's :data:`FileDecider` ``(kind, path)``:

* **allow**: ``FAN_ALLOW``, and an *ignore mark* on the file's inode for that event (the kernel's
  allow cache: the next open of that inode does not wake the thread, and costs within a few per
  cent of no enforcement instead of a round trip to this thread: benchmarks/enforce_latency.py,
  docs/performance.md). The mark has no ``FAN_MARK_IGNORED_SURV_MODIFY``, so a write to
  the file clears it and the modified file is decided again. An allowed exec caches both events of
  its inode (the kernel asks ``FAN_OPEN_EXEC_PERM`` then ``FAN_OPEN_PERM`` for one execve, and the
  second cannot be told from a plain open of the binary once the first is cached): a binary the
  policy lets the container run may then also be read without a further question.
* **block**: ``FAN_DENY`` (the syscall fails with EPERM) and a :class:`Denial` with ``blocked=True``
  to the deny sink; **audit**: ``FAN_ALLOW`` and a ``Denial(blocked=False)``. Neither is cached.
  ``audit_only`` turns every block into an audit (Monitor mode).

Where the marks go (measured on this kernel, 6.18, podman with overlay roots): a ``FAN_MARK_MOUNT``
on ``/proc/<pid>/root`` marks the container's own root mount, and only it: the container's opens
are seen, the host's are not, not even through the host's mount of the same overlay (the "merged"
directory). A mount mark on that host path sees the host's accesses and nothing of the container;
a ``FAN_MARK_FILESYSTEM`` on the overlay sees both (it would stop podman's own reads of the
container's ``/etc/passwd``) and misses the container's other mounts. So each of the container's
mounts that holds files (``/``, bind mounts such as ``/etc/hosts`` and volumes, ``/dev``,
``/dev/shm``, tmpfs mounts; not proc, sysfs, cgroup, devpts, mqueue nor anything under ``/proc`` or
``/sys``) gets a mount mark, through an ``O_PATH`` fd opened component by component from the
container's root without following symlinks and checked against the mount id of
``/proc/<pid>/mountinfo`` (a container cannot redirect a mark onto a host mount). Mounts made in
the container later are marked at the next :meth:`FileGuard.protect` call. A host process that
opens a container's file through ``/proc/<pid>/root`` goes through the container's mount and is
decided too.

Paths: ``readlink(/proc/self/fd/N)`` of the event's fd is the path from the root of the mount
namespace the file was opened in, which for a container's mount is the path *as the container
sees it* (``/etc/passwd``, ``/etc/hosts`` on its bind mount, ``/dev/shm/x``): measured, no
mountpoint needs prefixing. The kernel decides on the file it opens: ``execve("/bin/sh")`` in a
busybox image opens ``/bin/busybox`` (the symlink is resolved first), so the decider sees
``("exec", "/bin/busybox")``.

The ``ld.so`` bypass: ``/lib64/ld-linux-x86-64.so.2 /tmp/prog`` runs ``/tmp/prog`` with only an
*open* of it (the kernel execs ld.so, an allowed program of every dynamically linked workload). A
``FAN_OPEN_PERM`` of a regular file that looks executable (ELF magic or any x bit), opened by a
process whose executable is a dynamic loader (``ld-*.so*``, ``ld.so*``, or an inode decided as
such a loader before, so a renamed copy keeps being one), is decided as ``exec`` when it is the
first file that process maps (``/proc/<pid>/maps`` has nothing but the loader yet): the program.
Later opens (its libraries) are ``open``. And an allowed open of an executable-looking file is
cached only when the decider would also allow its exec, so a cached read never lets ld.so run it.

Failure direction: open. fanotify permission events cannot fail closed: when the group's fd
closes (the agent exits or crashes) the kernel lets every waiting event through and removes the
marks. A decider that raises lets the operation through and counts an error (logged once a minute
per message); every event is answered in a ``finally``; if the thread dies, it closes every group.
A container whose init process exits is released (its group closed) by the thread itself.

What fanotify cannot tell (limits): read from write (one ``open`` kind for both), the open's flags,
the thread (only the process id), mmap'ed execution of libraries (``LD_PRELOAD`` is an open), a
script run by an allowed interpreter (``sh script``), an exec from a ``memfd`` (not on any of the
container's mounts; fanotify refuses marks on such internal filesystems). The allow cache is per
inode: a hard link or a rename of an allowed file keeps its cached allow under its new name, and
a change through a shared writable ``mmap`` does not clear it (only ``write``/``truncate`` do).
The deny sink and the decider run on the guard's thread and must not open files inside a
protected container (the thread would wait for itself).
"""

from __future__ import annotations

import logging
import os
import select
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Final

from stockade.enforce.fanotify_perm import FAN_OPEN_EXEC_PERM, FAN_OPEN_PERM, PERM_MASK, PermGroup
from stockade.enforce.interface import (
    Denial,
    DenialSink,
    EnforceError,
    FileDecider,
    FileKind,
    Verdict,
)
from stockade.model.errorlog import ErrorLog
from stockade.sensor.procfs import read_exe, read_stat

__all__ = ["SKIP_FSTYPES", "FileGuard", "FileGuardStats", "Mount", "container_mounts", "is_loader_name"]

log = logging.getLogger(__name__)

#: mounts that hold no files a policy decides on (or no regular files at all)
SKIP_FSTYPES: Final = frozenset(
    {
        "proc",
        "sysfs",
        "cgroup",
        "cgroup2",
        "devpts",
        "mqueue",
        "debugfs",
        "tracefs",
        "securityfs",
        "bpf",
        "binfmt_misc",
        "fusectl",
        "configfs",
        "pstore",
        "nsfs",
        "autofs",
    }
)
_ELF_MAGIC: Final = b"\x7fELF"
_DELETED: Final = " (deleted)"
#: execs allowed without a cache mark, waiting for their own FAN_OPEN_PERM (bounded)
_MAX_PENDING: Final = 4096
#: event batches read from one group before the others get their turn
_READS_PER_TURN: Final = 16


@dataclass(slots=True)
class FileGuardStats:
    """What the guard did since it was made (for ``stockade status`` and metrics)."""

    #: permission events read
    events: int = 0
    allowed: int = 0
    blocked: int = 0
    #: let through with a Denial(blocked=False): an audit verdict, or a block in audit_only mode
    audited: int = 0
    #: ignore marks added (allows the kernel now answers alone)
    cache_marks: int = 0
    #: problems (a decider or deny sink that raised, unreadable events): each one let through
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters by name."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Mount:
    """One mount of a container (from ``/proc/<pid>/mountinfo``): its id, where it is, its type."""

    mount_id: int
    mountpoint: str
    fstype: str


def _unescape(field: str) -> str:
    r"""mountinfo's octal escapes (``\040`` for a space, ...)."""
    if "\\" not in field:
        return field
    return field.encode().decode("unicode_escape").encode("latin-1").decode("utf-8", "surrogateescape")


def container_mounts(pid: int) -> list[Mount]:
    """The mounts of `pid`'s mount namespace that hold files to decide on, parents first."""
    try:
        with open(f"/proc/{pid}/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise EnforceError(f"fileguard: cannot read the mounts of pid {pid}: {e.strerror}") from e
    out: list[Mount] = []
    for line in lines:
        pre, sep, post = line.partition(" - ")
        parts = pre.split(" ")
        if not sep or len(parts) < 5:
            continue
        fstype = post.split(" ", 1)[0]
        point = _unescape(parts[4])
        if fstype in SKIP_FSTYPES or point.startswith(("/proc/", "/sys/")) or point in ("/proc", "/sys"):
            continue
        out.append(Mount(int(parts[0]), point, fstype))
    return out


def is_loader_name(name: str) -> bool:
    """Whether a file name is a dynamic loader's (``ld-linux-x86-64.so.2``, ``ld-2.31.so``,
    ``ld-musl-x86_64.so.1``, ``ld.so``)."""
    return (name.startswith("ld-") and ".so" in name) or name.startswith("ld.so")


def _mnt_id(fd: int) -> int | None:
    try:
        with open(f"/proc/self/fdinfo/{fd}", encoding="ascii") as f:
            for line in f:
                if line.startswith("mnt_id:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _open_mount(root_fd: int, mount: Mount) -> int | None:
    """An O_PATH fd of `mount`'s root, reached from the container's root without following a
    symlink; None when the path does not lead to that mount (over-mounted, moved, a symlink)."""
    comps = [c for c in mount.mountpoint.split("/") if c]
    if any(c in (".", "..") for c in comps):
        return None
    cur = os.dup(root_fd)
    try:
        for c in comps:
            nxt = os.open(c, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=cur)
            os.close(cur)
            cur = nxt
    except OSError:
        os.close(cur)
        return None
    if _mnt_id(cur) != mount.mount_id:
        os.close(cur)
        return None
    return cur


def _strip_deleted(path: str) -> str:
    return path[: -len(_DELETED)] if path.endswith(_DELETED) else path


def _exec_like(efd: int, st: os.stat_result) -> bool:
    """A regular file with any x bit or an ELF header."""
    if not stat.S_ISREG(st.st_mode):
        return False
    if st.st_mode & 0o111:
        return True
    try:
        return os.pread(efd, 4, 0) == _ELF_MAGIC
    except OSError:
        return False


def _maps_other_file(pid: int, exe: str) -> bool:
    """Whether `pid` maps a file other than its executable `exe` (a loader's program is mapped)."""
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                parts = line.split(None, 5)
                if (
                    len(parts) == 6
                    and parts[5].startswith("/")
                    and _strip_deleted(parts[5].rstrip("\n")) != exe
                ):
                    return True
    except OSError:
        return False
    return False


@dataclass(slots=True)
class _Protected:
    container: str
    pid: int
    group: PermGroup
    pidfd: int
    decider: FileDecider
    audit_only: bool
    #: the mounts marked: mount id -> its mount point in the container
    mounts: dict[int, str]


class FileGuard:
    """Exec and open enforcement for containers (see the module docstring).

    `deny_sink` receives each :class:`Denial` (on the guard's thread); `clock` stamps them (ns);
    `allow_cache=False` adds no ignore marks (every open is asked: for measurements)."""

    def __init__(
        self, deny_sink: DenialSink, *, clock: Callable[[], int] = time.time_ns, allow_cache: bool = True
    ) -> None:
        self._sink = deny_sink
        self._clock = clock
        self.allow_cache = allow_cache
        self.stats = FileGuardStats()
        self.errors = ErrorLog("fileguard", logger=__name__)
        self._lock = threading.RLock()
        self._by_container: dict[str, _Protected] = {}
        #: group fds and pidfds -> their container
        self._by_fd: dict[int, _Protected] = {}
        #: (pid, st_dev, st_ino) of execs allowed without a cache mark: their own FAN_OPEN_PERM follows
        self._execing: dict[tuple[int, int, int], None] = {}
        #: (st_dev, st_ino) of files decided as a dynamic loader's exec
        self._loaders: set[tuple[int, int]] = set()
        self._self_pid = os.getpid()
        self._epoll: select.epoll | None = None
        self._wake = -1
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread that answers the permission events (safe twice)."""
        with self._lock:
            if self._thread is not None:
                return
            self._stopping.clear()
            self._epoll = select.epoll()
            self._wake = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
            self._epoll.register(self._wake, select.EPOLLIN)
            for fd in self._by_fd:
                self._epoll.register(fd, select.EPOLLIN)
            self._thread = threading.Thread(target=self._run, name="stockade-fileguard", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Release every container (the kernel lets waiting events through) and end the thread."""
        with self._lock:
            for p in list(self._by_container.values()):
                self._drop(p)
            thread = self._thread
            self._stopping.set()
            if self._wake >= 0:
                os.eventfd_write(self._wake, 1)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)
        with self._lock:
            self._thread = None
            if self._epoll is not None:
                self._epoll.close()
                self._epoll = None
            if self._wake >= 0:
                os.close(self._wake)
                self._wake = -1

    # -- containers ---------------------------------------------------------------------------------

    def protect(self, container: str, pid: int, decider: FileDecider, *, audit_only: bool = False) -> None:
        """Decide every exec and open of `container` (whose process `pid` shows its mounts) with
        `decider`. Again for a protected container: the new decider replaces the old one, the allow
        cache is emptied and mounts made since are marked. Raises :class:`EnforceError` when the
        container's mounts cannot be marked."""
        self.start()
        with self._lock:
            cur = self._by_container.get(container)
            if cur is not None and cur.pid == pid:
                cur.decider, cur.audit_only = decider, audit_only
                cur.group.flush_ignores()
                self._execing.clear()
                self._mark(cur)
                return
        prot = self._setup(container, pid, decider, audit_only)
        with self._lock:
            old = self._by_container.get(container)
            if old is not None:
                self._drop(old)
            self._by_container[container] = prot
            for fd in (prot.group.fd, prot.pidfd):
                self._by_fd[fd] = prot
                if self._epoll is not None:
                    self._epoll.register(fd, select.EPOLLIN)

    def release(self, container: str) -> None:
        """Stop deciding for `container` (nothing happens when it is not protected)."""
        with self._lock:
            p = self._by_container.get(container)
            if p is not None:
                self._drop(p)

    def protected(self) -> dict[str, int]:
        """The protected containers and the pid each was protected through."""
        with self._lock:
            return {c: p.pid for c, p in self._by_container.items()}

    def marked_mounts(self, container: str) -> list[str]:
        """The container's mount points whose opens and execs are decided ([] when not protected)."""
        with self._lock:
            p = self._by_container.get(container)
            return sorted(p.mounts.values()) if p is not None else []

    def _setup(self, container: str, pid: int, decider: FileDecider, audit_only: bool) -> _Protected:
        try:
            pidfd = os.pidfd_open(pid)
        except OSError as e:
            raise EnforceError(f"fileguard: container {container[:12]}: pid {pid}: {e.strerror}") from e
        try:
            group = PermGroup()
        except OSError as e:
            os.close(pidfd)
            raise EnforceError(f"fileguard: {e.strerror or e}") from e
        prot = _Protected(container, pid, group, pidfd, decider, audit_only, {})
        try:
            self._mark(prot)
        except BaseException:
            group.close()
            os.close(pidfd)
            raise
        return prot

    def _mark(self, p: _Protected) -> None:
        """Mark each of the container's mounts that is not marked yet (the root one or fail)."""
        try:
            root_fd = os.open(f"/proc/{p.pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise EnforceError(f"fileguard: container {p.container[:12]}: no root: {e.strerror}") from e
        try:
            for m in container_mounts(p.pid):
                if m.mount_id in p.mounts:
                    continue
                fd = _open_mount(root_fd, m)
                if fd is None:
                    log.debug(
                        "fileguard: %s: %s is not reachable; not marked", p.container[:12], m.mountpoint
                    )
                    continue
                try:
                    p.group.mark_mount(fd)
                except OSError as e:
                    raise EnforceError(f"fileguard: container {p.container[:12]}: {m.mountpoint}: {e}") from e
                finally:
                    os.close(fd)
                p.mounts[m.mount_id] = m.mountpoint
        finally:
            os.close(root_fd)
        if "/" not in p.mounts.values():
            raise EnforceError(f"fileguard: container {p.container[:12]}: its root mount could not be marked")

    def _drop(self, p: _Protected) -> None:
        """Forget a container and close its group (the kernel lets its waiting events through)."""
        self._by_container.pop(p.container, None)
        for fd in (p.group.fd, p.pidfd):
            self._by_fd.pop(fd, None)
            if self._epoll is not None and fd >= 0:
                try:
                    self._epoll.unregister(fd)
                except OSError:
                    pass
        p.group.close()
        if p.pidfd >= 0:
            os.close(p.pidfd)
            p.pidfd = -1

    # -- the thread ---------------------------------------------------------------------------------

    def _run(self) -> None:
        ep = self._epoll
        assert ep is not None
        try:
            while not self._stopping.is_set():
                try:
                    ready = ep.poll(1.0)
                except InterruptedError:
                    continue
                for fd, _ in ready:
                    self._ready(fd)
        except BaseException as e:
            self._error(f"the guard's thread stopped: {e!r}")
            raise
        finally:
            with self._lock:  # fail open: nothing may wait for a thread that is gone
                for p in list(self._by_container.values()):
                    self._drop(p)

    def _ready(self, fd: int) -> None:
        if fd == self._wake:
            try:
                os.eventfd_read(fd)
            except BlockingIOError:
                pass
            return
        with self._lock:
            p = self._by_fd.get(fd)
            if p is None:
                return
            if fd == p.pidfd:
                log.info("fileguard: container %s exited; released", p.container[:12])
                self._drop(p)
                return
            try:
                self._drain(p)
            except OSError as e:
                self._error(f"container {p.container[:12]}: reading its events failed: {e}; released")
                self._drop(p)

    def _drain(self, p: _Protected) -> None:
        for _ in range(_READS_PER_TURN):
            events = p.group.read()
            if not events:
                return
            for mask, efd, pid in events:
                self._one(p, mask, efd, pid)

    def _one(self, p: _Protected, mask: int, efd: int, pid: int) -> None:
        """Decide one event and answer it, whatever happens."""
        self.stats.events += 1
        if efd < 0:
            self._error(f"container {p.container[:12]}: event without a file (mask {mask:#x})")
            return
        allow, denial = True, None
        try:
            allow, denial = self._decide(p, mask, efd, pid)
        except Exception as e:
            self._error(f"container {p.container[:12]}: deciding failed, let through: {e!r}")
        finally:
            try:
                p.group.respond(efd, allow)
            except OSError as e:
                self._error(f"container {p.container[:12]}: answering failed: {e}")
            os.close(efd)
        if denial is not None:
            try:
                self._sink(denial)
            except Exception as e:
                self._error(f"the deny sink raised: {e!r}")

    # -- deciding -------------------------------------------------------------------------------------

    def _decide(self, p: _Protected, mask: int, efd: int, pid: int) -> tuple[bool, Denial | None]:
        """(allow?, the Denial to report) for one event; ignore marks added on the way."""
        if pid == self._self_pid:
            self.stats.allowed += 1
            return True, None
        path = _strip_deleted(os.readlink(f"/proc/self/fd/{efd}"))
        st = os.fstat(efd)
        key = (pid, st.st_dev, st.st_ino)
        kind: FileKind
        if mask & FAN_OPEN_EXEC_PERM:
            kind, exec_like = "exec", True
        elif key in self._execing:
            # the FAN_OPEN_PERM of an exec allowed a moment ago (one execve asks both)
            del self._execing[key]
            self.stats.allowed += 1
            return True, None
        else:
            kind, exec_like = self._open_kind(pid, efd, st)
        if kind == "exec" and is_loader_name(os.path.basename(path)):
            self._loaders.add((st.st_dev, st.st_ino))
        verdict = p.decider(kind, path)
        if verdict.action == "allow":
            self.stats.allowed += 1
            self._allowed(p, mask, efd, key, kind, exec_like, path)
            return True, None
        blocked = verdict.action == "block" and not p.audit_only
        if blocked:
            self.stats.blocked += 1
        else:
            self.stats.audited += 1
            if mask & FAN_OPEN_EXEC_PERM:
                self._pending(key)
        return not blocked, self._denial(p, kind, path, pid, verdict, blocked)

    def _open_kind(self, pid: int, efd: int, st: os.stat_result) -> tuple[FileKind, bool]:
        """("exec" when a dynamic loader opens the program it is to run, else "open"; whether the
        file looks executable)."""
        if not _exec_like(efd, st):
            return "open", False
        exe = read_exe(pid)
        if exe is None or not self._is_loader(pid, exe):
            return "open", True
        return ("open" if _maps_other_file(pid, exe) else "exec"), True

    def _is_loader(self, pid: int, exe: str) -> bool:
        if is_loader_name(os.path.basename(exe)):
            return True
        if not self._loaders:
            return False
        try:
            st = os.stat(f"/proc/{pid}/exe")
        except OSError:
            return False
        return (st.st_dev, st.st_ino) in self._loaders

    def _allowed(
        self,
        p: _Protected,
        mask: int,
        efd: int,
        key: tuple[int, int, int],
        kind: FileKind,
        exec_like: bool,
        path: str,
    ) -> None:
        """Cache an allow in the kernel (see the module docstring for what is cached when)."""
        is_exec_event = bool(mask & FAN_OPEN_EXEC_PERM)
        if not self.allow_cache:
            if is_exec_event:
                self._pending(key)
            return
        if is_exec_event:
            cache = PERM_MASK
        elif kind == "exec" or not exec_like or p.decider("exec", path).action == "allow":
            cache = FAN_OPEN_PERM
        else:
            return  # an executable the container may read but not run: ld.so must be asked each time
        try:
            p.group.ignore(efd, cache)
        except OSError as e:
            self._error(f"container {p.container[:12]}: cannot cache {path}: {e}")
            if is_exec_event:
                self._pending(key)
            return
        self.stats.cache_marks += 1

    def _pending(self, key: tuple[int, int, int]) -> None:
        if len(self._execing) >= _MAX_PENDING:
            self._execing.clear()
        self._execing[key] = None

    def _denial(
        self, p: _Protected, kind: FileKind, path: str, pid: int, verdict: Verdict, blocked: bool
    ) -> Denial:
        st = read_stat(pid)
        return Denial(
            kind=kind,
            container=p.container,
            target=path,
            pid=pid,
            verdict=verdict,
            blocked=blocked,
            time_ns=self._clock(),
            comm=str(st["comm"]) if st else None,
            exe=read_exe(pid),
        )

    def _error(self, message: str) -> None:
        self.stats.errors += 1
        self.errors.report(message)
