"""user.name and group.name: the names a process's own /etc/passwd and /etc/group give its ids.

A container has its own user database (uid 0 is "root", uid 101 may be "nginx" in one image and
"systemd-network" on the host), so the files are read through the process's root
(``/proc/<pid>/root``) once per container, and once for the host; re-read after ``ttl_s`` (an
image's entrypoint may add users). A file that cannot be read gives no names (the fields stay
missing).

The container controls those files: they are opened with openat2(RESOLVE_IN_ROOT) below the
container's root (a symlink to /etc/shadow stays inside the container), non-blocking and only if
they are regular files (a FIFO cannot hang the sensor), and at most 1 MiB is read. A process whose
root is still the host's (the runtime before pivot_root) is not read for a container.
"""

from __future__ import annotations

import ctypes
import os
import stat
import time

__all__ = ["UserNames", "parse_id_file", "read_id_files"]


def parse_id_file(text: str) -> dict[int, str]:
    """`name:x:id:...` lines (passwd, group) -> {id: name}; the first name of an id wins."""
    out: dict[int, str] = {}
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) < 3 or not parts[0] or parts[0].startswith("#"):
            continue
        try:
            i = int(parts[2])
        except ValueError:
            continue
        out.setdefault(i, parts[0])
    return out


_SYS_OPENAT2 = 437  # x86_64 and arm64 alike
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10
_LIBC = ctypes.CDLL(None, use_errno=True)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def _open_in_root(root_fd: int, rel: str) -> int:
    how = _OpenHow(
        os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY, 0, _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS
    )
    fd = _LIBC.syscall(
        _SYS_OPENAT2, root_fd, rel.encode(), ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how))
    )
    if fd < 0:
        raise OSError(ctypes.get_errno(), f"openat2 {rel}")
    return int(fd)


def read_id_files(root: str) -> tuple[dict[int, str], dict[int, str]]:
    """({uid: name}, {gid: name}) from `root`/etc/passwd and group, resolved inside `root`."""
    try:
        root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return {}, {}
    try:
        return _read(root_fd, "etc/passwd"), _read(root_fd, "etc/group")
    finally:
        os.close(root_fd)


def _read(root_fd: int, rel: str) -> dict[int, str]:
    try:
        fd = _open_in_root(root_fd, rel)
    except OSError:
        return {}
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return {}
        return parse_id_file(os.read(fd, 1 << 20).decode("utf-8", "replace"))
    except OSError:
        return {}
    finally:
        os.close(fd)


def _same_as_host_root(root: str) -> bool:
    try:
        a, b = os.stat(root), os.stat("/")
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


class UserNames:
    """{uid: name}, {gid: name} per root ("host" or a container's full id), cached."""

    def __init__(self, ttl_s: float = 60.0, max_roots: int = 4096, empty_ttl_s: float = 1.0) -> None:
        self.ttl_s = ttl_s
        #: a root whose files gave nothing (no passwd in the image, a process gone) is asked again
        #: after this long
        self.empty_ttl_s = empty_ttl_s
        self.max_roots = max_roots
        self._cache: dict[str, tuple[float, dict[int, str], dict[int, str]]] = {}
        #: reads of passwd/group pairs
        self.reads = 0

    def names(self, key: str, pid: int | None) -> tuple[dict[int, str], dict[int, str]]:
        """The users and groups of root `key`, read through process `pid` for a container."""
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and now < hit[0]:
            return hit[1], hit[2]
        if key != "host" and pid is None:
            return {}, {}
        root = "/" if key == "host" else f"/proc/{pid}/root"
        users: dict[int, str]
        groups: dict[int, str]
        if key != "host" and _same_as_host_root(root):
            users, groups = {}, {}  # not in the container's root yet (the runtime, before pivot_root)
        else:
            users, groups = read_id_files(root)
        self.reads += 1
        if not users and hit is not None:
            # the process is gone (or the file unreadable): keep what was known
            users, groups = hit[1], hit[2]
        if len(self._cache) >= self.max_roots and key not in self._cache:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = (now + (self.ttl_s if users else min(self.ttl_s, self.empty_ttl_s)), users, groups)
        return users, groups
