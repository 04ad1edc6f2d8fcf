"""One walk of a root filesystem, feeding every cataloger the files it wants.

Pseudo filesystems (``/proc``, ``/sys``, ``/dev``) are not entered; symlinks are not followed
(a package database reached only through a link is read where the link points, by the
cataloger through :class:`~stockade.packages.cataloger.Tree`). A file a cataloger cannot parse
is reported in :attr:`Catalog.errors` with its path and the reason, and the walk goes on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stockade.errors import UsageError
from stockade.model.package import Package
from stockade.packages.cataloger import Cataloger, PartlyRead, Tree, UnreadableFile
from stockade.packages.registry import catalogers as all_catalogers

__all__ = ["Catalog", "catalog_tree"]

#: never entered, as paths inside the tree
SKIP_DIRS = frozenset({"/proc", "/sys", "/dev"})


@dataclass(slots=True)
class Catalog:
    """What one walk found: the packages (deduplicated by key and path) and the files it could not read."""

    root: str
    packages: list[Package] = field(default_factory=list)
    #: (path inside the tree, reason)
    errors: list[tuple[str, str]] = field(default_factory=list)
    files_seen: int = 0


def _walk(root: Path, skip: frozenset[str] = SKIP_DIRS) -> Iterable[tuple[str, os.DirEntry[str]]]:
    # host paths as strings (entry.path): a Path per directory was a third of a walk's cost
    stack: list[tuple[str, str]] = [(str(root), "")]
    while stack:
        host, inner = stack.pop()
        try:
            it = os.scandir(host)
        except OSError:
            continue
        with it:
            dirs: list[tuple[str, str]] = []
            for entry in it:
                path = f"{inner}/{entry.name}"
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if path not in skip:
                            dirs.append((entry.path, path))
                    elif entry.is_file(follow_symlinks=False):
                        yield path, entry
                except OSError:
                    continue
            stack.extend(reversed(dirs))


def catalog_tree(
    root: str | Path, catalogers: Sequence[Cataloger] | None = None, *, skip: Iterable[str] = ()
) -> Catalog:
    """Every package under `root` (a directory: a host's or container's root, an unpacked image,
    any project folder); `skip`: more directories (paths inside the tree) not entered."""
    base = Path(root)
    if not base.is_dir():
        raise UsageError(f"{root}: not a directory")
    cats = list(catalogers) if catalogers is not None else all_catalogers()
    tree = Tree(base)
    out = Catalog(root=str(base))
    wanted: list[tuple[Cataloger, str]] = []
    for inner, entry in _walk(base, SKIP_DIRS | {"/" + d.strip("/") for d in skip}):
        out.files_seen += 1
        for cat in cats:
            try:
                if cat.wants(inner, entry.name, entry):
                    wanted.append((cat, inner))
            except OSError:
                continue
    seen: set[tuple[tuple[str, str, str], str]] = set()
    for cat, inner in wanted:
        try:
            found = list(cat.read(tree, inner))
        except PartlyRead as e:
            found = e.packages
            out.errors.extend(e.problems)
        except UnreadableFile as e:
            out.errors.append((inner, str(e)))
            continue
        for pkg in found:
            k = (pkg.key, pkg.path)
            if k not in seen:
                seen.add(k)
                out.packages.append(pkg)
    return out
