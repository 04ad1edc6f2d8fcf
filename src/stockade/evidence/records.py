"""A workload's recent events and alerts from the store, for its evidence bundle."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stockade.behavior.workload import workload_of_event
from stockade.errors import StockadeError
from stockade.model.alert import Alert
from stockade.sensor.containers.info import ContainerInfo

if TYPE_CHECKING:
    from stockade.storage.store import Store

__all__ = ["DEFAULT_RECORDS", "safe_records", "workload_records"]

#: the most events and the most alerts kept
DEFAULT_RECORDS = 5000


def workload_records(
    store: Store, info: ContainerInfo, *, since_ns: int | None = None, limit: int = DEFAULT_RECORDS
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """The container's stored events and its workload's alerts (this container's and its
    replicas'), newest first; and what was asked (workload id, counts, whether the limit cut them)."""
    workload = workload_of_event(info.fields()).id
    events = [
        {"id": e.id, "source": e.source, "origin": e.origin, "data": e.data, "meta": e.meta}
        for e in store.query_events(since_ns=since_ns, where={"container.id": info.short_id}, limit=limit)
    ]
    found: dict[str, Alert] = {}
    for ref in (info.short_id, workload):
        for a in store.list_alerts(since_ns=since_ns, container_id=ref, limit=limit):
            found.setdefault(a.id, a)
    alerts = sorted(found.values(), key=lambda a: a.time_ns, reverse=True)[:limit]
    items = [a.to_falco_json() for a in alerts]
    meta = {
        "workload": workload,
        "container_id": info.short_id,
        "events": len(events),
        "alerts": len(items),
        "limit": limit,
        "events_cut": len(events) >= limit,
        "alerts_cut": len(found) >= limit,
    }
    return events, items, meta


def safe_records(
    store: Store, info: ContainerInfo, problems: list[str], *, since_ns: int | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any] | None]:
    """:func:`workload_records`, a store error recorded in `problems` instead of raised."""
    try:
        return workload_records(store, info, since_ns=since_ns)
    except StockadeError as e:
        problems.append(f"store: {e}")
        return [], [], None
