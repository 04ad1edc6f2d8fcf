"""RPM packages: rpm's database in any of its formats (sqlite, ndb, Berkeley DB).

The database is looked for where rpm keeps it (``/var/lib/rpm``, ``/usr/lib/sysimage/rpm``);
its format is told from its first bytes, whatever its name. Each header becomes a package:
the version is ``[epoch:]version-release``, the source rpm's name and version-release are the
source, the files come from the header's dirnames/basenames. ``gpg-pubkey`` entries (the
signing keys rpm imported, not software; no advisory names them) are left out, where Trivy
lists them (docs/packages.md). A header that cannot be parsed, or a database broken part way,
is reported with the database's path; the headers read are packages still.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from stockade.model.package import Package
from stockade.packages.cataloger import PartlyRead, Tree, UnreadableFile
from stockade.packages.osrelease import OsRelease, detect
from stockade.packages.purl import purl
from stockade.packages.rpmdb import RpmDbError, bdb_blobs, ndb_blobs, sniff, sqlite_blobs
from stockade.packages.rpmheader import RpmHeader, parse_header

__all__ = ["RpmCataloger"]

DB_DIRS = ("/var/lib/rpm/", "/usr/lib/sysimage/rpm/")
DB_NAMES = frozenset({"rpmdb.sqlite", "Packages.db", "Packages"})
#: the ecosystem of an rpm system OSV has no ecosystem for
GENERIC = "RPM"


class RpmCataloger:
    """Installed rpm packages."""

    name = "rpm"

    def __init__(self) -> None:
        self._os: dict[str, OsRelease | None] = {}

    def wants(self, inner: str, filename: str, entry: os.DirEntry[str]) -> bool:  # noqa: ARG002
        """An rpm database file in one of rpm's database directories."""
        return filename in DB_NAMES and inner[: -len(filename)] in DB_DIRS

    def _release(self, tree: Tree) -> OsRelease | None:
        key = str(tree.root)
        if key not in self._os:
            self._os[key] = detect(tree)
        return self._os[key]

    def read(self, tree: Tree, inner: str) -> Iterable[Package]:
        """The packages of one rpm database."""
        data = tree.read_bytes(inner)
        kind = sniff(data)
        headers: list[RpmHeader] = []
        problems: list[tuple[str, str]] = []
        try:
            if kind == "sqlite":
                del data
                blobs: Iterable[bytes] = sqlite_blobs(tree.host_path(inner))
            elif kind == "ndb":
                blobs = ndb_blobs(data)
            elif kind == "bdb":
                blobs = bdb_blobs(data)
            else:
                raise UnreadableFile(f"{inner}: not an rpm database (sqlite, ndb or Berkeley DB)")
            for n, blob in enumerate(blobs):
                if kind == "bdb" and len(blob) < 8:
                    continue  # rpm's counter record (key 0) of old databases, not a header
                try:
                    headers.append(parse_header(blob))
                except ValueError as e:
                    problems.append((inner, f"header {n + 1}: {e}"))
        except (RpmDbError, OSError) as e:
            if not headers:
                raise UnreadableFile(f"{inner}: {e}") from e
            problems.append((inner, f"after {len(headers)} headers: {e}"))
        rel = self._release(tree)
        found = [self._package(inner, rel, h) for h in headers if h.name != "gpg-pubkey"]
        if problems:
            # the headers that parsed are packages still; each broken one is reported
            raise PartlyRead(found, problems)
        return found

    def _package(self, inner: str, rel: OsRelease | None, h: RpmHeader) -> Package:
        src = h.source
        ecosystem = (rel.ecosystem if rel is not None else None) or GENERIC
        return Package(
            name=h.name,
            version=h.evr,
            ecosystem=ecosystem,
            purl=purl(
                "rpm",
                h.name,
                f"{h.version}-{h.release}" if h.release else h.version,
                namespace=rel.purl_namespace if rel is not None else None,
                qualifiers={
                    "arch": h.arch,
                    "distro": rel.purl_distro if rel is not None else None,
                    "epoch": str(h.epoch) if h.epoch is not None else None,
                },
            ),
            path=inner,
            distro=rel.osv_release if rel is not None else None,
            source=src[0] if src else None,
            source_version=src[1] if src else None,
            licenses=(h.license,) if h.license else (),
            files=h.files,
            found_by=self.name,
        )
