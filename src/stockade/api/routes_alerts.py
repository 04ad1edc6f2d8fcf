"""GET /api/v1/alerts and /api/v1/alerts/{id}: stored alerts in Falco's JSON shape."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from stockade.api.deps import StoreDep
from stockade.api.params import STRICT_QUERY, parse_priority_param, parse_time_param
from stockade.api.problem import problem_responses
from stockade.model import apipaths as paths
from stockade.storage.filters import AlertFilter

router = APIRouter(tags=["alerts"])

MAX_LIMIT = 1000
MAX_OFFSET = 2**31


class AlertPage(BaseModel):
    """A page of alerts (Falco JSON), newest first, and how many match in all."""

    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


@router.get(
    paths.ALERTS,
    response_model=AlertPage,
    summary="List alerts, newest first",
    responses=problem_responses(422),
    dependencies=[STRICT_QUERY],
)
def list_alerts(
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
    """Every filter given must hold; a parameter this endpoint does not know is a 422."""
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
    paths.ALERT,
    response_model=dict[str, Any],
    summary="One alert",
    responses=problem_responses(404),
)
def get_alert(alert_id: str, store: StoreDep) -> dict[str, Any]:
    """The alert whose id is given, or a unique prefix of it (6+ characters)."""
    return store.get_alert(alert_id).to_falco_json()
