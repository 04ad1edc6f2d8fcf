"""user.name and group.name: the names a process's own /etc/passwd and /etc/group give its ids.

A container has its own user database (uid 0 is "root", uid 101 may be "nginx" in one image and
"systemd-network" on the host), so the files are read through the process's root
(``/proc/<pid>/root/etc/passwd``) once per container, and once for the host; re-read after
``ttl_s`` (an image's entrypoint may add users). A file that cannot be read gives no names (the
fields stay missing, never wrong).
"""

from __future__ import annotations

import time

__all__ = ["UserNames", "parse_id_file"]


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


def _read(path: str) -> dict[int, str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return parse_id_file(f.read(1 << 20))
    except OSError:
        return {}


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
        root = "" if key == "host" else f"/proc/{pid}/root"
        users, groups = _read(f"{root}/etc/passwd"), _read(f"{root}/etc/group")
        self.reads += 1
        if not users and hit is not None:
            # the process is gone (or the file unreadable): keep what was known
            users, groups = hit[1], hit[2]
        if len(self._cache) >= self.max_roots and key not in self._cache:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = (now + (self.ttl_s if users else min(self.ttl_s, self.empty_ttl_s)), users, groups)
        return users, groups
