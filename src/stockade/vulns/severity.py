"""Severity of an advisory: CVSS v3 / v4 vectors to a base score and its label, and the labels
databases give (GitHub's ``MODERATE`` is MEDIUM).

The ``cvss`` library (Red Hat's) computes the scores; a vector it cannot read gives no score.
"""

from __future__ import annotations

import functools

from cvss import CVSS2, CVSS3, CVSS4

from stockade.model.advisory import SEVERITIES

__all__ = ["label", "rank", "score_label", "vector_score"]

_LABELS = {
    "CRITICAL": "CRITICAL",
    "HIGH": "HIGH",
    "IMPORTANT": "HIGH",
    "MODERATE": "MEDIUM",
    "MEDIUM": "MEDIUM",
    "LOW": "LOW",
    "NEGLIGIBLE": "LOW",
    "MINOR": "LOW",
}


def label(text: str | None) -> str:
    """A database's severity word as CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN."""
    return _LABELS.get((text or "").strip().upper(), "UNKNOWN")


def score_label(score: float) -> str:
    """The CVSS v3/v4 qualitative rating of a base score (0 is LOW here: a scored advisory is known)."""
    if score >= 9.0:
        return "CRITICAL"
    if score >= 7.0:
        return "HIGH"
    if score >= 4.0:
        return "MEDIUM"
    return "LOW"


@functools.lru_cache(maxsize=4096)
def vector_score(vector: str) -> float | None:
    """The base score of a CVSS vector (``CVSS:3.1/...``, ``CVSS:4.0/...``, or a bare v2 vector),
    None when it cannot be read."""
    v = vector.strip()
    try:
        if v.startswith("CVSS:4"):
            return float(CVSS4(v).base_score)
        if v.startswith("CVSS:3"):
            return float(CVSS3(v).scores()[0])
        if v.startswith("AV:") or v.startswith("(AV:"):
            return float(CVSS2(v.strip("()")).scores()[0])
    except Exception:  # the library raises its own CVSS*MalformedError and friends
        return None
    return None


def rank(severity: str) -> int:
    """0 for CRITICAL up to 4 for UNKNOWN: sorting by it puts the most severe first."""
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        return len(SEVERITIES) - 1
