"""File events from fanotify (opens, writes, create/delete/rename), without eBPF.

Two fanotify notification groups watch the configured paths:

* the *open* group (classic mode) reports ``FAN_OPEN``, ``FAN_OPEN_EXEC``, ``FAN_MODIFY`` and
  ``FAN_CLOSE_WRITE`` with an open file descriptor, whose ``/proc/self/fd/N`` link is the path;
* the *name* group (``FAN_REPORT_DFID_NAME | FAN_REPORT_FID``) reports ``FAN_CREATE``,
  ``FAN_DELETE`` and ``FAN_RENAME`` with the parent directory's file handle and the entry's name;
  the handle is resolved to a path with ``open_by_handle_at`` on an fd of the watched filesystem.

A watch is a path and a scope: ``tree`` (inode marks on the directory and every directory below it,
added as directories appear), ``mount`` (a mount mark for opens, a filesystem mark filtered to the
mount's paths for names: use it for a container's root filesystem) or ``filesystem`` (the whole
filesystem). Events of the sensor's own process are ignored.

Fanotify knows the pid of the process (no thread id, no open flags, no failed opens): an ``openat``
says ``evt.is_open_read`` for ``FAN_OPEN``, ``evt.is_open_write`` when the process modified the
file (``FAN_MODIFY``/``FAN_CLOSE_WRITE``, reported once per open) and ``evt.is_open_exec`` for
``FAN_OPEN_EXEC``. Identical events queued before they are read are merged by the kernel into one.

Loss: when the group's queue (16,384 events by default) is full the kernel drops events and queues
one ``FAN_Q_OVERFLOW``; ``stats.lost["fanotify_overflow"]`` counts those (a lower bound: each
means at least one event lost, the exact number is not reported).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import select
import stat
import struct
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from stockade.sensor.interface import Backend, BackendContext, BackendStats, Capabilities, Role, SensorError

if TYPE_CHECKING:
    from typing import Self

    from stockade.sensor.containers.info import ContainerInfo

__all__ = ["FanotifyBackend", "Watch"]

# fanotify_init flags
FAN_CLOEXEC = 0x1
FAN_NONBLOCK = 0x2
FAN_CLASS_NOTIF = 0x0
FAN_UNLIMITED_QUEUE = 0x10
FAN_REPORT_FID = 0x200
FAN_REPORT_DIR_FID = 0x400
FAN_REPORT_NAME = 0x800
FAN_REPORT_DFID_NAME = FAN_REPORT_DIR_FID | FAN_REPORT_NAME
# fanotify_mark flags
FAN_MARK_ADD = 0x1
FAN_MARK_REMOVE = 0x2
FAN_MARK_DONT_FOLLOW = 0x4
FAN_MARK_ONLYDIR = 0x8
FAN_MARK_MOUNT = 0x10
FAN_MARK_FILESYSTEM = 0x100
# event masks
FAN_ACCESS = 0x1
FAN_MODIFY = 0x2
FAN_CLOSE_WRITE = 0x8
FAN_OPEN = 0x20
FAN_MOVED_FROM = 0x40
FAN_MOVED_TO = 0x80
FAN_CREATE = 0x100
FAN_DELETE = 0x200
FAN_OPEN_EXEC = 0x1000
FAN_Q_OVERFLOW = 0x4000
FAN_RENAME = 0x10000000
FAN_EVENT_ON_CHILD = 0x08000000
FAN_ONDIR = 0x40000000
FAN_NOFD = -1
# info record types
INFO_FID = 1
INFO_DFID_NAME = 2
INFO_DFID = 3
INFO_OLD_DFID_NAME = 10
INFO_NEW_DFID_NAME = 12

AT_FDCWD = -100
O_PATH = 0o10000000

_META = struct.Struct("=IBBHQii")  # event_len, vers, reserved, metadata_len, mask, fd, pid
_INFO_HDR = struct.Struct("=BBH")
_HANDLE_HDR = struct.Struct("=Ii")

OPEN_MASK = FAN_OPEN | FAN_OPEN_EXEC | FAN_MODIFY | FAN_CLOSE_WRITE
NAME_MASK = FAN_CREATE | FAN_DELETE | FAN_RENAME | FAN_ONDIR

EVTTYPES = frozenset({"openat", "creat", "mkdirat", "unlinkat", "renameat2"})
#: fields fanotify cannot give (rules reading them see them missing)
MISSING_FIELDS = frozenset(
    {
        "evt.arg.flags",
        "evt.arg.mode",
        "evt.is_open_create",
        "fd.num",
        "evt.arg.dirfd",
        "proc.args",
        "proc.cmdline",
        "proc.cwd",
        "user.loginuid",
        "proc.ppid",
        "thread.tid (the process id is reported instead)",
    }
)

Scope = Literal["tree", "mount", "filesystem"]


@dataclass(frozen=True, slots=True)
class Watch:
    """A path to watch and how: ``tree``, ``mount`` (a container root filesystem) or ``filesystem``."""

    path: str
    scope: Scope = "tree"
    #: where this watch's create/delete/rename events are seen instead of `path`: an overlay root
    #: cannot report them (no file handles), its writable upper layer on the host's disk can
    names: str | None = None


#: (create or delete, of a directory) -> the event type of a name event
_NAME_TYPES = {
    ("create", False): "creat",
    ("create", True): "mkdirat",
    ("delete", False): "unlinkat",
    ("delete", True): "unlinkat",
}


def _is_whiteout(path: str) -> bool:
    """An overlayfs whiteout: a character device 0/0 (a deleted lower-layer file)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _libc() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    lib.fanotify_init.argtypes = [ctypes.c_uint, ctypes.c_uint]
    lib.fanotify_init.restype = ctypes.c_int
    lib.fanotify_mark.argtypes = [ctypes.c_int, ctypes.c_uint, ctypes.c_uint64, ctypes.c_int, ctypes.c_char_p]
    lib.fanotify_mark.restype = ctypes.c_int
    lib.open_by_handle_at.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.open_by_handle_at.restype = ctypes.c_int
    lib.name_to_handle_at.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.POINTER(ctypes.c_int),
        ctypes.c_int,
    ]
    lib.name_to_handle_at.restype = ctypes.c_int
    return lib


