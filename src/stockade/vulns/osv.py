"""OSV records: read from JSON or YAML files, directories (recursively) and zip files.

OSV's ecosystem exports (``all.zip``: one JSON record per member) and the advisory-database
repositories (a tree of ``.yaml``/``.json`` records, like ../shared/data/osv) are both read.
Each record becomes an :class:`~stockade.model.advisory.Advisory`; one that cannot be read is a
:class:`Problem` naming the file (and zip member) and the reason, and reading goes on.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import yaml

from stockade.model.advisory import Advisory, Affected, Range, split_ecosystem
from stockade.vulns import severity as sev

__all__ = ["Problem", "parse_record", "read_records", "record_files"]

SUFFIXES = (".json", ".yaml", ".yml")

_YamlLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Problem:
    """A record that could not be read: where (file, or ``file!member``) and why."""

    where: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


class RecordError(ValueError):
    """A record that is not valid OSV (the reason is the message)."""


def _time_ns(value: Any, field: str) -> int:
    """Nanoseconds since the epoch (a time before it, like OSV's placeholder ``0001-01-01``, is 0)."""
    if isinstance(value, datetime):
        return max(0, int(value.timestamp() * 1e9))
    if not isinstance(value, str) or not value:
        raise RecordError(f"{field!r} is missing or not a timestamp")
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise RecordError(f"{field!r} is not an RFC 3339 timestamp: {value!r}") from e
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return max(0, int(dt.timestamp() * 1e9))


def _strs(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RecordError(f"{field!r} is not a list")
    return tuple(str(v) for v in value)


def _ranges(raw: Any, where: str) -> tuple[Range, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise RecordError(f"{where}.ranges is not a list")
    out = []
    for i, r in enumerate(raw):
        if not isinstance(r, dict) or not isinstance(r.get("events"), list):
            raise RecordError(f"{where}.ranges[{i}] has no list of events")
        events: list[tuple[str, str]] = []
        for ev in r["events"]:
            if not isinstance(ev, dict) or len(ev) != 1:
                raise RecordError(f"{where}.ranges[{i}]: an event is not one of introduced/fixed/...")
            ((kind, ver),) = ev.items()
            if kind not in ("introduced", "fixed", "last_affected", "limit"):
                raise RecordError(f"{where}.ranges[{i}]: unknown event {kind!r}")
            events.append((kind, str(ver)))
        out.append(Range(str(r.get("type") or "").upper(), tuple(events)))
    return tuple(out)


def _severity_of(entries: Any) -> tuple[str | None, float | None]:
    """The best (highest versioned) CVSS vector among OSV ``severity`` entries, and its score."""
    best: tuple[str | None, float | None] = (None, None)
    if not isinstance(entries, list):
        return best
    order = {"CVSS_V4": 3, "CVSS_V3": 2, "CVSS_V2": 1}
    ranked = sorted(
        (e for e in entries if isinstance(e, dict) and isinstance(e.get("score"), str)),
        key=lambda e: -order.get(str(e.get("type")), 0),
    )
    for e in ranked:
        score = sev.vector_score(e["score"])
        if score is not None:
            return e["score"], score
    return best


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_record(data: Any) -> Advisory:
    """An OSV record (decoded JSON/YAML) as an Advisory; RecordError says what is wrong."""
    if not isinstance(data, dict):
        raise RecordError("not an OSV record (not a mapping)")
    ident = data.get("id")
    if not isinstance(ident, str) or not ident.strip():
        raise RecordError("no 'id'")
    modified = _time_ns(data.get("modified"), "modified")
    raw_affected = data.get("affected") or []
    if not isinstance(raw_affected, list):
        raise RecordError("'affected' is not a list")
    affected = []
    for i, a in enumerate(raw_affected):
        where = f"affected[{i}]"
        if not isinstance(a, dict):
            raise RecordError(f"{where} is not a mapping")
        pkg = a.get("package")
        if not isinstance(pkg, dict) or not pkg.get("name") or not pkg.get("ecosystem"):
            raise RecordError(f"{where}.package has no name or ecosystem")
        eco, distro = split_ecosystem(str(pkg["ecosystem"]))
        specific = _mapping(a.get("ecosystem_specific"))
        db_specific = _mapping(a.get("database_specific"))
        vector, _ = _severity_of(a.get("severity"))
        entry_sev = None
        if vector is not None:
            entry_sev = sev.score_label(sev.vector_score(vector) or 0.0)
        elif sev.label(specific.get("severity") or db_specific.get("severity")) != "UNKNOWN":
            entry_sev = sev.label(specific.get("severity") or db_specific.get("severity"))
        affected.append(
            Affected(
                ecosystem=eco,
                name=str(pkg["name"]),
                distro=distro,
                ranges=_ranges(a.get("ranges"), where),
                versions=_strs(a.get("versions"), f"{where}.versions"),
                purl=str(pkg["purl"]) if pkg.get("purl") else None,
                severity=entry_sev,
            )
        )
    vector, score = _severity_of(data.get("severity"))
    db = _mapping(data.get("database_specific"))
    if score is not None:
        label = sev.score_label(score)
    else:
        label = sev.label(db.get("severity"))
        if label == "UNKNOWN":
            labels = [a.severity for a in affected if a.severity]
            label = min(labels, key=sev.rank) if labels else "UNKNOWN"
    refs = data.get("references") or []
    summary = data.get("summary") or ""
    details = str(data.get("details") or "")
    if not summary and details:
        summary = details.strip().split("\n", 1)[0][:200]
    return Advisory(
        id=ident.strip(),
        modified_ns=modified,
        summary=str(summary),
        details=details,
        aliases=tuple(a for a in _strs(data.get("aliases"), "aliases") if a != ident),
        withdrawn=bool(data.get("withdrawn")),
        severity=label,
        cvss_score=score,
        cvss_vector=vector,
        affected=tuple(affected),
        references=tuple(str(r["url"]) for r in refs if isinstance(r, dict) and r.get("url")),
        published=str(data["published"]) if data.get("published") else None,
    )


def _decode(raw: bytes, name: str) -> Any:
    if name.endswith(".json"):
        return orjson.loads(raw)
    return yaml.load(raw, Loader=_YamlLoader)  # a safe loader (C or pure Python)


def _records(raw: bytes, name: str, where: str) -> Iterator[Advisory | Problem]:
    try:
        data = _decode(raw, name)
    except (orjson.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as e:
        yield Problem(where, f"not valid {'JSON' if name.endswith('.json') else 'YAML'}: {e}")
        return
    items = data if isinstance(data, list) else [data]  # some exports hold a list of records
    for item in items:
        try:
            yield parse_record(item)
        except RecordError as e:
            ident = item.get("id") if isinstance(item, dict) else None
            yield Problem(where + (f" ({ident})" if isinstance(ident, str) else ""), str(e))


def record_files(path: Path) -> Iterator[Path]:
    """The record files under a directory (sorted, recursively), or the file itself."""
    if path.is_dir():
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for f in sorted(filenames):
                if f.endswith(SUFFIXES) or f.endswith(".zip"):
                    yield Path(dirpath) / f
    else:
        yield path


def read_records(path: Path) -> Iterator[Advisory | Problem]:
    """Every record in `path` (a record file, a zip of them, or a directory of both), in order;
    a record that cannot be read is a Problem in the stream."""
    for f in record_files(path):
        if f.suffix == ".zip":
            try:
                with zipfile.ZipFile(f) as z:
                    for member in z.infolist():
                        if member.is_dir() or not member.filename.endswith(SUFFIXES):
                            continue
                        yield from _records(z.read(member), member.filename, f"{f}!{member.filename}")
            except (zipfile.BadZipFile, OSError) as e:
                yield Problem(str(f), f"cannot read the zip file: {e}")
            continue
        try:
            raw = f.read_bytes()
        except OSError as e:
            yield Problem(str(f), e.strerror or str(e))
            continue
        yield from _records(raw, f.name, str(f))
