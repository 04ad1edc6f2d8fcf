"""Matching packages against the advisory store: which advisories affect which package.

A package meets the advisories of its ecosystem by normalised name (PEP 503 for PyPI); OS
packages (Debian, Ubuntu, Alpine, RPM distributions) also meet those naming their source package
(OS advisories name sources), compared with the source version. An advisory for a release
(``Debian:12``) meets only packages of that release. A withdrawn advisory matches nothing.

Advisories known by several ids (a PYSEC record and a GHSA record of one CVE) are one finding,
with the other ids as aliases. The finding's ``fixed`` lists the first fix version above the
installed one on each affected range the package is in, so a fix at or below the installed version
is never reported. Severity is the advisory's (CVSS score first), else an alias record's, else
UNKNOWN; KEV and EPSS are looked up by the CVE ids among the ids and aliases.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from stockade.model.advisory import Advisory, normalize_name
from stockade.model.package import Finding, Package
from stockade.storage.advisories import AdvisoryStore
from stockade.vulns import severity as sev
from stockade.vulns.versions import InvalidVersionError, affected_by, scheme

__all__ = ["MatchProblems", "distro_matches", "match_packages"]

#: ecosystems whose advisories name source packages
SOURCE_SCHEMES = frozenset({"deb", "apk", "rpm"})


@dataclass(slots=True)
class MatchProblems:
    """What matching could not evaluate (a version its ecosystem's scheme cannot read), counted."""

    items: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        """Record one problem (each text once)."""
        if text not in self.items:
            self.items.append(text)


def _release(d: str) -> list[str]:
    return d.partition(":")[0].strip().lower().removeprefix("v").split(".")


def distro_matches(advisory_distro: str | None, package_distro: str | None) -> bool:
    """Whether an advisory for release `advisory_distro` (None: any) applies to a package of
    `package_distro` (None: unknown, so any): ``12`` meets ``12.5``, ``v3.19`` meets ``3.19.1``."""
    if not advisory_distro or not package_distro:
        return True
    a, p = _release(advisory_distro), _release(package_distro)
    n = min(len(a), len(p))
    return a[:n] == p[:n]


def _names(pkg: Package) -> list[tuple[str, str]]:
    """(name, version) pairs the package is known by to advisories."""
    out = [(pkg.name, pkg.version)]
    if pkg.source and scheme(pkg.ecosystem) in SOURCE_SCHEMES:
        src = (pkg.source, pkg.source_version or pkg.version)
        if (
            normalize_name(pkg.ecosystem, src[0]) != normalize_name(pkg.ecosystem, pkg.name)
            or src[1] != pkg.version
        ):
            out.append(src)
    return out


def _id_rank(ident: str) -> tuple[int, str]:
    return (1 if ident.startswith("CVE-") else 0, ident)


@dataclass(slots=True)
class _Hit:
    advisory: Advisory
    fixed: list[str]
    entry_severity: str | None


def _groups(hits: list[_Hit]) -> list[list[_Hit]]:
    """Hits that share an id or alias, together (union of overlapping id sets)."""
    groups: list[tuple[set[str], list[_Hit]]] = []
    for h in hits:
        names = {h.advisory.id, *h.advisory.aliases}
        joined = [g for g in groups if g[0] & names]
        merged_names, merged_hits = set(names), [h]
        for g in joined:
            merged_names |= g[0]
            merged_hits = g[1] + merged_hits
            groups.remove(g)
        groups.append((merged_names, merged_hits))
    return [g[1] for g in groups]


def _hits(
    pkg: Package, candidates: dict[tuple[str, str], list[Advisory]], problems: MatchProblems | None
) -> list[_Hit]:
    """The advisories that affect `pkg` (by its name or its source's), each with its fixes."""
    hits: dict[str, _Hit] = {}
    for name, version in _names(pkg):
        norm = normalize_name(pkg.ecosystem, name)
        for adv in candidates.get((pkg.ecosystem, norm), ()):
            if adv.withdrawn:
                continue
            for entry in adv.affected:
                if entry.ecosystem != pkg.ecosystem or normalize_name(entry.ecosystem, entry.name) != norm:
                    continue
                if not distro_matches(entry.distro, pkg.distro):
                    continue
                try:
                    hit, fixed = affected_by(entry, version)
                except InvalidVersionError as e:
                    if problems is not None:
                        problems.add(f"{pkg.path}: {pkg.ecosystem} {name} {version}: {e}")
                    continue
                if hit:
                    h = hits.setdefault(adv.id, _Hit(adv, [], entry.severity))
                    h.fixed.extend(f for f in fixed if f not in h.fixed)
    return list(hits.values())


def match_packages(
    packages: Iterable[Package], advisories: AdvisoryStore, problems: MatchProblems | None = None
) -> list[Finding]:
    """The findings for `packages` (module docstring), in package order then most severe first.
    A package version its ecosystem cannot read is put in `problems` (when given) and skipped."""
    pkgs = list(packages)
    keys = {(p.ecosystem, name) for p in pkgs for name, _ in _names(p)}
    candidates = advisories.for_packages(keys)
    per_pkg: list[tuple[Package, list[_Hit]]] = []
    for pkg in pkgs:
        hits = _hits(pkg, candidates, problems)
        if hits:
            per_pkg.append((pkg, hits))
    # severity from alias records (e.g. a CVE record with the CVSS vector a PYSEC record lacks)
    all_names = {n for _, hs in per_pkg for h in hs for n in (h.advisory.id, *h.advisory.aliases)}
    related = advisories.related(all_names) if all_names else {}
    by_name: dict[str, list[Advisory]] = {}
    for adv in related.values():
        for n in (adv.id, *adv.aliases):
            by_name.setdefault(n, []).append(adv)
    cves = {n for n in all_names if n.startswith("CVE-")}
    cves |= {n for adv in related.values() for n in (adv.id, *adv.aliases) if n.startswith("CVE-")}
    kev = advisories.kev(cves) if cves else {}
    epss = advisories.epss(cves) if cves else {}
    findings: list[Finding] = []
    for pkg, hits in per_pkg:
        out: list[Finding] = []
        for group in _groups(hits):
            ids = sorted({h.advisory.id for h in group}, key=_id_rank)
            names = {n for h in group for n in (h.advisory.id, *h.advisory.aliases)}
            others = [a for n in names for a in by_name.get(n, ()) if _about(a, pkg)]
            names |= {n for a in others for n in (a.id, *a.aliases)}
            primary = ids[0]
            label, score = _severity(group, others)
            fixed: list[str] = []
            for h in group:
                fixed.extend(f for f in h.fixed if f not in fixed)
            my_cves = sorted(n for n in names if n.startswith("CVE-"))
            scores = [epss[c].epss for c in my_cves if c in epss]
            first = next(h.advisory for h in group if h.advisory.id == primary)
            summary = first.summary or next((h.advisory.summary for h in group if h.advisory.summary), "")
            out.append(
                Finding(
                    package=pkg,
                    id=primary,
                    aliases=tuple(sorted(names - {primary}, key=_id_rank)),
                    fixed=tuple(fixed),
                    severity=label,
                    summary=summary,
                    cvss_score=score,
                    kev=any(c in kev for c in my_cves),
                    epss=max(scores) if scores else None,
                    references=first.references,
                )
            )
        out.sort(key=lambda f: (sev.rank(f.severity), -(f.cvss_score or 0.0), f.id))
        findings.extend(out)
    return findings


def _about(adv: Advisory, pkg: Package) -> bool:
    """Whether an alias record speaks of `pkg` (it names no package, or this one): a record of the
    same CVE for another package lends neither its severity nor its ids."""
    if not adv.affected:
        return True
    names = {normalize_name(pkg.ecosystem, n) for n, _ in _names(pkg)}
    return any(
        a.ecosystem == pkg.ecosystem and normalize_name(a.ecosystem, a.name) in names for a in adv.affected
    )


def _severity(group: list[_Hit], others: list[Advisory]) -> tuple[str, float | None]:
    """The severity label and CVSS score of one merged finding: the package's own severity in an
    advisory, else the highest CVSS score among the records, else the most severe label given."""
    own = [h.entry_severity for h in group if h.entry_severity]
    records = [h.advisory for h in group] + others
    scored = [a for a in records if a.cvss_score is not None]
    best = max(scored, key=lambda a: a.cvss_score or 0.0) if scored else None
    if own:
        return min(own, key=sev.rank), best.cvss_score if best else None
    if best is not None:
        return sev.score_label(best.cvss_score or 0.0), best.cvss_score
    labels = [a.severity for a in records if a.severity != "UNKNOWN"]
    return (min(labels, key=sev.rank) if labels else "UNKNOWN"), None
