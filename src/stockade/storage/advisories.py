"""Advisories in the store: OSV records, the packages they affect, their aliases, KEV and EPSS.

:class:`AdvisoryStore` is a repository over a :class:`~stockade.storage.store.Store`. Imports are
bulk (chunks of rows per statement) and idempotent: an advisory already stored is replaced only
by a record with a newer ``modified`` time. Matching asks for the advisories of many packages at
once (:meth:`AdvisoryStore.for_packages`) by (ecosystem, normalised name).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from stockade.model.advisory import Advisory, EpssScore, KevEntry, normalize_name
from stockade.model.timeutil import now_ns
from stockade.storage import tables
from stockade.storage.store import Store

__all__ = ["AdvisoryStore", "ImportCount"]

#: rows per statement (well under SQLite's limit of bound parameters)
CHUNK = 500


@dataclass(slots=True)
class ImportCount:
    """What one import call did: records seen, and how many were new or newer than the stored ones."""

    records: int = 0
    changed: int = 0

    def add(self, other: ImportCount) -> None:
        """Add another count to this one."""
        self.records += other.records
        self.changed += other.changed


def _chunks(items: Sequence[Any], n: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _cut(s: str) -> str:
    return s[: tables.INDEXED_LEN]


class AdvisoryStore:
    """Advisories, KEV and EPSS in the store (module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- writing ----------------------------------------------------------------------------------
    def add_advisories(self, advisories: Iterable[Advisory], source: str) -> ImportCount:
        """Store `advisories` (read from `source`); a stored id is replaced only by a newer record.
        Returns how many were given and how many changed the store."""
        newest: dict[str, Advisory] = {}
        for adv in advisories:
            key = _cut(adv.id)
            old = newest.get(key)
            if old is None or adv.modified_ns > old.modified_ns:
                newest[key] = adv
        count = ImportCount(records=len(newest))
        t = tables.advisories
        with self.store.writing("cannot store advisories") as conn:
            for chunk in _chunks(list(newest)):
                stored = dict(
                    (r[0], r[1])
                    for r in conn.execute(sa.select(t.c.id, t.c.modified_ns).where(t.c.id.in_(chunk)))
                )
                todo = [newest[i] for i in chunk if i not in stored or newest[i].modified_ns > stored[i]]
                if not todo:
                    continue
                count.changed += len(todo)
                ids = [_cut(a.id) for a in todo]
                conn.execute(
                    sa.delete(tables.advisory_packages).where(tables.advisory_packages.c.advisory_id.in_(ids))
                )
                conn.execute(
                    sa.delete(tables.advisory_aliases).where(tables.advisory_aliases.c.advisory_id.in_(ids))
                )
                conn.execute(
                    self.store.upsert(t, ("id",)),
                    [
                        {
                            "id": _cut(a.id),
                            "modified_ns": a.modified_ns,
                            "withdrawn": a.withdrawn,
                            "summary": a.summary,
                            "severity": a.severity,
                            "cvss_score": a.cvss_score,
                            "source": _cut(source),
                            "body": a.as_dict(),
                        }
                        for a in todo
                    ],
                )
                pkgs = {
                    (
                        _cut(a.id),
                        f.ecosystem[:64],
                        _cut(normalize_name(f.ecosystem, f.name)),
                        (f.distro or "")[:64],
                    )
                    for a in todo
                    for f in a.affected
                }
                if pkgs:
                    conn.execute(
                        sa.insert(tables.advisory_packages),
                        [{"advisory_id": i, "ecosystem": e, "name": n, "distro": d} for i, e, n, d in pkgs],
                    )
                aliases = {(_cut(a.id), _cut(al)) for a in todo for al in a.aliases}
                if aliases:
                    conn.execute(
                        sa.insert(tables.advisory_aliases),
                        [{"advisory_id": i, "alias": al} for i, al in aliases],
                    )
        return count

    def add_kev(self, entries: Sequence[KevEntry]) -> int:
        """Store KEV entries (one per CVE, the newest import wins); how many were given."""
        rows = {
            e.cve: {"cve": e.cve[:64], "date_added": e.date_added[:32], "body": e.as_dict()} for e in entries
        }
        with self.store.writing("cannot store the KEV catalogue") as conn:
            for chunk in _chunks(list(rows.values())):
                conn.execute(self.store.upsert(tables.kev, ("cve",)), list(chunk))
        return len(rows)

    def add_epss(self, scores: Sequence[EpssScore]) -> int:
        """Store EPSS scores (one per CVE, the newest import wins); how many were given."""
        rows = {s.cve: {"cve": s.cve[:64], "epss": s.epss, "percentile": s.percentile} for s in scores}
        with self.store.writing("cannot store EPSS scores") as conn:
            for chunk in _chunks(list(rows.values()), 5000):
                conn.execute(self.store.upsert(tables.epss, ("cve",)), list(chunk))
        return len(rows)

    def record_source(
        self,
        source: str,
        kind: str,
        *,
        records: int,
        changed: int,
        problems: int,
        feed_date: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Remember that `source` was imported now (for :meth:`status`)."""
        row = {
            "source": source[:1024],
            "kind": kind,
            "imported_ns": now_ns(),
            "records": records,
            "changed": changed,
            "problems": problems,
            "feed_date": feed_date[:64] if feed_date else None,
            "detail": detail or {},
        }
        with self.store.writing("cannot record an import") as conn:
            conn.execute(self.store.upsert(tables.advisory_sources, ("source",)), [row])

    # -- reading ----------------------------------------------------------------------------------
    def for_packages(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], list[Advisory]]:
        """The advisories naming each (ecosystem, name) (names normalised here), withdrawn included
        (the matcher skips them); a key with none is left out."""
        wanted = sorted({(eco, normalize_name(eco, name)) for eco, name in keys})
        p = tables.advisory_packages
        pairs: list[tuple[str, str, str]] = []
        with self.store.reading("cannot read advisories") as conn:
            by_eco: dict[str, list[str]] = {}
            for eco, name in wanted:
                by_eco.setdefault(eco, []).append(name)
            for eco, names in by_eco.items():
                for chunk in _chunks(names):
                    q = sa.select(p.c.ecosystem, p.c.name, p.c.advisory_id).where(
                        p.c.ecosystem == eco, p.c.name.in_(chunk)
                    )
                    pairs.extend((r[0], r[1], r[2]) for r in conn.execute(q))
        bodies = self.get_many({a for _, _, a in pairs})
        out: dict[tuple[str, str], list[Advisory]] = {}
        for eco, name, ident in sorted(pairs):
            if ident in bodies:
                out.setdefault((eco, name), []).append(bodies[ident])
        return out

    def get_many(self, ids: Iterable[str]) -> dict[str, Advisory]:
        """The stored advisories among `ids`."""
        t = tables.advisories
        out: dict[str, Advisory] = {}
        with self.store.reading("cannot read advisories") as conn:
            for chunk in _chunks(sorted(set(ids))):
                for ident, body in conn.execute(sa.select(t.c.id, t.c.body).where(t.c.id.in_(chunk))):
                    out[ident] = Advisory.from_dict(body)
        return out

    def related(self, names: Iterable[str]) -> dict[str, Advisory]:
        """The advisories known by any of `names`: by their own id or as an alias."""
        a = tables.advisory_aliases
        want = sorted(set(names))
        ids = set(want)
        with self.store.reading("cannot read advisory aliases") as conn:
            for chunk in _chunks(want):
                ids.update(conn.execute(sa.select(a.c.advisory_id).where(a.c.alias.in_(chunk))).scalars())
        return self.get_many(ids)

    def kev(self, cves: Iterable[str]) -> dict[str, KevEntry]:
        """The KEV entries of those of `cves` in the catalogue."""
        t = tables.kev
        out: dict[str, KevEntry] = {}
        with self.store.reading("cannot read the KEV catalogue") as conn:
            for chunk in _chunks(sorted(set(cves))):
                for cve, body in conn.execute(sa.select(t.c.cve, t.c.body).where(t.c.cve.in_(chunk))):
                    out[cve] = KevEntry(
                        **{k: str(v) for k, v in dict(body).items() if k in KevEntry.__slots__}
                    )
        return out

    def epss(self, cves: Iterable[str]) -> dict[str, EpssScore]:
        """The EPSS scores of those of `cves` that have one."""
        t = tables.epss
        out: dict[str, EpssScore] = {}
        with self.store.reading("cannot read EPSS scores") as conn:
            for chunk in _chunks(sorted(set(cves))):
                q = sa.select(t.c.cve, t.c.epss, t.c.percentile).where(t.c.cve.in_(chunk))
                for cve, e, pct in conn.execute(q):
                    out[cve] = EpssScore(cve, float(e), float(pct))
        return out

    def status(self) -> dict[str, Any]:
        """What the database holds: advisories per ecosystem (withdrawn counted apart), aliases,
        KEV and EPSS counts, and every import source with its time and counts."""
        a, p, s = tables.advisories, tables.advisory_packages, tables.advisory_sources
        with self.store.reading("cannot read the advisory database") as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(a)).scalar_one()
            withdrawn = conn.execute(
                sa.select(sa.func.count()).select_from(a).where(a.c.withdrawn)
            ).scalar_one()
            per_eco = conn.execute(
                sa.select(
                    p.c.ecosystem,
                    sa.func.count(sa.distinct(p.c.advisory_id)),
                    sa.func.count(sa.distinct(p.c.name)),
                )
                .group_by(p.c.ecosystem)
                .order_by(p.c.ecosystem)
            ).all()
            aliases = conn.execute(
                sa.select(sa.func.count()).select_from(tables.advisory_aliases)
            ).scalar_one()
            kev_n = conn.execute(sa.select(sa.func.count()).select_from(tables.kev)).scalar_one()
            epss_n = conn.execute(sa.select(sa.func.count()).select_from(tables.epss)).scalar_one()
            sources = conn.execute(sa.select(s).order_by(s.c.imported_ns.desc())).mappings().all()
        src = [
            {
                "source": r["source"],
                "kind": r["kind"],
                "imported_ns": r["imported_ns"],
                "records": r["records"],
                "changed": r["changed"],
                "problems": r["problems"],
                "feed_date": r["feed_date"],
            }
            for r in sources
        ]

        def last(kind: str) -> dict[str, Any] | None:
            return next((x for x in src if x["kind"] == kind), None)

        kev_src, epss_src = last("kev"), last("epss")
        return {
            "advisories": total,
            "withdrawn": withdrawn,
            "aliases": aliases,
            "ecosystems": [{"ecosystem": e, "advisories": n, "packages": m} for e, n, m in per_eco],
            "kev": {
                "entries": kev_n,
                "date": kev_src["feed_date"] if kev_src else None,
                "imported_ns": kev_src["imported_ns"] if kev_src else None,
            },
            "epss": {
                "scores": epss_n,
                "date": epss_src["feed_date"] if epss_src else None,
                "imported_ns": epss_src["imported_ns"] if epss_src else None,
            },
            "last_import_ns": src[0]["imported_ns"] if src else None,
            "sources": src,
        }
