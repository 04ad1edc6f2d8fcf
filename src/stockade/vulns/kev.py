"""CISA's Known Exploited Vulnerabilities catalogue, from its CSV or its JSON.

The JSON is ``{"catalogVersion", "dateReleased", "vulnerabilities": [{"cveID", ...}]}``; the CSV
has a header row with the same field names (``cveID,vendorProject,product,vulnerabilityName,
dateAdded,...``). A row without a CVE id is a problem naming the row; the rest is read.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from stockade.errors import UsageError
from stockade.model.advisory import KevEntry

__all__ = ["KevFeed", "read_kev"]


@dataclass(slots=True)
class KevFeed:
    """What one KEV file held: its entries, its release date if it says, and the rows it could not read."""

    entries: list[KevEntry] = field(default_factory=list)
    released: str | None = None
    problems: list[str] = field(default_factory=list)


def _entry(row: dict[str, Any]) -> KevEntry | None:
    cve = str(row.get("cveID") or "").strip()
    if not cve:
        return None
    return KevEntry(
        cve=cve,
        vendor=str(row.get("vendorProject") or ""),
        product=str(row.get("product") or ""),
        name=str(row.get("vulnerabilityName") or ""),
        date_added=str(row.get("dateAdded") or ""),
        due_date=str(row.get("dueDate") or ""),
        ransomware=str(row.get("knownRansomwareCampaignUse") or ""),
    )


def read_kev(path: Path) -> KevFeed:
    """The KEV catalogue in `path` (JSON or CSV, told by its content)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UsageError(f"{path}: {e.strerror or e}") from e
    feed = KevFeed()
    text = raw.lstrip()
    if text.startswith(b"{"):
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise UsageError(f"{path}: not valid JSON: {e}") from e
        rows = doc.get("vulnerabilities") if isinstance(doc, dict) else None
        if not isinstance(rows, list):
            raise UsageError(f"{path}: not a KEV catalogue (no 'vulnerabilities' list)")
        feed.released = str(doc.get("dateReleased") or "") or None
    else:
        reader = csv.DictReader(io.StringIO(raw.decode("utf-8-sig", "replace")))
        if not reader.fieldnames or "cveID" not in reader.fieldnames:
            raise UsageError(f"{path}: not a KEV catalogue (no cveID column)")
        rows = list(reader)
    for i, row in enumerate(rows, 1):
        entry = _entry(row) if isinstance(row, dict) else None
        if entry is None:
            feed.problems.append(f"{path}: entry {i} has no cveID")
        else:
            feed.entries.append(entry)
    if feed.released is None and feed.entries:
        feed.released = max(e.date_added for e in feed.entries) or None
    return feed
