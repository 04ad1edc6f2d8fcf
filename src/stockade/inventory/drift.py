"""Drift of a running container: the files added, changed and deleted against its image.

A container's overlay root keeps what it wrote in the upper layer (whiteouts for deletions):
:func:`container_drift` reads it with :func:`stockade.evidence.fschanges.upper_changes` (no archive)
for a container found by :func:`stockade.sensor.containers.lookup.find_container`. The runtime's own
mount points inside the container (``/etc/hosts``, ``/etc/resolv.conf``, ``/run/.containerenv``
bind-mounted over files it created in the upper layer, the directories made only to hold them, and
podman's ``/etc/mtab`` link to ``../proc/mounts``) are not the workload's doing: they are left out of the changes and listed under
``runtime_mountpoints``.

Each change says whether it is in a watched path (config ``drift.watch``: globs, a directory covers
everything below it): ``watched`` is the pattern that matched, or None. A change in a watched path
is an alert of :data:`DRIFT_RULE` (:func:`drift_alert`), raised by the runtime's periodic check
and on demand.

A container whose root is a plain directory (runc with a bundle's rootfs) has no upper layer: its
drift is not known, and the answer says so and why (``known`` false, ``reason``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Any

from stockade.evidence.fschanges import container_layers, upper_changes
from stockade.model.alert import Alert
from stockade.sensor.containers.lookup import FoundContainer

__all__ = ["DRIFT_RULE", "container_drift", "container_mountpoints", "drift_alert", "watched"]

DRIFT_RULE = "Container drift in watched path"
_TAGS = ["stockade", "container", "drift", "mitre_persistence", "mitre_defense_evasion"]
#: symbolic links runtimes add to a container's root when its image lacks them (podman: /etc/mtab)
_RUNTIME_LINKS = {"/etc/mtab": ("../proc/mounts", "/proc/mounts", "/proc/self/mounts")}
#: what a change entry carries into the drift document
_KEYS = ("path", "change", "type", "size", "mode", "uid", "gid", "mtime_ns", "target")


def watched(path: str, patterns: Sequence[str]) -> str | None:
    """The first pattern of `patterns` covering `path` (the path itself or a directory above it
    matches the glob), or None."""
    parts = path.rstrip("/").split("/")
    prefixes = ["/".join(parts[:i]) for i in range(len(parts), 1, -1)]
    for pat in patterns:
        pat = pat.rstrip("/") or "/"
        if any(fnmatch.fnmatchcase(p, pat) for p in prefixes):
            return pat
    return None


def _unescape(s: str) -> str:
    """A mountinfo path: octal escapes (``\\040`` for a space) decoded."""
    if "\\" not in s:
        return s
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 4 <= len(s) and s[i + 1 : i + 4].isdigit():
            out.append(chr(int(s[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def container_mountpoints(pid: int) -> set[str]:
    """The mount points (paths inside the container) of the mount namespace of `pid`."""
    try:
        with open(f"/proc/{pid}/mountinfo", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return set()
    return {_unescape(line.split(" ")[4]) for line in lines if len(line.split(" ")) > 4}


def _runtime_made(changes: list[dict[str, Any]], mounts: set[str]) -> set[str]:
    """The paths of changes that are the runtime's: mount points, and added directories holding
    nothing but them."""
    paths = [c["path"] for c in changes]
    made = {p for p in paths if p in mounts and p != "/"}
    made |= {
        c["path"]
        for c in changes
        if c.get("change") == "added" and c.get("target") in _RUNTIME_LINKS.get(c["path"], ())
    }
    for c in sorted(changes, key=lambda c: -str(c["path"]).count("/")):
        p = c["path"]
        if c.get("change") != "added" or c.get("type") != "dir" or p in made:
            continue
        below = [b for b in paths if b.startswith(p + "/")]
        if below and all(b in made for b in below):
            made.add(p)
    return made


def container_drift(found: FoundContainer, watch: Sequence[str]) -> dict[str, Any]:
    """The drift document of `found` (module docstring): container, known, method, counts, changes
    (path, change: added|changed|deleted|opaque, type, size, mode, uid, gid, mtime_ns, watched),
    watched (the changes in watched paths) and runtime_mountpoints."""
    container = {
        "id": found.id,
        "name": found.name,
        "runtime": found.runtime,
        "image": found.info.image,
        "pid": found.init_pid,
    }
    layers, why = container_layers(found)
    if layers is None:
        return {
            "container": container,
            "known": False,
            "reason": why,
            "counts": {},
            "changes": [],
            "watched": [],
        }
    try:
        doc = upper_changes(layers, None)
    except OSError as e:
        reason = f"the upper layer {layers.upper} could not be read: {e.strerror or e}"
        return {
            "container": container,
            "known": False,
            "reason": reason,
            "counts": {},
            "changes": [],
            "watched": [],
        }
    made = _runtime_made(doc["changes"], container_mountpoints(found.init_pid))
    changes: list[dict[str, Any]] = []
    for c in doc["changes"]:
        if c["path"] in made:
            continue
        entry = {k: c[k] for k in _KEYS if k in c}
        entry["watched"] = watched(c["path"], watch)
        changes.append(entry)
    counts: dict[str, int] = {}
    for c in changes:
        counts[c["change"]] = counts.get(c["change"], 0) + 1
    return {
        "container": container,
        "known": True,
        "method": doc["method"],
        "upperdir": doc["upperdir"],
        "counts": counts,
        "changes": changes,
        "watched": [c for c in changes if c["watched"]],
        "runtime_mountpoints": sorted(made),
    }


def drift_alert(
    change: dict[str, Any],
    container: dict[str, Any],
    hostname: str,
    time_ns: int,
    *,
    fields: dict[str, Any] | None = None,
    workload: str | None = None,
) -> Alert:
    """The alert for a change in a watched path of a container (`container`: the drift document's)."""
    name = container.get("name") or str(container.get("id", ""))[:12]
    output = (
        f"File {change['path']} {change['change']} in container {name} (image {container.get('image') or '?'}), "
        f"in watched path {change['watched']}"
    )
    out_fields = {
        **(fields or {}),
        "container.id": str(container.get("id", ""))[:12],
        "container.full_id": container.get("id"),
        "container.name": container.get("name"),
        "fd.name": change["path"],
        "stockade.drift.change": change["change"],
        "stockade.drift.type": change.get("type"),
        "stockade.drift.watched": change["watched"],
    }
    return Alert(
        time_ns=time_ns,
        rule=DRIFT_RULE,
        priority="Warning" if change["change"] == "added" else "Error",
        output=output,
        output_fields=out_fields,
        source="drift",
        tags=list(_TAGS),
        hostname=hostname,
        workload=workload,
    )
