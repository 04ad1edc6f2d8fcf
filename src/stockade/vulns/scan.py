"""A scan for pipelines: packages matched, then the findings kept by severity, fix and ignore file.

:func:`parse_severities` reads ``--severity``: a list (``CRITICAL,HIGH``: exactly those, as
Trivy's) or a threshold (``HIGH+`` or ``>=HIGH``: that one and the more severe). :func:`select`
splits the matched findings into those reported and those left out (with why), the numbers
`stockade scan` prints and its exit code rests on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from stockade.errors import UsageError
from stockade.model.advisory import SEVERITIES
from stockade.model.package import Finding
from stockade.vulns import severity as sev
from stockade.vulns.ignore import IgnoreEntry, IgnoreList

__all__ = ["Selection", "parse_severities", "select"]


def parse_severities(value: str | None) -> frozenset[str]:
    """The severities ``--severity`` keeps (all when None)."""
    if value is None or not value.strip():
        return frozenset(SEVERITIES)
    text = value.strip().upper()
    threshold = text.startswith(">=") or text.endswith("+")
    names = [n.strip() for n in text.removeprefix(">=").removesuffix("+").split(",") if n.strip()]
    bad = [n for n in names if n not in SEVERITIES]
    if bad or not names:
        raise UsageError(
            f"--severity {value!r}: unknown severity {', '.join(bad) or '(none)'}; "
            f"give a list of {', '.join(SEVERITIES)} or a threshold like HIGH+"
        )
    if threshold:
        if len(names) != 1:
            raise UsageError(f"--severity {value!r}: a threshold is one severity (HIGH+ or >=HIGH)")
        return frozenset(s for s in SEVERITIES if sev.rank(s) <= sev.rank(names[0]) and s != "UNKNOWN")
    return frozenset(names)


@dataclass(slots=True)
class Selection:
    """The findings reported, and those left out by severity, by having no fix, or by the ignore file."""

    reported: list[Finding] = field(default_factory=list)
    below_severity: int = 0
    unfixed: int = 0
    ignored: list[tuple[Finding, IgnoreEntry]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Reported findings per severity (every severity present, most severe first)."""
        c = Counter(f.severity for f in self.reported)
        return {s: c.get(s, 0) for s in SEVERITIES}


def select(
    findings: Sequence[Finding],
    severities: frozenset[str],
    *,
    ignore_unfixed: bool = False,
    ignores: IgnoreList | None = None,
) -> Selection:
    """Split `findings` (module docstring)."""
    out = Selection()
    for f in findings:
        if f.severity not in severities:
            out.below_severity += 1
            continue
        if ignore_unfixed and not f.fixed:
            out.unfixed += 1
            continue
        entry = ignores.ignoring(f) if ignores is not None else None
        if entry is not None:
            out.ignored.append((f, entry))
            continue
        out.reported.append(f)
    return out
