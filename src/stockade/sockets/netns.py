"""Entering a network namespace from one thread (``setns(CLONE_NEWNET)`` affects only the calling
thread; a socket stays in the namespace it was made in)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["CLONE_NEWNET", "setns_net"]

CLONE_NEWNET = 0x40000000

_LIBC: ctypes.CDLL | None = None


def setns_net(fd: int) -> None:
    """Move the calling thread into the network namespace open at `fd`."""
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if _LIBC.setns(fd, CLONE_NEWNET) < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")
