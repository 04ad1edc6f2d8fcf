"""File permissions and ownership items (CIS 1.1.x and 4.1.x): a file's mode no more permissive
than a mask (``600``: no bit outside 0600, as kube-bench's bitmask compares), its owner and group
by name (read from the node's /etc/passwd and /etc/group; ``root:root`` is uid and gid 0)."""

from __future__ import annotations

import stat
from collections.abc import Sequence

from stockade.k8s.node.flags import Item
from stockade.k8s.node.reader import NodeFS
from stockade.k8s.node.result import Evidence, NodeResult

__all__ = ["mode_item", "owner_item", "owner_of"]


def _names(fs: NodeFS, path: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for line in (fs.read(path) or "").splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isdigit():
            out.setdefault(int(parts[2]), parts[0])
    return out


def owner_of(fs: NodeFS, st_uid: int, st_gid: int) -> str:
    """``user:group`` by the node's names (uid and gid 0 are root; numbers when unknown)."""
    users = {0: "root", **_names(fs, "/etc/passwd")}
    groups = {0: "root", **_names(fs, "/etc/group")}
    return f"{users.get(st_uid, str(st_uid))}:{groups.get(st_gid, str(st_gid))}"


def mode_item(item: Item, fs: NodeFS, paths: Sequence[str], mask: int) -> NodeResult:
    """Every file of `paths` that exists has no permission bit outside `mask`."""
    found = [(p, st) for p in paths if (st := fs.stat(p)) is not None]
    if not found:
        return item.result("not-applicable", f"no such file: {', '.join(paths) or '(none known)'}")
    ev = [Evidence(p, None, f"{stat.S_IMODE(st.st_mode):o}") for p, st in found]
    bad = [e for (_, st), e in zip(found, ev, strict=True) if stat.S_IMODE(st.st_mode) & ~mask]
    if bad:
        return item.result("fail", f"more permissive than {mask:o}: {', '.join(map(str, bad))}", *ev)
    return item.result("pass", f"{mask:o} or more restrictive", *ev)


def owner_item(item: Item, fs: NodeFS, paths: Sequence[str], owner: str = "root:root") -> NodeResult:
    """Every file of `paths` that exists is owned by `owner` (``user:group``)."""
    found = [(p, st) for p in paths if (st := fs.stat(p)) is not None]
    if not found:
        return item.result("not-applicable", f"no such file: {', '.join(paths) or '(none known)'}")
    ev = [Evidence(p, None, owner_of(fs, st.st_uid, st.st_gid)) for p, st in found]
    bad = [e for e in ev if e.value != owner]
    if bad:
        return item.result("fail", f"not owned by {owner}: {', '.join(map(str, bad))}", *ev)
    return item.result("pass", f"owned by {owner}", *ev)
