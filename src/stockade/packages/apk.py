"""Alpine (and Wolfi, Chainguard) packages: apk's installed database, ``/lib/apk/db/installed``.

One block of ``X:value`` lines per package, blocks separated by a blank line: ``P`` name, ``V``
version, ``A`` arch, ``L`` license, ``o`` origin (the source package, which Alpine's advisories
name), ``F`` a directory and the ``R`` lines after it its files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from stockade.model.package import Package
from stockade.packages.cataloger import Tree
from stockade.packages.osrelease import OsRelease, detect
from stockade.packages.purl import purl

__all__ = ["ApkCataloger"]

INSTALLED = frozenset({"/lib/apk/db/installed", "/usr/lib/apk/db/installed"})


class ApkCataloger:
    """Installed apk packages."""

    name = "apk"

    def __init__(self) -> None:
        self._os: dict[str, OsRelease | None] = {}

    def wants(self, inner: str, filename: str, entry: os.DirEntry[str]) -> bool:  # noqa: ARG002
        """apk's installed database."""
        return filename == "installed" and inner in INSTALLED

    def _release(self, tree: Tree) -> OsRelease | None:
        key = str(tree.root)
        if key not in self._os:
            self._os[key] = detect(tree)
        return self._os[key]

    def read(self, tree: Tree, inner: str) -> Iterable[Package]:
        """The packages of one installed database."""
        rel = self._release(tree)
        out: list[Package] = []
        block: dict[str, str] = {}
        files: list[str] = []
        cwd = ""

        def flush() -> None:
            name, version = block.get("P"), block.get("V")
            if name and version:
                out.append(self._package(inner, rel, block, tuple(files)))

        for line in tree.read_text(inner).splitlines():
            if not line.strip():
                flush()
                block, files, cwd = {}, [], ""
                continue
            key, sep, value = line.partition(":")
            if not sep or len(key) != 1:
                continue
            if key == "F":
                cwd = value
            elif key == "R":
                files.append(f"/{cwd}/{value}" if cwd else f"/{value}")
            elif key not in block:
                block[key] = value
        flush()
        return out

    def _package(
        self, inner: str, rel: OsRelease | None, b: dict[str, str], files: tuple[str, ...]
    ) -> Package:
        name, version = b["P"], b["V"]
        os_id = rel.id if rel is not None else "alpine"
        ecosystem = (rel.ecosystem if rel is not None else None) or "Alpine"
        return Package(
            name=name,
            version=version,
            ecosystem=ecosystem,
            purl=purl(
                "apk",
                name,
                version,
                namespace=os_id,
                qualifiers={"arch": b.get("A"), "distro": rel.purl_distro if rel is not None else None},
            ),
            path=inner,
            distro=rel.osv_release if rel is not None else None,
            source=b.get("o") or name,
            source_version=version,
            licenses=(b["L"],) if b.get("L") else (),
            files=files,
            found_by=self.name,
        )
