"""What a cataloger is: it names the files it wants, and reads packages out of each.

The walk (:mod:`stockade.packages.walk`) visits every file of a tree once and asks each
cataloger :meth:`Cataloger.wants` with the path inside the root (always absolute, ``/``-rooted,
whatever the host path of the tree is), the file's name and its directory entry. Only a
cataloger that needs the mode (executables, for Go and Rust binaries) should call
``entry.stat(follow_symlinks=False)``: a stat per file is most of a walk's cost (the entry
caches it, so several catalogers asking cost one). The files a
cataloger wants are then given to :meth:`Cataloger.read` with a :class:`Tree` to open them
through, so that symlinks inside the tree resolve inside it, never on the host.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from stockade.model.package import Package

__all__ = ["Cataloger", "PartlyRead", "Tree", "UnreadableFile"]


class UnreadableFile(Exception):
    """A file a cataloger wanted could not be parsed: the walk reports it (path, reason) and goes on."""


class PartlyRead(UnreadableFile):
    """Part of a file could not be parsed (an archive nested in a jar): the walk keeps `packages`
    and reports each of `problems` (path, reason)."""

    def __init__(self, packages: list[Package], problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{p}: {r}" for p, r in problems))
        self.packages = packages
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Tree:
    """A root filesystem on the host: ``root`` is its host path; paths inside are ``/``-rooted."""

    root: Path

    #: resolved directories (inner path -> its components with links resolved): the files of
    #: one directory resolve their parent once
    _dirs: dict[str, tuple[str, ...]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def host_path(self, inner: str) -> Path:
        """The host path of `inner` (a ``/``-rooted path in the tree), with symlinks resolved
        inside the tree (an absolute link target is taken from the tree's root, never the host's)."""
        parent, _, name = inner.rpartition("/")
        base = self._dirs.get(parent)
        if base is None:
            base = tuple(self._resolve(_split(parent), [], inner))
            self._dirs[parent] = base
        return self.root.joinpath(*self._resolve(_split(name), list(base), inner))

    def _resolve(self, parts: list[str], resolved: list[str], inner: str) -> list[str]:
        root = str(self.root)
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = "/".join((root, *resolved, part))
            try:
                st = os.lstat(candidate)
            except OSError:
                resolved.append(part)
                continue
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > 40:
                    raise UnreadableFile(f"{inner}: too many levels of symbolic links")
                target = os.readlink(candidate)
                if target.startswith("/"):
                    resolved = []
                parts = _split(target) + parts
                continue
            resolved.append(part)
        return resolved

    def read_bytes(self, inner: str, limit: int = 256 * 2**20) -> bytes:
        """The content of `inner` (at most `limit` bytes; a larger file is an UnreadableFile)."""
        path = self.host_path(inner)
        try:
            with open(path, "rb") as f:
                data = f.read(limit + 1)
        except OSError as e:
            raise UnreadableFile(f"{inner}: {e.strerror or e}") from e
        if len(data) > limit:
            raise UnreadableFile(f"{inner}: larger than {limit} bytes")
        return data

    def read_text(self, inner: str, limit: int = 256 * 2**20) -> str:
        """The content of `inner` as text (UTF-8, undecodable bytes replaced)."""
        return self.read_bytes(inner, limit).decode("utf-8", "replace")

    def exists(self, inner: str) -> bool:
        """Whether `inner` exists in the tree (links followed inside the tree)."""
        try:
            return self.host_path(inner).exists()
        except UnreadableFile:
            return False


def _split(path: str) -> list[str]:
    return [p for p in path.split("/") if p and p != "."]


class Cataloger(Protocol):
    """Finds packages of one kind (``dpkg``, ``python``, ``gobinary``, ...)."""

    #: the cataloger's name, also :attr:`Package.found_by`
    name: str

    def wants(self, inner: str, filename: str, entry: os.DirEntry[str]) -> bool:
        """Whether the regular file at `inner` (named `filename`) is one this reads."""
        ...

    def read(self, tree: Tree, inner: str) -> Iterable[Package]:
        """The packages in the file at `inner`; raise :class:`UnreadableFile` for a broken one."""
        ...
