"""open(2) flags as Falco renders them (``O_RDONLY|O_CLOEXEC``), for every source of raw flags."""

from __future__ import annotations

_O_FLAGS = (
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    (0o10000, "O_DSYNC"),
    (0o40000, "O_DIRECT"),
    (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"),
    (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"),
    (0o20000000, "O_PATH"),
)
_O_TMPFILE = 0o20200000


def open_flags_str(flags: int) -> str:
    """Falco's rendering of open(2) flags: ``O_RDONLY|O_CLOEXEC``."""
    acc = flags & 3
    parts = ["O_WRONLY" if acc == 1 else "O_RDWR" if acc == 2 else "O_RDONLY"]
    if flags & _O_TMPFILE == _O_TMPFILE:
        parts.append("O_TMPFILE")
        flags &= ~0o200000
    for bit, name in _O_FLAGS:
        if flags & bit:
            parts.append(name)
    return "|".join(parts)
