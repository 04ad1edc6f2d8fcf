"""Incidents in the store: the incidents, which alerts each holds, and their timelines.

:class:`IncidentStore` is a repository over a :class:`~stockade.storage.store.Store` (the same
database, locks and error translation as the other repositories). One writer, the runtime's
incident thread (:mod:`stockade.runtime.incidents`), saves incidents as the correlator changes
them; the API reads them and applies a responder's updates through that same runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from stockade.errors import NotFoundError
from stockade.model.incident import Incident, TimelineEntry
from stockade.storage import tables
from stockade.storage.store import Store

__all__ = ["IncidentStore"]

#: most alert ids a listing gives per incident (the newest); `show` gives them all
LIST_ALERT_IDS = 1000


def _row(inc: Incident) -> dict[str, Any]:
    return {
        "id": inc.id,
        "key": inc.key[: tables.INDEXED_LEN],
        "hostname": inc.hostname[: tables.INDEXED_LEN],
        "workload": inc.workload[: tables.INDEXED_LEN] if inc.workload else None,
        "status": inc.status,
        "owner": inc.owner[: tables.INDEXED_LEN] if inc.owner else None,
        "score": inc.score,
        "severity": inc.severity,
        "priority": inc.priority,
        "title": inc.title,
        "alert_count": inc.alert_count,
        "created_ns": inc.created_ns,
        "first_ns": inc.first_ns,
        "last_ns": inc.last_ns,
        "updated_ns": inc.updated_ns,
        "body": inc.body(),
    }


def _incident(r: Any) -> Incident:
    body = dict(r.body or {})
    return Incident(
        id=r.id,
        key=r.key,
        hostname=r.hostname,
        created_ns=r.created_ns,
        first_ns=r.first_ns,
        last_ns=r.last_ns,
        updated_ns=r.updated_ns,
        title=r.title,
        workload=r.workload,
        status=r.status,
        owner=r.owner,
        score=r.score,
        severity=r.severity,
        priority=r.priority,
        alert_count=r.alert_count,
        containers=list(body.get("containers") or []),
        rules=dict(body.get("rules") or {}),
        tactics=list(body.get("tactics") or []),
        tactic_first_ns={k: int(v) for k, v in (body.get("tactic_first_ns") or {}).items()},
        techniques=list(body.get("techniques") or []),
        pids=[int(p) for p in body.get("pids") or []],
        notes=list(body.get("notes") or []),
        notify_by_ns=body.get("notify_by_ns"),
        pending=list(body.get("pending") or []),
    )


def _entry(r: Any) -> TimelineEntry:
    return TimelineEntry(r.time_ns, r.kind, r.summary, actor=r.actor, data=dict(r.data or {}), seq=r.seq)


class IncidentStore:
    """Incidents, their alerts and timelines in the store (module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- writing ----------------------------------------------------------------------------------
    def save(
        self,
        incidents: Sequence[Incident],
        entries: Sequence[tuple[str, TimelineEntry]] = (),
        alerts: Sequence[tuple[str, str, int]] = (),
    ) -> None:
        """Save incidents (whole rows), add timeline entries ``(incident id, entry)`` and alert
        links ``(incident id, alert id, time_ns)``, in one transaction. An alert already linked
        keeps its incident."""
        if not (incidents or entries or alerts):
            return
        with self.store.writing("cannot store incidents") as conn:
            if incidents:
                conn.execute(self.store.upsert(tables.incidents, ("id",)), [_row(i) for i in incidents])
            if alerts:
                conn.execute(
                    self.store.upsert(tables.incident_alerts, ("alert_id",), update=False),
                    [{"incident_id": i, "alert_id": a, "time_ns": t} for i, a, t in alerts],
                )
            if entries:
                rows = [
                    {
                        "incident_id": i,
                        "time_ns": e.time_ns,
                        "kind": e.kind,
                        "actor": e.actor[: tables.INDEXED_LEN],
                        "summary": e.summary,
                        "data": e.data,
                    }
                    for i, e in entries
                ]
                conn.execute(sa.insert(tables.incident_timeline), rows)

    # -- reading ----------------------------------------------------------------------------------
    def resolve_id(self, ref: str) -> str:
        """The full id of the incident `ref` names: its id, an id prefix, or its random suffix."""
        ref = ref.strip()
        t = tables.incidents
        with self.store.reading("cannot read incidents") as conn:
            if conn.execute(sa.select(t.c.id).where(t.c.id == ref)).first() is not None:
                return ref
            if len(ref) >= 4:
                cond = sa.or_(
                    t.c.id.startswith(ref, autoescape=True), t.c.id.endswith("-" + ref, autoescape=True)
                )
                rows = conn.execute(sa.select(t.c.id).where(cond).limit(3)).all()
                if len(rows) == 1:
                    return str(rows[0][0])
                if len(rows) > 1:
                    ids = ", ".join(r[0] for r in rows)
                    raise NotFoundError(f"incident {ref!r} is ambiguous ({ids}, ...): give more of the id")
        raise NotFoundError(f"no incident {ref!r}")

    def get(self, ref: str, *, with_alerts: bool = True) -> Incident:
        """The incident `ref` names (:meth:`resolve_id`), with all its alert ids."""
        ident = self.resolve_id(ref)
        t = tables.incidents
        with self.store.reading("cannot read incidents") as conn:
            r = conn.execute(sa.select(t).where(t.c.id == ident)).first()
            if r is None:
                raise NotFoundError(f"no incident {ref!r}")
            inc = _incident(r)
            if with_alerts:
                inc.alert_ids = self._alert_ids(conn, [ident], None)[ident]
        return inc

    @staticmethod
    def _alert_ids(conn: sa.Connection, ids: list[str], limit: int | None) -> dict[str, list[str]]:
        a = tables.incident_alerts
        out: dict[str, list[str]] = {i: [] for i in ids}
        if not ids:
            return out
        stmt = sa.select(a.c.incident_id, a.c.alert_id).where(a.c.incident_id.in_(ids))
        for incident_id, alert_id in conn.execute(stmt.order_by(a.c.time_ns, a.c.alert_id)):
            out[incident_id].append(alert_id)
        if limit is not None:
            for v in out.values():
                del v[:-limit]
        return out

    def ranked(
        self,
        *,
        status: Sequence[str] = (),
        workload: str | None = None,
        min_score: float | None = None,
        since_ns: int | None = None,
        limit: int = 100,
        with_alerts: bool = True,
    ) -> list[Incident]:
        """Incidents ranked worst first: active before resolved, then score, then most recent."""
        t = tables.incidents
        stmt = sa.select(t)
        if status:
            stmt = stmt.where(t.c.status.in_(list(status)))
        if workload:
            stmt = stmt.where(t.c.workload == workload)
        if min_score is not None:
            stmt = stmt.where(t.c.score >= min_score)
        if since_ns is not None:
            stmt = stmt.where(t.c.last_ns >= since_ns)
        resolved_last = sa.case((t.c.status == "resolved", 1), else_=0)
        stmt = stmt.order_by(resolved_last, t.c.score.desc(), t.c.last_ns.desc(), t.c.id).limit(limit)
        with self.store.reading("cannot read incidents") as conn:
            found = [_incident(r) for r in conn.execute(stmt)]
            if with_alerts:
                ids = self._alert_ids(conn, [i.id for i in found], LIST_ALERT_IDS)
                for inc in found:
                    inc.alert_ids = ids[inc.id]
        return found

    def active(self, since_ns: int) -> list[Incident]:
        """Incidents not resolved whose last alert came at or after `since_ns` (for a restart)."""
        t = tables.incidents
        stmt = sa.select(t).where(t.c.status != "resolved", t.c.last_ns >= since_ns)
        with self.store.reading("cannot read incidents") as conn:
            return [_incident(r) for r in conn.execute(stmt)]

    def timeline(self, ref: str, *, kinds: Sequence[str] = (), limit: int = 10_000) -> list[TimelineEntry]:
        """The incident's timeline in time order."""
        ident = self.resolve_id(ref)
        tl = tables.incident_timeline
        stmt = sa.select(tl).where(tl.c.incident_id == ident)
        if kinds:
            stmt = stmt.where(tl.c.kind.in_(list(kinds)))
        stmt = stmt.order_by(tl.c.time_ns, tl.c.seq).limit(limit)
        with self.store.reading("cannot read the incident timeline") as conn:
            return [_entry(r) for r in conn.execute(stmt)]

    def incident_of_alert(self, alert_id: str) -> str | None:
        """The incident holding an alert, if any."""
        a = tables.incident_alerts
        with self.store.reading("cannot read incidents") as conn:
            r = conn.execute(sa.select(a.c.incident_id).where(a.c.alert_id == alert_id)).first()
        return None if r is None else str(r[0])
