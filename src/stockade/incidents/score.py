"""An incident's risk score (0-100) and its rank among others.

The score grows with what a responder weighs first:

* the worst priority among its alerts (Critical 50, Error 40, Warning 30, Notice 20, ...);
* breadth: each ATT&CK tactic beyond the first, +6;
* progression: each tactic that appeared after an earlier-stage one in kill-chain order (execution,
  then credential access, then command and control), +8: an attack moving forward;
* impact: +10 once any alert names privilege escalation, credential access, lateral movement,
  command and control, exfiltration or impact;
* variety and volume: +4 per doubling of distinct rules, +2 per doubling of alerts (so a flood of
  one noisy rule does not outrank a short, varied attack chain).

Ranking puts active incidents (open, investigating, contained) before resolved ones, then the
highest score, then the most recent.
"""

from __future__ import annotations

import math
from typing import Final

from stockade.model.alert import PRIORITIES, priority_rank
from stockade.model.attack import tactic_rank
from stockade.model.incident import Incident

__all__ = ["PRIORITY_POINTS", "rank_key", "score", "severity_of", "worse_priority"]

PRIORITY_POINTS: Final[dict[str, int]] = dict(zip(PRIORITIES, (60, 55, 50, 40, 30, 20, 10, 5), strict=True))
_HIGH_IMPACT: Final[frozenset[str]] = frozenset(
    {
        "privilege_escalation",
        "credential_access",
        "lateral_movement",
        "command_and_control",
        "exfiltration",
        "impact",
    }
)


def _progression(incident: Incident) -> int:
    """How many tactics appeared after an earlier-stage one (tactics taken in first-seen order)."""
    steps, best = 0, -1
    for tactic in sorted(incident.tactics, key=lambda t: incident.tactic_first_ns.get(t, 0)):
        rank = tactic_rank(tactic)
        if best >= 0 and rank > best:
            steps += 1
        best = max(best, rank)
    return steps


def score(incident: Incident) -> float:
    """The incident's risk score (module docstring), 0 to 100."""
    s = float(PRIORITY_POINTS.get(incident.priority, 5))
    n_tactics = len(incident.tactics)
    s += 6 * max(0, n_tactics - 1)
    s += 8 * _progression(incident)
    if _HIGH_IMPACT.intersection(incident.tactics):
        s += 10
    s += 4 * math.log2(max(1, len(incident.rules)))
    s += 2 * math.log2(max(1, incident.alert_count))
    return round(min(100.0, s), 1)


def severity_of(value: float) -> str:
    """critical (80+), high (60+), medium (35+) or low."""
    if value >= 80:
        return "critical"
    if value >= 60:
        return "high"
    if value >= 35:
        return "medium"
    return "low"


def rank_key(incident: Incident) -> tuple[int, float, int]:
    """Sort key: active first, then highest score, then most recent (ascending sort)."""
    return (0 if incident.active else 1, -incident.score, -incident.last_ns)


def worse_priority(a: str, b: str) -> str:
    """The more severe of two priorities."""
    return a if priority_rank(a) <= priority_rank(b) else b
