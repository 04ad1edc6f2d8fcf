"""`stockade db import`: OSV records, the KEV catalogue and EPSS scores into the advisory store.

What a path holds is told by its content: a directory or a zip file is OSV records; a CSV whose
header has ``cveID`` (or a JSON with ``catalogVersion``/``vulnerabilities`` of ``cveID``s) is KEV;
a CSV starting ``#model_version`` or ``cve,epss,percentile`` (gzipped or not) is EPSS; any other
``.json``/``.yaml`` file is an OSV record (or a list of them). Records are stored in batches, a
broken one is counted and reported with its file (and zip member) and the import goes on.
"""

from __future__ import annotations

import gzip
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stockade.errors import UsageError
from stockade.model.advisory import Advisory
from stockade.storage.advisories import AdvisoryStore, ImportCount
from stockade.vulns import epss, kev, osv

__all__ = ["ImportReport", "SourceReport", "import_paths", "kind_of"]

#: advisories stored per transaction
BATCH = 2000
#: problems listed in a report (all are counted)
MAX_LISTED = 200


@dataclass(slots=True)
class SourceReport:
    """One path imported: its kind, records read and changed, and its problems."""

    source: str
    kind: str
    records: int = 0
    changed: int = 0
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    feed_date: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON."""
        return {
            "source": self.source,
            "kind": self.kind,
            "records": self.records,
            "changed": self.changed,
            "problems": self.problem_count,
            "problem_list": self.problems,
            "feed_date": self.feed_date,
            "seconds": round(self.seconds, 3),
        }

    def problem(self, text: str) -> None:
        """Count a problem (list it while the list is short)."""
        self.problem_count += 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append(text)


@dataclass(slots=True)
class ImportReport:
    """Every path of one `stockade db import`."""

    sources: list[SourceReport] = field(default_factory=list)

    @property
    def problems(self) -> int:
        """Records or rows that could not be read, over all sources."""
        return sum(s.problem_count for s in self.sources)


def _head(path: Path, n: int = 4096) -> bytes:
    with open(path, "rb") as f:
        head = f.read(n)
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as g:
                head = g.read(n)
        except (OSError, EOFError):
            return b""
    return head.lstrip(b"\xef\xbb\xbf").lstrip()


def kind_of(path: Path) -> str:
    """osv, kev or epss (module docstring); UsageError for a path that does not exist."""
    if not path.exists():
        raise UsageError(f"{path}: no such file or directory")
    if path.is_dir() or path.suffix == ".zip":
        return "osv"
    try:
        head = _head(path)
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror or e}") from e
    first = head.split(b"\n", 1)[0].lower()
    if first.startswith(b"#model_version") or first.startswith(b"cve,epss"):
        return "epss"
    if b"cveid" in first and not head.startswith((b"{", b"[")):
        return "kev"
    if head.startswith(b"{") and b'"catalogVersion"' in head and b'"vulnerabilities"' in head:
        return "kev"
    if path.name.endswith(osv.SUFFIXES):
        return "osv"
    raise UsageError(
        f"{path}: not OSV records (.json, .yaml, a directory or a zip), a KEV catalogue or EPSS scores"
    )


def _import_osv(store: AdvisoryStore, path: Path, rep: SourceReport) -> None:
    batch: list[Advisory] = []
    total = ImportCount()

    def flush() -> None:
        if batch:
            total.add(store.add_advisories(batch, str(path)))
            batch.clear()

    for item in osv.read_records(path):
        if isinstance(item, osv.Problem):
            rep.problem(str(item))
            continue
        batch.append(item)
        if len(batch) >= BATCH:
            flush()
    flush()
    rep.records, rep.changed = total.records, total.changed


def import_paths(store: AdvisoryStore, paths: list[Path]) -> ImportReport:
    """Import every path (each told apart by :func:`kind_of`, all checked before any is read)."""
    kinds = [(p, kind_of(p)) for p in paths]
    report = ImportReport()
    for path, kind in kinds:
        t0 = time.monotonic()
        rep = SourceReport(str(path), kind)
        if kind == "osv":
            _import_osv(store, path, rep)
        elif kind == "kev":
            feed = kev.read_kev(path)
            for p in feed.problems:
                rep.problem(p)
            rep.records = rep.changed = store.add_kev(feed.entries)
            rep.feed_date = feed.released
        else:
            scores = epss.read_epss(path)
            for p in scores.problems:
                rep.problem(p)
            rep.records = rep.changed = store.add_epss(scores.scores)
            rep.feed_date = scores.score_date
        rep.seconds = time.monotonic() - t0
        store.record_source(
            str(path.resolve()),
            kind,
            records=rep.records,
            changed=rep.changed,
            problems=rep.problem_count,
            feed_date=rep.feed_date,
            detail={"seconds": round(rep.seconds, 3)},
        )
        report.sources.append(rep)
    return report
