"""A security advisory (an OSV record) and the priority feeds beside it (CISA KEV, EPSS).

An :class:`Advisory` keeps what matching needs of an OSV record: the packages it affects with
their version ranges and version lists, its aliases, its severity and whether it was withdrawn.
Ecosystems are split as :class:`~stockade.model.package.Package` has them: OSV's ``Debian:12``
is ecosystem ``Debian`` with distro ``12``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "SEVERITIES",
    "Advisory",
    "Affected",
    "EpssScore",
    "KevEntry",
    "Range",
    "normalize_name",
    "split_ecosystem",
]

#: severity labels, most severe first
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN")


def split_ecosystem(ecosystem: str) -> tuple[str, str | None]:
    """OSV's ``Ecosystem:release`` as (ecosystem, release or None): ``Debian:12`` -> ("Debian", "12")."""
    base, sep, release = ecosystem.partition(":")
    return base.strip(), (release.strip() or None) if sep else None


_PEP503 = re.compile(r"[-_.]+")
#: ecosystems whose names compare case-insensitively
_CASELESS = frozenset({"PyPI", "npm", "crates.io", "NuGet", "RubyGems", "Packagist", "Hex", "Pub"})
_OS = frozenset(
    {
        "Debian",
        "Ubuntu",
        "Alpine",
        "Wolfi",
        "Chainguard",
        "Red Hat",
        "Rocky Linux",
        "AlmaLinux",
        "openSUSE",
        "SUSE",
    }
)


def normalize_name(ecosystem: str, name: str) -> str:
    """A package name as advisories and packages meet: PEP 503 for PyPI, lower case where the
    ecosystem ignores case (OS packages, npm, crates.io...), as it is elsewhere (Go, Maven)."""
    base = ecosystem.partition(":")[0]
    n = name.strip()
    if base == "PyPI":
        return _PEP503.sub("-", n).lower()
    if base in _CASELESS or base in _OS:
        return n.lower()
    return n


@dataclass(frozen=True, slots=True)
class Range:
    """One OSV range: its type (ECOSYSTEM, SEMVER, GIT) and events, each ``(kind, version)`` with kind
    ``introduced``, ``fixed``, ``last_affected`` or ``limit``."""

    type: str
    events: tuple[tuple[str, str], ...]

    def as_dict(self) -> dict[str, Any]:
        """The range as JSON."""
        return {"type": self.type, "events": [[k, v] for k, v in self.events]}


@dataclass(frozen=True, slots=True)
class Affected:
    """A package an advisory affects: where (ecosystem, distro), which versions (ranges, list)."""

    ecosystem: str
    name: str
    distro: str | None = None
    ranges: tuple[Range, ...] = ()
    versions: tuple[str, ...] = ()
    purl: str | None = None
    #: a severity given for this package only (``ecosystem_specific`` or ``severity`` of the entry)
    severity: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The affected package as JSON."""
        return {
            "ecosystem": self.ecosystem,
            "name": self.name,
            "distro": self.distro,
            "ranges": [r.as_dict() for r in self.ranges],
            "versions": list(self.versions),
            "purl": self.purl,
            "severity": self.severity,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Affected:
        """The inverse of :meth:`as_dict`."""
        return cls(
            ecosystem=d["ecosystem"],
            name=d["name"],
            distro=d.get("distro"),
            ranges=tuple(
                Range(r["type"], tuple((str(k), str(v)) for k, v in r["events"]))
                for r in d.get("ranges") or ()
            ),
            versions=tuple(d.get("versions") or ()),
            purl=d.get("purl"),
            severity=d.get("severity"),
        )


@dataclass(frozen=True, slots=True)
class Advisory:
    """One vulnerability record (module docstring). ``modified_ns`` orders two imports of one id."""

    id: str
    modified_ns: int
    summary: str = ""
    details: str = ""
    aliases: tuple[str, ...] = ()
    withdrawn: bool = False
    #: CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN
    severity: str = "UNKNOWN"
    cvss_score: float | None = None
    #: the CVSS vector the score comes from, if any
    cvss_vector: str | None = None
    affected: tuple[Affected, ...] = ()
    references: tuple[str, ...] = ()
    published: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The advisory as JSON (what the store keeps as its body)."""
        return {
            "id": self.id,
            "modified_ns": self.modified_ns,
            "summary": self.summary,
            "details": self.details,
            "aliases": list(self.aliases),
            "withdrawn": self.withdrawn,
            "severity": self.severity,
            "cvss_score": self.cvss_score,
            "cvss_vector": self.cvss_vector,
            "affected": [a.as_dict() for a in self.affected],
            "references": list(self.references),
            "published": self.published,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Advisory:
        """The inverse of :meth:`as_dict`."""
        return cls(
            id=d["id"],
            modified_ns=int(d.get("modified_ns") or 0),
            summary=d.get("summary") or "",
            details=d.get("details") or "",
            aliases=tuple(d.get("aliases") or ()),
            withdrawn=bool(d.get("withdrawn")),
            severity=d.get("severity") or "UNKNOWN",
            cvss_score=d.get("cvss_score"),
            cvss_vector=d.get("cvss_vector"),
            affected=tuple(Affected.from_dict(a) for a in d.get("affected") or ()),
            references=tuple(d.get("references") or ()),
            published=d.get("published"),
        )


@dataclass(frozen=True, slots=True)
class KevEntry:
    """One entry of CISA's Known Exploited Vulnerabilities catalogue."""

    cve: str
    vendor: str = ""
    product: str = ""
    name: str = ""
    date_added: str = ""
    due_date: str = ""
    ransomware: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The entry as JSON."""
        return {
            "cve": self.cve,
            "vendor": self.vendor,
            "product": self.product,
            "name": self.name,
            "date_added": self.date_added,
            "due_date": self.due_date,
            "ransomware": self.ransomware,
        }


@dataclass(frozen=True, slots=True)
class EpssScore:
    """FIRST's EPSS for one CVE: the probability of exploitation in the next 30 days, its percentile."""

    cve: str
    epss: float
    percentile: float
