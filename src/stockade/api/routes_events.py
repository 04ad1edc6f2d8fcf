"""GET /api/v1/events and /api/v1/events/{id}: the stored event log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from stockade.api.deps import StoreDep
from stockade.api.params import FieldFilters, parse_time_param, parse_where
from stockade.api.problem import problem_responses
from stockade.model import apipaths as paths
from stockade.model.event import Event
from stockade.model.timeutil import format_time_ns

router = APIRouter(tags=["events"])

MAX_LIMIT = 1000
MAX_OFFSET = 2**31


class EventItem(BaseModel):
    """A stored event: its source, time, origin and data (Falco fields, or the audit object)."""

    id: str | None
    source: str
    time: str | None
    origin: str | None
    data: dict[str, Any]
    meta: dict[str, Any] = {}


class EventPage(BaseModel):
    """A page of events, newest first."""

    items: list[EventItem]
    limit: int
    offset: int
    #: more events match beyond this page
    has_more: bool


def event_json(ev: Event) -> dict[str, Any]:
    """The JSON form of a stored event (an EventItem)."""
    t = ev.time_ns
    return {
        "id": ev.id,
        "source": ev.source,
        "time": format_time_ns(t) if t is not None else None,
        "origin": ev.origin,
        "data": ev.data,
        "meta": ev.meta,
    }


@router.get(
    paths.EVENTS,
    response_model=EventPage,
    summary="Query the event log, newest first",
    description=(
        "Filter on event fields with `where=field:value` (repeatable, e.g. `where=proc.name:bash`) or "
        "with the field name itself as a query parameter (`proc.name=bash`). Values match exactly."
    ),
    responses=problem_responses(422),
)
def list_events(
    dotted: FieldFilters,
    store: StoreDep,
    since: Annotated[str | None, Query(description="A duration ago (15m, 1h), RFC 3339, or epoch")] = None,
    until: Annotated[str | None, Query(description="Same forms as since")] = None,
    source: Annotated[str | None, Query(description="syscall or k8s_audit")] = None,
    where: Annotated[list[str] | None, Query(description="field:value, repeatable")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    """The event log filtered by time, source and field values."""
    items = store.query_events(
        since_ns=parse_time_param("since", since),
        until_ns=parse_time_param("until", until),
        source=source or None,
        where=parse_where(where or [], dotted),
        limit=limit + 1,
        offset=offset,
    )
    return {
        "items": [event_json(e) for e in items[:limit]],
        "limit": limit,
        "offset": offset,
        "has_more": len(items) > limit,
    }


@router.get(
    paths.EVENT,
    response_model=EventItem,
    summary="One event",
    responses=problem_responses(404),
)
def get_event(event_id: str, store: StoreDep) -> dict[str, Any]:
    """The event whose id is given, or a unique prefix of it (6+ characters)."""
    return event_json(store.get_event(event_id))
