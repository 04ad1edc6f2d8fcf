"""The files and directories Stockade keeps (database, spools) are private to its user.

A file is created 0600 and every directory Stockade creates 0700, whatever the umask; existing ones
are left as they are (an administrator may have chosen their modes).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "create_private_file", "make_private_dirs"]

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def make_private_dirs(path: str | os.PathLike[str]) -> None:
    """Create `path` and its missing parents, each new one 0700 (existing ones untouched)."""
    missing: list[Path] = []
    p = Path(path)
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:  # created meanwhile by someone else: theirs
            continue
        os.chmod(d, PRIVATE_DIR_MODE)  # the umask must not widen or narrow it


def create_private_file(path: str | os.PathLike[str]) -> bool:
    """Create an empty file 0600 unless it exists; True if it was created."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    except FileExistsError:
        return False
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)
    return True
