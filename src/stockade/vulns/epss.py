"""FIRST's EPSS scores, from the daily CSV (gzipped or not).

The file starts with a comment line ``#model_version:v2025.03.14,score_date:2026-12-06T00:00:00+0000``,
then the header ``cve,epss,percentile`` and one row per CVE. A row that cannot be read is a problem
naming its line; the rest is read.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

from stockade.errors import UsageError
from stockade.model.advisory import EpssScore

__all__ = ["EpssFeed", "read_epss"]


@dataclass(slots=True)
class EpssFeed:
    """What one EPSS file held: its scores, model version and score date, and the lines it could not read."""

    scores: list[EpssScore] = field(default_factory=list)
    model_version: str | None = None
    score_date: str | None = None
    problems: list[str] = field(default_factory=list)


def _comment(line: str, feed: EpssFeed) -> None:
    for part in line.lstrip("#").split(","):
        key, _, value = part.partition(":")
        if key.strip() == "model_version":
            feed.model_version = value.strip()
        elif key.strip() == "score_date":
            feed.score_date = value.strip()


def read_epss(path: Path) -> EpssFeed:
    """The EPSS scores in `path`."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror or e}") from e
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise UsageError(f"{path}: a broken gzip file: {e}") from e
    feed = EpssFeed()
    header_seen = False
    for n, line in enumerate(raw.decode("utf-8-sig", "replace").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            _comment(line, feed)
            continue
        cells = [c.strip() for c in line.split(",")]
        if not header_seen:
            if [c.lower() for c in cells[:3]] != ["cve", "epss", "percentile"]:
                raise UsageError(f"{path}: not an EPSS file (line {n} is not 'cve,epss,percentile')")
            header_seen = True
            continue
        try:
            cve, epss, pct = cells[0], float(cells[1]), float(cells[2])
            if not cve.upper().startswith("CVE-"):
                raise ValueError(f"{cve!r} is not a CVE id")
        except (ValueError, IndexError) as e:
            feed.problems.append(f"{path}:{n}: {e}")
            continue
        feed.scores.append(EpssScore(cve.upper(), epss, pct))
    if not header_seen:
        raise UsageError(f"{path}: not an EPSS file (no 'cve,epss,percentile' header)")
    return feed
