"""GET /api/v1/alerts and /api/v1/alerts/{id}: stored alerts in Falco's JSON shape."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from stockade.api.deps import StoreDep
from stockade.api.params import parse_priority_param, parse_time_param, reject_unknown_params
from stockade.api.problem import problem_responses
from stockade.storage.filters import AlertFilter

router = APIRouter(tags=["alerts"])

MAX_LIMIT = 1000
MAX_OFFSET = 2**31
_KNOWN = frozenset({"since", "until", "rule", "priority", "source", "container", "q", "limit", "offset"})


class AlertPage(BaseModel):
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


@router.get(
    "/alerts",
    response_model=AlertPage,
    summary="List alerts, newest first",
    responses=problem_responses(401, 422, 503),
)
def list_alerts(
    request: Request,
    store: StoreDep,
    since: Annotated[
        str | None,
        Query(description="Only alerts at or after: a duration ago (15m, 1h, 7d), RFC 3339, or epoch"),
    ] = None,
    until: Annotated[
        str | None, Query(description="Only alerts before this time (same forms as since)")
    ] = None,
    rule: Annotated[str | None, Query(description="Exact rule name")] = None,
    priority: Annotated[
        str | None,
        Query(description="Minimum priority (Falco names, case-insensitive): warning = Warning or worse"),
    ] = None,
    source: Annotated[str | None, Query(description="Event source: syscall, k8s_audit, ...")] = None,
    container: Annotated[str | None, Query(description="container.id")] = None,
    q: Annotated[str | None, Query(description="Text searched in the alert output")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    reject_unknown_params(request, _KNOWN)
    selected = AlertFilter(
        since_ns=parse_time_param("since", since),
        until_ns=parse_time_param("until", until),
        rule=rule or None,
        min_priority=parse_priority_param(priority),
        source=source or None,
        container_id=container or None,
        text=q or None,
    )
    items = store.list_alerts(selected, limit=limit, offset=offset)
    total = store.count_alerts(selected)
    return {"items": [a.to_falco_json() for a in items], "total": total, "limit": limit, "offset": offset}


@router.get(
    "/alerts/{alert_id}",
    response_model=dict[str, Any],
    summary="One alert",
    responses=problem_responses(401, 404, 503),
)
def get_alert(alert_id: str, store: StoreDep) -> dict[str, Any]:
    return store.get_alert(alert_id).to_falco_json()
