"""Incidents: the ranked list, one incident with its timeline, a responder's update, the report
(docs/incidents.md). Read from the store; updates go through the running incident service (409
where incidents are disabled)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from stockade.api.deps import RuntimeDep, StoreDep
from stockade.api.params import STRICT_QUERY
from stockade.incidents.report import render_html, render_markdown
from stockade.model import apipaths as paths
from stockade.model.incident import STATUSES
from stockade.model.timeutil import now_ns

router = APIRouter(tags=["incidents"])

MAX_LIMIT = 10_000


def _incidents(store: Any) -> Any:
    from stockade.storage.incidents import IncidentStore

    return IncidentStore(store)


class IncidentPatch(BaseModel):
    """A responder's change: any of status, owner, a note; and who made it."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["open", "investigating", "contained", "resolved"] | None = None
    owner: str | None = Field(None, max_length=255, description="Who owns it ('' to unassign)")
    note: str | None = Field(None, max_length=20_000)
    who: str | None = Field(None, max_length=255, description="Who (recorded; default: the API client)")


@router.get(paths.INCIDENTS, summary="Incidents, worst first", dependencies=[STRICT_QUERY])
def list_incidents(
    store: StoreDep,
    status: Annotated[list[str] | None, Query(description=f"Any of {', '.join(STATUSES)}")] = None,
    workload: str | None = None,
    min_score: Annotated[float | None, Query(ge=0, le=100)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> dict[str, Any]:
    """Active incidents before resolved ones, then by score, then most recent."""
    items = _incidents(store).ranked(status=status or (), workload=workload, min_score=min_score, limit=limit)
    now = now_ns()
    return {"items": [i.summary(now) for i in items], "total": len(items)}


@router.get(paths.INCIDENT, summary="One incident with its timeline", dependencies=[STRICT_QUERY])
def show_incident(store: StoreDep, incident_id: str) -> dict[str, Any]:
    """Its id, an id prefix or its random suffix."""
    repo = _incidents(store)
    inc = repo.get(incident_id)
    d: dict[str, Any] = inc.summary(now_ns())
    d["timeline"] = [e.to_dict() for e in repo.timeline(inc.id)]
    return d


@router.patch(paths.INCIDENT, summary="Change an incident's status or owner, or add a note")
def update_incident(runtime: RuntimeDep, incident_id: str, body: IncidentPatch) -> dict[str, Any]:
    """Each change is recorded on the timeline (and in the audit log)."""
    inc = runtime.incidents().update(
        incident_id, actor=body.who or "api", status=body.status, owner=body.owner, note=body.note
    )
    summary: dict[str, Any] = inc.summary(now_ns())
    return summary


@router.get(
    paths.INCIDENT_REPORT,
    summary="The incident report, Markdown or HTML",
    response_class=PlainTextResponse,
    dependencies=[STRICT_QUERY],
)
def incident_report(
    store: StoreDep, incident_id: str, format: Literal["markdown", "html"] = "markdown"
) -> Response:
    """Timeline, affected assets, actions, evidence with hashes, the notification clock."""
    repo = _incidents(store)
    inc = repo.get(incident_id)
    timeline = repo.timeline(inc.id)
    if format == "html":
        return HTMLResponse(render_html(inc, timeline, now_ns()))
    return PlainTextResponse(
        render_markdown(inc, timeline, now_ns()), media_type="text/markdown; charset=utf-8"
    )
