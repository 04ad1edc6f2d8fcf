"""fanotify permission groups (ctypes): the kernel side of :mod:`stockade.enforce.fileguard`.

A :class:`PermGroup` is one ``FAN_CLASS_CONTENT`` group: the kernel stops each ``open``/``execve``
on a marked mount until the group answers ``FAN_ALLOW`` or ``FAN_DENY`` (the syscall then fails
with EPERM). Marks are mount marks on an fd of the mount (``O_PATH``, so no path is resolved twice);
the allow cache is an *ignore* mark on the opened file's inode (``FAN_MARK_IGNORED_MASK`` without
``FAN_MARK_IGNORED_SURV_MODIFY``: a write to the file clears it, so a modified file is decided
again). The flags, the ``libc`` binding and the shared constants come from
:mod:`stockade.sensor.fanotify` (the notification groups of the sensor); what is specific to
permission events is here.

Events are read with ``FAN_NONBLOCK`` (the group's fd goes into an epoll set) and the queue is
unlimited (``FAN_UNLIMITED_QUEUE``): on a full queue the kernel would drop a permission event and
let its syscall through.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

from stockade.sensor.fanotify import (
    AT_FDCWD,
    FAN_CLOEXEC,
    FAN_MARK_ADD,
    FAN_MARK_MOUNT,
    FAN_NONBLOCK,
    FAN_UNLIMITED_QUEUE,
    libc,
)

__all__ = [
    "FAN_ALLOW",
    "FAN_CLASS_CONTENT",
    "FAN_DENY",
    "FAN_MARK_FLUSH",
    "FAN_MARK_IGNORED_MASK",
    "FAN_OPEN_EXEC_PERM",
    "FAN_OPEN_PERM",
    "PERM_MASK",
    "PermGroup",
]

FAN_CLASS_CONTENT = 0x4
FAN_OPEN_PERM = 0x10000
FAN_OPEN_EXEC_PERM = 0x40000
PERM_MASK = FAN_OPEN_PERM | FAN_OPEN_EXEC_PERM
FAN_MARK_IGNORED_MASK = 0x20
FAN_MARK_FLUSH = 0x80
FAN_ALLOW = 0x1
FAN_DENY = 0x2
FAN_Q_OVERFLOW = 0x4000

#: event_len, vers, reserved, metadata_len, mask, fd, pid (a permission group reports no info records)
_META = struct.Struct("=IBBHQii")
#: struct fanotify_response: fd, response
_RESPONSE = struct.Struct("=iI")


def _check(rc: int, what: str) -> None:
    if rc < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


class PermGroup:
    """One fanotify permission group (see the module docstring). Not thread-safe: one owner reads,
    answers and closes it."""

    __slots__ = ("_buf", "_view", "fd")

    def __init__(self, *, buffer: int = 1 << 16) -> None:
        flags = FAN_CLASS_CONTENT | FAN_CLOEXEC | FAN_NONBLOCK | FAN_UNLIMITED_QUEUE
        fd: int = libc().fanotify_init(flags, os.O_RDONLY | os.O_CLOEXEC | os.O_LARGEFILE)
        _check(fd, "fanotify_init(FAN_CLASS_CONTENT)")
        self.fd = fd
        self._buf = bytearray(buffer)
        self._view = memoryview(self._buf)

    def fileno(self) -> int:
        """The group's descriptor (readable when events wait)."""
        return self.fd

    def mark_mount(self, obj_fd: int, mask: int = PERM_MASK) -> None:
        """Mark the mount that `obj_fd` (an ``O_PATH`` fd of a file or directory) is on.

        fanotify_mark takes no ``O_PATH`` fd as its object (EBADF), but resolves a path: the fd's
        ``/proc/self/fd`` magic link, which leads to the very mount and dentry of the fd."""
        path = f"/proc/self/fd/{obj_fd}".encode()
        _check(
            libc().fanotify_mark(self.fd, FAN_MARK_ADD | FAN_MARK_MOUNT, mask, AT_FDCWD, path),
            "fanotify_mark(FAN_MARK_MOUNT)",
        )

    def ignore(self, event_fd: int, mask: int) -> None:
        """Stop asking about `mask` events on the inode of `event_fd` until the file is modified."""
        _check(
            libc().fanotify_mark(self.fd, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK, mask, event_fd, None),
            "fanotify_mark(FAN_MARK_IGNORED_MASK)",
        )

    def flush_ignores(self) -> None:
        """Remove every inode mark of the group: the whole allow cache (mount marks stay)."""
        _check(
            libc().fanotify_mark(self.fd, FAN_MARK_FLUSH, 0, AT_FDCWD, None), "fanotify_mark(FAN_MARK_FLUSH)"
        )

    def read(self) -> list[tuple[int, int, int]]:
        """The waiting events as (mask, event fd, pid); [] when none. Each event fd must be answered
        (:meth:`respond`) and closed by the caller. A queue overflow (not expected: the queue is
        unlimited) has no fd and is returned with fd -1."""
        try:
            n = os.readv(self.fd, [self._view])
        except (BlockingIOError, InterruptedError):
            return []
        out: list[tuple[int, int, int]] = []
        off = 0
        buf = self._buf
        while off + _META.size <= n:
            ev_len, _vers, _res, _mlen, mask, efd, pid = _META.unpack_from(buf, off)
            if ev_len < _META.size:
                break
            off += ev_len
            out.append((mask, efd, pid))
        return out

    def respond(self, event_fd: int, allow: bool) -> bool:
        """Answer one event; False when the kernel no longer waits for it (its group was flushed)."""
        try:
            os.write(self.fd, _RESPONSE.pack(event_fd, FAN_ALLOW if allow else FAN_DENY))
        except OSError as e:
            if e.errno in (errno.ENOENT, errno.EINVAL):
                return False
            raise
        return True

    def close(self) -> None:
        """Close the group: the kernel lets every waiting event through and drops the marks."""
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)