_LIBC: ctypes.CDLL | None = None


def libc() -> ctypes.CDLL:
    global _LIBC
    if _LIBC is None:
        _LIBC = _libc()
    return _LIBC


def _init(flags: int) -> int:
    fd: int = libc().fanotify_init(flags, os.O_RDONLY | os.O_CLOEXEC | os.O_LARGEFILE)
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return fd


def _mark(fd: int, flags: int, mask: int, path: str) -> None:
    if libc().fanotify_mark(fd, flags, mask, AT_FDCWD, os.fsencode(path)) < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"fanotify_mark {path}: {os.strerror(e)}")


def _handle_of(path: str) -> bytes | None:
    """The file handle of `path` as fanotify reports it (``handle_bytes``, ``handle_type``, bytes)."""
    buf = ctypes.create_string_buffer(_HANDLE_HDR.pack(128, 0) + bytes(128))
    mount_id = ctypes.c_int()
    if libc().name_to_handle_at(AT_FDCWD, os.fsencode(path), buf, ctypes.byref(mount_id), 0) < 0:
        return None
    raw = buf.raw
    nbytes = _HANDLE_HDR.unpack_from(raw)[0]
    return raw[: _HANDLE_HDR.size + nbytes]


def _mask_names(mask: int) -> str:
    names = [
        (FAN_OPEN, "FAN_OPEN"),
        (FAN_OPEN_EXEC, "FAN_OPEN_EXEC"),
        (FAN_MODIFY, "FAN_MODIFY"),
        (FAN_CLOSE_WRITE, "FAN_CLOSE_WRITE"),
        (FAN_CREATE, "FAN_CREATE"),
        (FAN_DELETE, "FAN_DELETE"),
        (FAN_RENAME, "FAN_RENAME"),
        (FAN_ONDIR, "FAN_ONDIR"),
    ]
    return "|".join(n for bit, n in names if mask & bit)


