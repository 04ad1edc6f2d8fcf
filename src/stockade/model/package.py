"""A software package found in a root filesystem, and a vulnerability finding about one.

One vocabulary for every cataloger (dpkg, apk, rpm, Python, npm, Go, Java, Rust), the SBOM
writers, the advisory matcher and the inventory. Ecosystem names are OSV's (``Debian``,
``Alpine``, ``Red Hat``, ``PyPI``, ``npm``, ``Go``, ``Maven``, ``crates.io``), so a package
meets its advisories without translation; ``distro`` carries the release OSV appends
(``Debian:12`` is ecosystem ``Debian`` with distro ``12``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Finding", "Package"]


@dataclass(frozen=True, slots=True)
class Package:
    """One installed package: what it is, where it was found, and the files it owns.

    ``path`` is where the cataloger read it, as an absolute path inside the scanned root
    (``/var/lib/dpkg/status``, ``/usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA``,
    ``/app/server`` for a Go binary, ``/app/lib.jar!/BOOT-INF/lib/x.jar`` inside nested jars).
    ``files`` are the files the package installed (absolute inside the root), where the package
    database says so: they tie a file a process loaded to the package.
    """

    name: str
    version: str
    ecosystem: str
    purl: str
    path: str
    #: the OS release for OS packages (``12``, ``v3.19``), OSV's ``Ecosystem:release`` suffix
    distro: str | None = None
    #: the source package (Debian, Alpine origin, RPM source rpm) and its version, where known;
    #: OS advisories name source packages
    source: str | None = None
    source_version: str | None = None
    licenses: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    #: the cataloger that found it (``dpkg``, ``python``, ``gobinary``, ...)
    found_by: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        """(ecosystem, name, version): two finds of one key in one tree are the same package."""
        return (self.ecosystem, self.name, self.version)

    def as_dict(self) -> dict[str, Any]:
        """The package as JSON (files left out: they can be thousands)."""
        return {
            "name": self.name,
            "version": self.version,
            "ecosystem": self.ecosystem,
            "purl": self.purl,
            "path": self.path,
            "distro": self.distro,
            "source": self.source,
            "source_version": self.source_version,
            "licenses": list(self.licenses),
            "found_by": self.found_by,
        }


@dataclass(frozen=True, slots=True)
class Finding:
    """An advisory that affects a package found somewhere.

    ``as_dict`` is the contract of ``stockade scan --output json`` (one finding per line).
    """

    package: Package
    #: the advisory's own id (``PYSEC-2021-76``, ``GHSA-...``, ``CVE-...``)
    id: str
    aliases: tuple[str, ...]
    #: the versions that fix it on this package's branch, empty when no fix is known
    fixed: tuple[str, ...]
    #: CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN
    severity: str
    summary: str = ""
    cvss_score: float | None = None
    kev: bool = False
    epss: float | None = None
    references: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """One line of ``stockade scan --output json``."""
        p = self.package
        return {
            "package": p.name,
            "version": p.version,
            "ecosystem": p.ecosystem,
            "purl": p.purl,
            "id": self.id,
            "aliases": list(self.aliases),
            "fixed": list(self.fixed) or None,
            "severity": self.severity,
            "path": p.path,
            "summary": self.summary,
            "cvss_score": self.cvss_score,
            "kev": self.kev,
            "epss": self.epss,
            **self.extra,
        }
