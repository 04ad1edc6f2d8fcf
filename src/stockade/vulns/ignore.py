"""The ignore file of `stockade scan --ignorefile`: findings accepted for a reason, until a date.

YAML, a list of entries under ``ignore:`` (or the list itself)::

    ignore:
      - id: CVE-2022-40899        # the advisory's id or any alias
        package: future           # optional: only for this package (name)
        purl: pkg:pypi/future     # optional: only for this purl (with @version: that version only)
        expires: 2027-03-31       # optional: after this day the entry no longer ignores
        reason: not reachable: we never parse cookies with it

An expired entry no longer ignores anything and is reported (the scan says so on stderr).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stockade.errors import UsageError
from stockade.model.advisory import normalize_name
from stockade.model.package import Finding

__all__ = ["IgnoreEntry", "IgnoreList", "load_ignorefile"]


@dataclass(frozen=True, slots=True)
class IgnoreEntry:
    """One entry: which finding (id or alias, optionally one package or purl), until when, why."""

    id: str
    package: str | None = None
    purl: str | None = None
    expires: dt.date | None = None
    reason: str = ""
    #: where it was written (``file:entry N``), for messages
    where: str = ""

    def expired(self, today: dt.date) -> bool:
        """Whether the entry has expired (it ignores through its expiry day)."""
        return self.expires is not None and today > self.expires

    def matches(self, f: Finding) -> bool:
        """Whether this entry names finding `f`."""
        if self.id != f.id and self.id not in f.aliases:
            return False
        p = f.package
        if self.package is not None and normalize_name(p.ecosystem, self.package) != normalize_name(
            p.ecosystem, p.name
        ):
            return False
        if self.purl is not None:
            want = self.purl.split("?", 1)[0]
            have = p.purl.split("?", 1)[0]
            if "@" in want:
                return want == have
            return have.split("@", 1)[0] == want
        return True


@dataclass(slots=True)
class IgnoreList:
    """The entries of one ignore file, and which have expired as of `today`."""

    entries: list[IgnoreEntry]
    today: dt.date

    @property
    def expired(self) -> list[IgnoreEntry]:
        """The entries past their expiry date (they ignore nothing)."""
        return [e for e in self.entries if e.expired(self.today)]

    def ignoring(self, f: Finding) -> IgnoreEntry | None:
        """The live entry that ignores `f`, if any."""
        return next((e for e in self.entries if not e.expired(self.today) and e.matches(f)), None)


def _date(value: Any, where: str) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise UsageError(f"{where}: 'expires' is not a date (YYYY-MM-DD): {value!r}") from None


def load_ignorefile(path: str | Path, today: dt.date | None = None) -> IgnoreList:
    """The entries of the ignore file at `path`; UsageError naming the file and entry for a bad one."""
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"{p}: cannot read the ignore file: {e.strerror or e}") from e
    except yaml.YAMLError as e:
        raise UsageError(f"{p}: not valid YAML: {e}") from e
    raw = doc.get("ignore") if isinstance(doc, dict) else doc
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise UsageError(f"{p}: expected a list of entries under 'ignore:'")
    entries = []
    for i, item in enumerate(raw, 1):
        where = f"{p}: entry {i}"
        if isinstance(item, str):
            item = {"id": item}
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"].strip():
            raise UsageError(f"{where}: needs an 'id' (the advisory's id or an alias)")
        unknown = set(item) - {"id", "package", "purl", "expires", "reason"}
        if unknown:
            raise UsageError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        entries.append(
            IgnoreEntry(
                id=item["id"].strip(),
                package=str(item["package"]) if item.get("package") else None,
                purl=str(item["purl"]) if item.get("purl") else None,
                expires=_date(item.get("expires"), where),
                reason=str(item.get("reason") or ""),
                where=where,
            )
        )
    return IgnoreList(entries, today or dt.datetime.now(dt.UTC).date())
