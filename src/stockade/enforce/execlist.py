"""The files a container may execute, found in its root filesystem: the exec killer's allow-list.

The exec killer (:class:`stockade.enforce.kill.ExecKiller`) knows files, not paths: it allows an
exec by the (device, inode) of the file. A policy names paths and globs
(:meth:`stockade.policy.compile.CompiledPolicy.exec_globs`); :func:`allowed_executables` turns
them into the files of the container's root (``/proc/<pid>/root``) that the policy lets run:

* an exact path is itself (when it exists);
* a glob is matched against the files below its fixed leading directories (``/usr/bin/*`` walks
  ``/usr/bin``, ``/opt/**/bin/*`` walks ``/opt``), symbolic links not followed while walking (the
  killer follows them when it looks the path up), at most `limit` entries in all;
* every candidate is then decided as an exec by the policy (:meth:`decide_file`), so block rules
  and exceptions hold.

A file written after the list was made is not on it (a new inode): a freshly written binary is
killed, and a binary the policy allows that is replaced (an upgrade inside the container) is too,
until the workload's policy is applied again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from stockade.behavior.pathglob import glob_match, has_special
from stockade.policy.compile import CompiledPolicy

__all__ = ["ExecList", "allowed_executables"]

#: entries walked at most per container (a broad glob such as ``/**`` stops there, and says so)
DEFAULT_LIMIT = 50_000


@dataclass(slots=True)
class ExecList:
    """The files a policy lets a container run, and what could not be listed."""

    paths: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _fixed_prefix(pattern: str) -> str:
    """The leading directories of a glob that have no special character (``/`` at least)."""
    parts = pattern.split("/")
    fixed: list[str] = []
    for p in parts[:-1]:
        if has_special(p):
            break
        fixed.append(p)
    return "/".join(fixed) or "/"


def _walk(root: str, pattern: str, budget: list[int]) -> list[str]:
    """The paths (as the container sees them) below the glob's fixed prefix that match it."""
    base = _fixed_prefix(pattern)
    out: list[str] = []
    host_base = os.path.join(root, base.lstrip("/"))
    for dirpath, dirnames, filenames in os.walk(host_base):
        rel = "/" + os.path.relpath(dirpath, root).lstrip(".").lstrip("/")
        rel = rel.rstrip("/") if rel != "/" else ""
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            budget[0] -= 1
            if budget[0] < 0:
                return out
            path = f"{rel}/{name}"
            if glob_match(pattern, path):
                out.append(path)
    return out


def allowed_executables(root: str, policy: CompiledPolicy, *, limit: int = DEFAULT_LIMIT) -> ExecList:
    """The files below `root` the policy lets run (module docstring)."""
    found = ExecList()
    budget = [limit]
    seen: set[str] = set()
    for pattern in policy.exec_globs():
        candidates = _walk(root, pattern, budget) if has_special(pattern) else [pattern]
        if budget[0] < 0:
            found.problems.append(
                f"exec allow-list of policy {policy.name}: past {limit} files, {pattern!r} is not "
                "fully listed (the files left out are killed when run)"
            )
            budget[0] = 0
        for path in candidates:
            if path not in seen and policy.decide_file("exec", path).action == "allow":
                seen.add(path)
                found.paths.append(path)
    return found
