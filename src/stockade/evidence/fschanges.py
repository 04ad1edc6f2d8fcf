"""A container's filesystem changes since it started, read from its overlay's upper layer.

Every runtime that gives a container an overlay root (podman, containerd, CRI-O, docker) keeps what
the container wrote in the upper directory: files added or changed (a changed file is copied up
whole), deletions as *whiteouts* (a character device 0/0, or a file with the ``overlay.whiteout``
xattr, or an OCI-style ``.wh.<name>``), and directories whose lower contents were hidden as
*opaque* (``overlay.opaque=y``, or ``.wh..wh..opq``). :func:`upper_changes` walks it: each entry
``added`` (not in any lower layer) or ``changed``, the deletions and opaque directories listed, the
added and changed files archived (``fs/changes.tar``, read with O_NOATIME so the read leaves no trace
in the container's files) up to a size cap.

A root filesystem that is a plain directory (runc with a bundle's ``rootfs``) has no upper layer: no
record of what changed; the evidence says so and why.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from stockade.sensor.containers.drift import root_mount
from stockade.sensor.containers.lookup import FoundContainer

__all__ = ["DEFAULT_ARCHIVE_CAP", "OverlayLayers", "container_layers", "upper_changes"]

#: the most bytes of changed files archived
DEFAULT_ARCHIVE_CAP = 512 * 2**20
_WH_PREFIX = ".wh."
_WH_OPAQUE = ".wh..wh..opq"
_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")
_O_NOATIME = getattr(os, "O_NOATIME", 0)


@dataclass(frozen=True, slots=True)
class OverlayLayers:
    """The overlay of a container's root: its upper directory and lower directories (top first)."""

    upper: str
    lowers: tuple[str, ...] = ()


def _xattr(path: str, name: str) -> bytes | None:
    for prefix in _XATTR_PREFIXES:
        try:
            return os.getxattr(path, prefix + name, follow_symlinks=False)
        except OSError:
            continue
    return None


def _is_whiteout(path: str, st: os.stat_result) -> bool:
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return True
    return stat.S_ISREG(st.st_mode) and st.st_size == 0 and _xattr(path, "whiteout") is not None


def _in_lower(rel: str, lowers: tuple[str, ...]) -> bool:
    return any(os.path.lexists(os.path.join(lower, rel)) for lower in lowers)


def _kind(st: os.stat_result) -> str:
    if stat.S_ISREG(st.st_mode):
        return "file"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISLNK(st.st_mode):
        return "symlink"
    return "special"


class _HashingReader:
    """A file read by tarfile, hashed on the way."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.h = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.h.update(data)
        return data


def _open_noatime(path: str) -> IO[bytes]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | _O_NOATIME)
    except PermissionError:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    return os.fdopen(fd, "rb")


def _archive(tf: tarfile.TarFile, full: str, rel: str, entry: dict[str, Any], budget: list[int]) -> None:
    """Add one added or changed entry to the archive (a file only while the cap allows)."""
    try:
        ti = tf.gettarinfo(full, arcname=rel)
    except OSError as e:
        entry["archived"], entry["error"] = False, str(e.strerror or e)
        return
    if ti.isreg():
        if ti.size > budget[0]:
            entry["archived"], entry["error"] = False, "archive size cap reached"
            return
        try:
            with _open_noatime(full) as f:
                reader = _HashingReader(f)
                tf.addfile(ti, reader)
        except OSError as e:
            entry["archived"], entry["error"] = False, str(e.strerror or e)
            return
        budget[0] -= ti.size
        entry["sha256"] = reader.h.hexdigest()
    else:
        tf.addfile(ti)
    entry["archived"] = True


def _change(
    full: str, rel: str, name: str, st: os.stat_result, lowers: tuple[str, ...], changes: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """One upper-layer entry: deletions and opaque directories appended to `changes`; the entry of
    an added or changed path returned (None: nothing more to record)."""
    if name == _WH_OPAQUE:
        changes.append({"path": "/" + os.path.dirname(rel), "change": "opaque", "type": "dir"})
        return None
    if name.startswith(_WH_PREFIX):
        deleted = os.path.join(os.path.dirname(rel), name[len(_WH_PREFIX) :])
        changes.append({"path": "/" + deleted, "change": "deleted"})
        return None
    if _is_whiteout(full, st):
        changes.append({"path": "/" + rel, "change": "deleted"})
        return None
    kind = _kind(st)
    existed = _in_lower(rel, lowers)
    if kind == "dir":
        if _xattr(full, "opaque") == b"y":
            changes.append({"path": "/" + rel, "change": "opaque", "type": "dir"})
        if existed:
            return None  # a parent copied up for a change below it
    entry: dict[str, Any] = {
        "path": "/" + rel,
        "change": "changed" if existed else "added",
        "type": kind,
        "size": st.st_size,
        "mode": oct(stat.S_IMODE(st.st_mode)),
        "uid": st.st_uid,
        "gid": st.st_gid,
        "mtime_ns": st.st_mtime_ns,
    }
    if kind == "symlink":
        entry["target"] = os.readlink(full)
    return entry


def upper_changes(
    layers: OverlayLayers, archive: Path | None, cap_bytes: int = DEFAULT_ARCHIVE_CAP
) -> dict[str, Any]:
    """Walk the upper layer (module docstring): the changes, and the archive written to `archive`
    (None: no archive, the changes only: `stockade drift`)."""
    changes: list[dict[str, Any]] = []
    budget = [cap_bytes]
    upper = layers.upper
    with (
        tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) if archive is not None else nullcontext()
    ) as tf:
        for dirpath, dirnames, filenames in os.walk(upper):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, upper)
            for name in [*sorted(filenames), *dirnames]:
                full = os.path.join(dirpath, name)
                rel = os.path.normpath(os.path.join(rel_dir, name))
                try:
                    st = os.lstat(full)
                except OSError:
                    continue
                entry = _change(full, rel, name, st, layers.lowers, changes)
                if entry is None:
                    continue
                if tf is not None:
                    _archive(tf, full, rel, entry, budget)
                changes.append(entry)
    counts: dict[str, int] = {}
    for c in changes:
        counts[c["change"]] = counts.get(c["change"], 0) + 1
    return {
        "known": True,
        "method": "overlay upper layer",
        "upperdir": upper,
        "lowerdirs": list(layers.lowers),
        "counts": counts,
        "archive_cap_bytes": cap_bytes,
        "not_archived": sum(1 for c in changes if c.get("archived") is False),
        "changes": changes,
    }


def container_layers(found: FoundContainer) -> tuple[OverlayLayers | None, str]:
    """The container's overlay (upper and lower directories, from podman's metadata or the
    root mount's options), or None and why there is none."""
    rm = root_mount(found.init_pid)
    opts = rm[1] if rm is not None else {}
    fstype = rm[0] if rm is not None else None
    upper = found.info.upperdir or opts.get("upperdir")
    lowers: list[str] = []
    data = ((found.raw or {}).get("GraphDriver") or {}).get("Data") or {}
    if isinstance(data.get("LowerDir"), str):
        lowers = [x for x in data["LowerDir"].split(":") if x]
    elif opts.get("lowerdir"):
        lowers = [x for x in opts["lowerdir"].split(":") if x]
    if upper:
        return OverlayLayers(upper, tuple(lowers)), ""
    if fstype is None:
        return None, f"the root mount of process {found.init_pid} could not be read"
    where = f" at {found.info.rootfs}" if found.info.rootfs else ""
    return None, (
        f"the root filesystem is a plain directory ({fstype}){where}, not an overlay: no upper "
        "layer records what the container changed, so its changes are unknown"
    )