class FanotifyBackend(Backend):
    """File events on the watched paths from two fanotify groups (see the module docstring)."""

    name = "fanotify"
    title = "fanotify"
    role: ClassVar[Role] = "fallback"
    watches_containers = True

    def __init__(
        self,
        watches: list[Watch | str] | None = None,
        *,
        unlimited_queue: bool = False,
        ignore_self: bool = True,
        max_batch: int = 8192,
        max_tree_marks: int = 100_000,
    ) -> None:
        self.stats = BackendStats()
        #: events read, by kind ("open", "modify", "create", "delete", "rename", "merged", ...)
        self.received: Counter[str] = Counter()
        self.watches: list[Watch] = [w if isinstance(w, Watch) else Watch(w) for w in watches or []]
        self.unlimited_queue = unlimited_queue
        self.ignore_self = ignore_self
        self.max_batch = max_batch
        self.max_tree_marks = max_tree_marks
        self._open_fd = -1
        self._name_fd = -1
        self._want: frozenset[str] = EVTTYPES
        self._mount_fds: dict[str, int] = {}  # watch path -> directory fd (for open_by_handle_at)
        self._fsid_fd: dict[bytes, int] = {}
        self._dir_cache: dict[bytes, str] = {}  # fsid + handle -> directory path
        self._dir_key: dict[str, bytes] = {}  # and back
        self._tree_dirs: set[str] = set()
        self._tree_roots: list[str] = []
        # mount watches: name events must be under one of these (a tuple: one C-level startswith)
        self._prefixes: tuple[str, ...] = ()
        self._written: set[tuple[int, str]] = set()
        self._self_pid = os.getpid()
        self._buf = bytearray(1 << 18)

    @classmethod
    def from_context(cls, ctx: BackendContext) -> Self:
        """Watching ``sensor.watch_paths`` (and the root filesystem of each container seen)."""
        return cls(list(ctx.settings.watch_paths))

    @staticmethod
    def probe() -> Capabilities:
        """Root and both kinds of fanotify group (classic, and with directory file handles)."""
        if os.geteuid() != 0:
            return Capabilities("fanotify", False, "needs root (CAP_SYS_ADMIN) for fanotify")
        fds: list[int] = []
        try:
            fds.append(_init(FAN_CLASS_NOTIF | FAN_CLOEXEC))
            fds.append(_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_REPORT_DFID_NAME | FAN_REPORT_FID))
        except (OSError, AttributeError) as e:
            return Capabilities("fanotify", False, f"fanotify unavailable: {e}")
        finally:
            for fd in fds:
                os.close(fd)
        return Capabilities("fanotify", True, "", EVTTYPES, MISSING_FIELDS)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self, evttypes: set[str] | None = None) -> None:
        """Open the fanotify groups the event types need and mark the watched paths."""
        if self._open_fd >= 0 or self._name_fd >= 0:
            return
        self._want = EVTTYPES if evttypes is None else frozenset(evttypes) & EVTTYPES
        q = FAN_UNLIMITED_QUEUE if self.unlimited_queue else 0
        base = FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | q
        try:
            if "openat" in self._want:
                self._open_fd = _init(base)
            if self._want - {"openat"}:
                self._name_fd = _init(base | FAN_REPORT_DFID_NAME | FAN_REPORT_FID)
        except OSError as e:
            self.close()
            raise SensorError(f"fanotify: cannot initialise: {e}") from e
        watches, self.watches = self.watches, []
        for w in watches:
            self.add_watch(w)

    def close(self) -> None:
        """Close the groups and the watched directories (safe twice)."""
        for fd in (self._open_fd, self._name_fd, *self._mount_fds.values()):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._open_fd = self._name_fd = -1
        self._mount_fds.clear()
        self._fsid_fd.clear()
        self._dir_cache.clear()
        self._dir_key.clear()
        self._tree_dirs.clear()

    def add_watch(self, watch: Watch | str) -> None:
        """Start watching a path (a container's root filesystem as ``Watch(path, "mount")``)."""
        w = watch if isinstance(watch, Watch) else Watch(watch)
        # /proc/<pid>/root is a magic link into another mount namespace: resolving it would give "/"
        path = w.path if w.path.startswith("/proc/") else os.path.realpath(w.path)
        if not os.path.isdir(path):
            raise SensorError(f"fanotify: cannot watch {w.path}: not a directory")
        try:
            mfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise SensorError(f"fanotify: cannot open {w.path}: {e.strerror}") from e
        self._mount_fds[path] = mfd
        try:
            if w.scope == "tree":
                self._tree_roots.append(path)
                self._mark_tree(path)
            else:
                fs_flags = FAN_MARK_ADD | (FAN_MARK_MOUNT if w.scope == "mount" else FAN_MARK_FILESYSTEM)
                if self._open_fd >= 0:
                    _mark(self._open_fd, fs_flags, OPEN_MASK, path)
                if self._name_fd >= 0:
                    names = os.path.realpath(w.names) if w.names else path
                    _mark(self._name_fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, NAME_MASK, names)
                    if w.scope == "mount" or w.names:
                        self._prefixes += (names.rstrip("/") + "/",)
        except OSError as e:
            raise SensorError(f"fanotify: cannot watch {w.path}: {e.strerror}") from e
        self.watches.append(Watch(path, w.scope, w.names))

    def watch_container(self, info: ContainerInfo) -> list[str]:
        """Watch a container's root filesystem; the host path prefixes its events carry. A failed
        watch is counted in ``stats.errors``: the prefixes still name the container's files."""
        root = info.rootfs
        if not root:
            return []
        prefixes = [root.rstrip("/") + "/"]
        # an overlay root has its own superblock: mark it whole, which covers the container's own
        # mount of it; its create/delete/rename events are seen in the writable upper layer (overlay
        # cannot report them). A plain directory is marked through the container's mount.
        upper = info.upperdir
        if upper or info.root_fstype == "overlay":
            watch = Watch(root, "filesystem", upper)
            if upper:
                prefixes.append(upper.rstrip("/") + "/")
        elif info.init_pid:
            watch = Watch(f"/proc/{info.init_pid}/root", "mount")
        else:
            return prefixes
        try:
            self.add_watch(watch)
        except Exception as e:
            self.stats.error(f"cannot watch the root filesystem of container {info.short_id} ({root}): {e}")
        return prefixes

    def _mark_dir(self, path: str) -> bool:
        if path in self._tree_dirs:
            return True
        if len(self._tree_dirs) >= self.max_tree_marks:
            self.stats.error(f"fanotify: {self.max_tree_marks} directory marks reached; {path} not watched")
            return False
        flags = FAN_MARK_ADD | FAN_MARK_ONLYDIR | FAN_MARK_DONT_FOLLOW
        try:
            if self._open_fd >= 0:
                _mark(self._open_fd, flags, OPEN_MASK | FAN_EVENT_ON_CHILD, path)
            if self._name_fd >= 0:
                _mark(self._name_fd, flags, NAME_MASK, path)
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ENOTDIR):
                self.stats.error(str(e))
            return False
        self._tree_dirs.add(path)
        self._remember_dir(path)
        return True

    def _remember_dir(self, path: str) -> None:
        """Learn a directory's handle now, so its events resolve even after it is deleted."""
        handle = _handle_of(path)
        if handle is None:
            return
        try:
            fsid = self._fsid_of_path(path)
        except OSError:
            return
        self._cache_dir(fsid + handle, path)

    def _cache_dir(self, key: bytes, path: str) -> None:
        if len(self._dir_cache) > 200_000:
            self._dir_cache.clear()
            self._dir_key.clear()
        self._dir_cache[key] = path
        self._dir_key[path] = key

    def _forget_dir(self, path: str) -> None:
        key = self._dir_key.pop(path, None)
        if key is not None:
            self._dir_cache.pop(key, None)

    def _moved_dir(self, old: str, new: str) -> None:
        prefix = old + "/"
        for path in [p for p in self._dir_key if p == old or p.startswith(prefix)]:
            key = self._dir_key.pop(path)
            moved = new + path[len(old) :]
            self._dir_cache[key] = moved
            self._dir_key[moved] = key
        self._tree_dirs = {
            new + p[len(old) :] if p == old or p.startswith(prefix) else p for p in self._tree_dirs
        }

    def _mark_tree(self, root: str) -> None:
        if not self._mark_dir(root):
            return
        for dirpath, dirnames, _files in os.walk(root):
            for d in dirnames:
                self._mark_dir(os.path.join(dirpath, d))

    def fileno(self) -> int:
        """The open group's descriptor (else the name group's)."""
        return self._open_fd if self._open_fd >= 0 else self._name_fd

    # -- reading ---------------------------------------------------------------------------------

    def poll(self, timeout_s: float = 0.1) -> list[dict[str, Any]]:
        """The file events both groups have now."""
        fds = [fd for fd in (self._open_fd, self._name_fd) if fd >= 0]
        if not fds:
            raise SensorError("fanotify: not started")
        out: list[dict[str, Any]] = []
        try:
            ready, _, _ = select.select(fds, [], [], max(timeout_s, 0.0))
        except InterruptedError:
            return out
        for fd in ready:
            self._drain(fd, out)
        self.stats.events += len(out)
        return out

    def _drain(self, fd: int, out: list[dict[str, Any]]) -> None:
        buf = self._buf
        view = memoryview(buf)
        reads = 0
        while reads < max(self.max_batch // 64, 1):
            try:
                n = os.readv(fd, [view])
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno == errno.EINTR:
                    continue
                self.stats.error(f"fanotify read: {e.strerror}")
                return
            if n <= 0:
                return
            reads += 1
            data = bytes(view[:n])
            if fd == self._open_fd:
                self._parse_open(data, out)
            else:
                self._parse_names(data, out)

    @staticmethod
    def _base(etype: str, pid: int, now_ns: int) -> dict[str, Any]:
        """An event of process `pid`. Its facts (name, exe, ...) come from the process table,
        which the sensor feeds the proc connector's events first (causal order): a pid's facts read
        from /proc here could be those of the program before its exec."""
        ev: dict[str, Any] = {
            "evt.type": etype,
            "evt.dir": "<",
            "evt.time": now_ns,
            "proc.pid": pid,
            "thread.tid": pid,
            "evt.rawres": 0,
        }
        return ev

    def _parse_open(self, data: bytes, out: list[dict[str, Any]]) -> None:
        off, n = 0, len(data)
        now_ns = time.time_ns()
        while off + _META.size <= n:
            ev_len, _vers, _res, _mlen, mask, efd, pid = _META.unpack_from(data, off)
            if ev_len < _META.size:
                self.stats.error(f"fanotify: bad event length {ev_len}")
                return
            off += ev_len
            if mask & FAN_Q_OVERFLOW:
                self.stats.lost["fanotify_overflow"] += 1
                continue
            if efd < 0:
                continue
            try:
                path = os.readlink(f"/proc/self/fd/{efd}")
            except OSError:
                path = None
            finally:
                os.close(efd)
            if path is None:
                self.stats.error("fanotify: event fd without a path")
                continue
            if (pid == self._self_pid and self.ignore_self) or "openat" not in self._want:
                continue
            self._open_event(mask, pid, path, now_ns, out)

    def _open_event(self, mask: int, pid: int, path: str, now_ns: int, out: list[Any]) -> None:
        if path.endswith(" (deleted)"):
            path = path[: -len(" (deleted)")]
        key = (pid, path)
        opened = bool(mask & (FAN_OPEN | FAN_OPEN_EXEC))
        wrote = bool(mask & (FAN_MODIFY | FAN_CLOSE_WRITE))
        self.received["open" if opened else "modify"] += 1
        if opened:
            self._written.discard(key)
        elif key in self._written:
            # the write of an open already reported
            if mask & FAN_CLOSE_WRITE:
                self._written.discard(key)
            return
        ev = self._base("openat", pid, now_ns)
        ev["fd.name"] = path
        ev["fd.typechar"] = "f"
        ev["fd.type"] = "file"
        ev["evt.is_open_read"] = opened
        ev["evt.is_open_write"] = wrote
        ev["evt.is_open_exec"] = bool(mask & FAN_OPEN_EXEC)
        ev["_fanotify_mask"] = _mask_names(mask)
        out.append(ev)
        if wrote and not (mask & FAN_CLOSE_WRITE):
            if len(self._written) > 65536:
                self._written.clear()
            self._written.add(key)

    # -- name events -----------------------------------------------------------------------------

    def _mount_fd_for(self, fsid: bytes) -> int:
        fd = self._fsid_fd.get(fsid)
        if fd is not None:
            return fd
        for mfd in self._mount_fds.values():
            if self._fsid_of(mfd) == fsid:
                self._fsid_fd[fsid] = mfd
                return mfd
        return -1

    @staticmethod
    def _fsid_of_path(path: str) -> bytes:
        v = os.statvfs(path).f_fsid & 0xFFFFFFFFFFFFFFFF
        return struct.pack("=II", v & 0xFFFFFFFF, v >> 32)

    @staticmethod
    def _fsid_of(fd: int) -> bytes:
        st = os.fstatvfs(fd)
        v = st.f_fsid & 0xFFFFFFFFFFFFFFFF
        return struct.pack("=II", v & 0xFFFFFFFF, v >> 32)

    def _resolve_dir(self, fsid: bytes, handle: bytes) -> str | None:
        key = fsid + handle
        path = self._dir_cache.get(key)
        if path is not None:
            return path
        mfd = self._mount_fd_for(fsid)
        if mfd < 0:
            return None
        fd = libc().open_by_handle_at(mfd, handle, O_PATH | os.O_CLOEXEC)
        if fd < 0:
            return None  # ESTALE: the directory is gone already
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return None
        finally:
            os.close(fd)
        if path.endswith(" (deleted)"):
            return None
        self._cache_dir(key, path)
        return path

    def _info_records(self, data: bytes, off: int, end: int) -> dict[int, tuple[str | None, str]]:
        """info type -> (directory path or None, name) for the DFID_NAME records of one event."""
        recs: dict[int, tuple[str | None, str]] = {}
        while off + _INFO_HDR.size <= end:
            itype, _pad, ilen = _INFO_HDR.unpack_from(data, off)
            if ilen < _INFO_HDR.size:
                break
            if itype in (INFO_DFID_NAME, INFO_OLD_DFID_NAME, INFO_NEW_DFID_NAME, INFO_DFID):
                p = off + _INFO_HDR.size
                fsid = data[p : p + 8]
                hbytes, _htype = _HANDLE_HDR.unpack_from(data, p + 8)
                handle = data[p + 8 : p + 16 + hbytes]
                name_raw = data[p + 16 + hbytes : off + ilen]
                name = name_raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                recs[itype] = (self._resolve_dir(fsid, handle), name)
            off += ilen
        return recs

    def _parse_names(self, data: bytes, out: list[dict[str, Any]]) -> None:
        off, n = 0, len(data)
        now_ns = time.time_ns()
        while off + _META.size <= n:
            ev_len, _vers, _res, mlen, mask, _efd, pid = _META.unpack_from(data, off)
            if ev_len < _META.size:
                self.stats.error(f"fanotify: bad event length {ev_len}")
                return
            start, off = off, off + ev_len
            if mask & FAN_Q_OVERFLOW:
                self.stats.lost["fanotify_overflow"] += 1
                continue
            recs = self._info_records(data, start + mlen, start + ev_len)
            self._name_event(mask, pid, recs, now_ns, out)

    def _path(self, rec: tuple[str | None, str] | None) -> str | None:
        if rec is None:
            return None
        d, name = rec
        if d is None:
            return None
        if not name or name == ".":
            return d
        return d + name if d.endswith("/") else f"{d}/{name}"

    def _in_scope(self, path: str) -> bool:
        in_tree = any(path == r or path.startswith(r.rstrip("/") + "/") for r in self._tree_roots)
        if not self._prefixes or in_tree:
            return True
        return path.startswith(self._prefixes) or (path + "/").startswith(self._prefixes)

    def _name_event(
        self,
        mask: int,
        pid: int,
        recs: dict[int, tuple[str | None, str]],
        now_ns: int,
        out: list[Any],
    ) -> None:
        is_dir = bool(mask & FAN_ONDIR)
        if mask & FAN_RENAME:
            self._rename_event(mask, pid, recs, now_ns, out)
            return
        path = self._path(recs.get(INFO_DFID_NAME))
        kind = "create" if mask & FAN_CREATE else "delete" if mask & FAN_DELETE else "other"
        self.received[kind] += 1
        if path is None:
            self.stats.error(f"fanotify: {kind} event whose directory could not be resolved")
            return
        if is_dir:
            self._follow_dir(kind, path)
        if not self._in_scope(path) or (pid == self._self_pid and self.ignore_self):
            return
        etype = _NAME_TYPES.get((kind, is_dir))
        if etype is None or etype not in self._want:
            return
        ev = self._base(etype, pid, now_ns)
        ev["fs.path.name"] = path
        if self._dress_name(ev, etype, path, is_dir):
            ev["_fanotify_mask"] = _mask_names(mask)
            out.append(ev)

    def _follow_dir(self, kind: str, path: str) -> None:
        """A directory created below a watched tree is marked; one deleted is forgotten."""
        if kind == "create" and any(path.startswith(r.rstrip("/") + "/") for r in self._tree_roots):
            self._mark_tree(path)
        elif kind == "delete":
            self._tree_dirs.discard(path)
            self._forget_dir(path)

    def _dress_name(self, ev: dict[str, Any], etype: str, path: str, is_dir: bool) -> bool:
        """The fields of a create (a symlink's, a whiteout's), mkdir or delete; False: not wanted."""
        if etype == "creat" and _is_whiteout(path):
            # an overlay upper layer records the deletion of a lower-layer file as a whiteout
            if "unlinkat" not in self._want:
                return False
            ev["evt.type"] = "unlinkat"
            ev["evt.arg.name"] = path
        elif etype == "creat":
            ev["fd.name"] = ev["evt.arg.name"] = path
            ev["fd.typechar"], ev["fd.type"] = "f", "file"
            try:
                if stat.S_ISLNK(os.lstat(path).st_mode):
                    ev["evt.type"] = "symlinkat"
                    ev["evt.arg.linkpath"] = path
                    ev["evt.arg.target"] = os.readlink(path)
                    del ev["fd.name"], ev["fd.typechar"], ev["fd.type"], ev["evt.arg.name"]
            except OSError:
                pass
        elif etype == "mkdirat":
            ev["evt.arg.path"] = path
        else:
            ev["evt.arg.name"] = path
            if is_dir:
                ev["evt.arg.flags"] = "AT_REMOVEDIR"
        return True

    def _rename_event(
        self, mask: int, pid: int, recs: dict[int, tuple[str | None, str]], now_ns: int, out: list[Any]
    ) -> None:
        self.received["rename"] += 1
        old, new = self._path(recs.get(INFO_OLD_DFID_NAME)), self._path(recs.get(INFO_NEW_DFID_NAME))
        if mask & FAN_ONDIR:
            if old is not None and new is not None:
                self._moved_dir(old, new)  # cached paths below the moved directory changed
            if new is not None and any(new.startswith(r.rstrip("/") + "/") for r in self._tree_roots):
                self._mark_tree(new)
        if old is None and new is None:
            self.stats.error("fanotify: rename whose directories could not be resolved")
            return
        if not self._in_scope(new or old or "") or (pid == self._self_pid and self.ignore_self):
            return
        if "renameat2" in self._want:
            ev = self._base("renameat2", pid, now_ns)
            if old is not None:
                ev["evt.arg.oldpath"] = ev["fs.path.source"] = old
            if new is not None:
                ev["evt.arg.newpath"] = ev["fs.path.target"] = new
            ev["_fanotify_mask"] = _mask_names(mask)
            out.append(ev)

    def wait_idle(self, quiet_s: float = 0.3, limit_s: float = 60.0) -> list[dict[str, Any]]:
        """Read until nothing arrives for `quiet_s` (for tests and shutdown); the events read."""
        out: list[dict[str, Any]] = []
        end = time.monotonic() + limit_s
        while time.monotonic() < end:
            before = sum(self.received.values()) + sum(self.stats.lost.values())
            out.extend(self.poll(quiet_s))
            if sum(self.received.values()) + sum(self.stats.lost.values()) == before:
                break
        return out
