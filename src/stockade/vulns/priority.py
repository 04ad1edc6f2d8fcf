"""Ranking findings beyond CVSS: what a running workload really exposes to an attacker.

A finding's score (0-100) is the sum of parts, each explained in the output:

* **severity**: the CVSS base score times 4 (0-40); without a score, the severity's usual score
  (CRITICAL 9.5, HIGH 7.5, MEDIUM 5, LOW 2.5, UNKNOWN 4).
* **loaded**: +25 when a running process uses the package (its executable, a mapped shared library
  or extension module, or a file of it the sensor saw opened); 0 when none does (the package sits on
  disk).
* **exposed**: +15 when the workload listens on a port or receives connections.
* **fix**: +5 when a fixed version exists (the upgrade is at hand).
* **kev**: +10 when CISA's Known Exploited Vulnerabilities catalog lists it.
* **epss**: EPSS's probability of exploitation in the next 30 days times 10 (0-10).

The weights favour what is reachable: a loaded, exposed HIGH outranks an unloaded CRITICAL of the
same image. Pure: the runtime (:mod:`stockade.runtime.vulnwatch`) gathers the facts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from stockade.model.package import Finding

__all__ = [
    "SEVERITY_ORDER",
    "Context",
    "Loader",
    "Ranked",
    "at_least",
    "by_workload",
    "order",
    "rank",
    "score",
]

#: severities from the least to the most severe
SEVERITY_ORDER: Final = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")
#: the CVSS score a severity stands for when the advisory gives none
SEVERITY_SCORE: Final = {"CRITICAL": 9.5, "HIGH": 7.5, "MEDIUM": 5.0, "LOW": 2.5, "UNKNOWN": 4.0}
W_SEVERITY: Final = 4.0
W_LOADED: Final = 25.0
W_EXPOSED: Final = 15.0
W_FIX: Final = 5.0
W_KEV: Final = 10.0
W_EPSS: Final = 10.0


def at_least(severity: str, threshold: str) -> bool:
    """Whether `severity` is `threshold` or more severe (unknown names rank as UNKNOWN)."""
    order = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    return order.get(severity.upper(), 0) >= order.get(threshold.upper(), 0)


@dataclass(frozen=True, slots=True)
class Loader:
    """A process that uses a package: its pid, name, and how (``exe``, ``maps``, ``open``)."""

    pid: int | None
    comm: str
    via: str
    file: str

    def as_dict(self) -> dict[str, Any]:
        """As JSON."""
        return {"pid": self.pid, "comm": self.comm, "via": self.via, "file": self.file}


@dataclass(frozen=True, slots=True)
class Context:
    """Where a finding was found and what runs there: the workload (None: an image or a host),
    the asset (``container:<id>``, ``image:<ref>``, ``host:<name>``), whether it runs at all,
    the processes that use the package, and why the workload is exposed (``tcp/8080 listening``)."""

    asset: str
    workload: str | None = None
    name: str | None = None
    running: bool = False
    loaded_by: tuple[Loader, ...] = ()
    exposed_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Ranked:
    """A finding with its context, its score and the score's parts."""

    finding: Finding
    context: Context
    score: float
    #: (factor, points, why) in the order above
    parts: tuple[tuple[str, float, str], ...] = field(default=())

    @property
    def loaded(self) -> bool:
        """Whether a running process uses the package."""
        return bool(self.context.loaded_by)

    @property
    def exposed(self) -> bool:
        """Whether the workload is exposed."""
        return bool(self.context.exposed_by)

    def as_dict(self) -> dict[str, Any]:
        """The finding's fields (``stockade scan``'s) with the asset, the score and its parts."""
        c = self.context
        return {
            **self.finding.as_dict(),
            "asset": c.asset,
            "workload": c.workload,
            "name": c.name,
            "running": c.running,
            "loaded": self.loaded,
            "loaded_by": [ld.as_dict() for ld in c.loaded_by],
            "exposed": self.exposed,
            "exposed_by": list(c.exposed_by),
            "score": self.score,
            "score_parts": [{"factor": f, "points": p, "why": w} for f, p, w in self.parts],
        }


def score(finding: Finding, ctx: Context) -> Ranked:
    """The finding's score in `ctx` (module docstring), with its parts."""
    parts: list[tuple[str, float, str]] = []
    sev = finding.severity.upper()
    if finding.cvss_score is not None:
        base, why = finding.cvss_score, f"CVSS {finding.cvss_score:g}"
    else:
        base, why = SEVERITY_SCORE.get(sev, SEVERITY_SCORE["UNKNOWN"]), f"{sev} (no CVSS score)"
    parts.append(("severity", round(base * W_SEVERITY, 2), why))
    if ctx.loaded_by:
        who = ", ".join(sorted({f"{ld.comm}[{ld.pid}] ({ld.via})" for ld in ctx.loaded_by})[:3])
        parts.append(("loaded", W_LOADED, f"used by {who}"))
    else:
        parts.append(("loaded", 0.0, "not used by a running process" if ctx.running else "nothing runs it"))
    if ctx.exposed_by:
        parts.append(("exposed", W_EXPOSED, ", ".join(ctx.exposed_by[:3])))
    else:
        parts.append(("exposed", 0.0, "no listening port or ingress seen" if ctx.running else "not running"))
    if finding.fixed:
        parts.append(("fix", W_FIX, f"fixed in {', '.join(finding.fixed)}"))
    else:
        parts.append(("fix", 0.0, "no fixed version"))
    parts.append(("kev", W_KEV if finding.kev else 0.0, "in CISA KEV" if finding.kev else "not in KEV"))
    if finding.epss is not None:
        parts.append(("epss", round(finding.epss * W_EPSS, 2), f"EPSS {finding.epss:.3f}"))
    else:
        parts.append(("epss", 0.0, "no EPSS score"))
    total = round(sum(p for _, p, _ in parts), 2)
    return Ranked(finding, ctx, total, tuple(parts))


def order(r: Ranked) -> tuple[float, int, str, str, str]:
    """The sort key of the ranked list: highest score first, then more severe, id, package, asset."""
    sev = (
        SEVERITY_ORDER.index(r.finding.severity.upper())
        if r.finding.severity.upper() in SEVERITY_ORDER
        else 0
    )
    return (-r.score, -sev, r.finding.id, r.finding.package.name, r.context.asset)


def rank(items: Iterable[tuple[Finding, Context]]) -> list[Ranked]:
    """Every finding scored, highest first (ties: more severe, then by id, package, asset)."""
    return sorted((score(f, c) for f, c in items), key=order)


def by_workload(ranked: Sequence[Ranked]) -> dict[str, list[Ranked]]:
    """One ranked list per workload (the asset for an image or host), in the order given."""
    out: dict[str, list[Ranked]] = {}
    for r in ranked:
        out.setdefault(r.context.workload or r.context.asset, []).append(r)
    return out
