"""Tuning a running Stockade without a restart: mutes (``/api/v1/mutes``) and rules reload
(``POST /api/v1/rules/reload``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from stockade.api.deps import RuntimeDep
from stockade.api.params import reject_unknown_params
from stockade.api.problem import Problem, problem_responses
from stockade.errors import StockadeError

router = APIRouter(tags=["tuning"])


class MuteIn(BaseModel):
    """A mute to add: the rule, where (a workload selector; absent: everywhere), why, until when."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    rule: str = Field(description="The rule's name, exactly as loaded")
    reason: str = Field(description="Why (who asked, a ticket): shown with the mute")
    workload: str | None = Field(
        None,
        description="container:NAME|ID, image:REPO[:TAG], k8s:NAMESPACE[/NAME], host, or a workload as "
        "alerts show it; absent: everywhere",
    )
    for_: str | None = Field(None, alias="for", description="How long: 90s, 15m, 2h, 7d (or `until`)")
    until: str | None = Field(None, description="Until this time, RFC 3339 (or `for`)")
    created_by: str | None = Field(None, description="Who muted (free text)")


class MuteOut(BaseModel):
    id: str
    rule: str
    workload: str | None
    reason: str
    created: str
    expires: str
    created_by: str | None
    active: bool
    #: alerts this mute silenced since the instance started
    hits: int


class MutePage(BaseModel):
    items: list[MuteOut]
    total: int


@router.post(
    "/mutes",
    status_code=201,
    response_model=MuteOut,
    summary="Mute a rule for a workload (or everywhere) until an expiry",
    responses=problem_responses(401, 422, 503),
)
def add_mute(body: MuteIn, runtime: RuntimeDep) -> dict[str, Any]:
    mute = runtime.add_mute(
        body.rule,
        body.reason,
        workload=body.workload,
        for_=body.for_,
        until=body.until,
        created_by=body.created_by,
    )
    out: dict[str, Any] = mute.to_dict(runtime.now_ns())
    return out


@router.get(
    "/mutes",
    response_model=MutePage,
    summary="Mutes in force (with all=true, the expired ones too)",
    responses=problem_responses(401, 422, 503),
)
def list_mutes(
    request: Request,
    runtime: RuntimeDep,
    all: Annotated[bool, Query(description="Include expired mutes")] = False,
) -> dict[str, Any]:
    reject_unknown_params(request, frozenset({"all"}))
    now = runtime.now_ns()
    items = [m.to_dict(now) for m in runtime.list_mutes(include_expired=all)]
    return {"items": items, "total": len(items)}


@router.delete(
    "/mutes/{mute_id}",
    response_model=MuteOut,
    summary="Unmute: delete a mute (its id or a unique prefix of 6+ characters)",
    responses=problem_responses(401, 404, 503),
)
def delete_mute(mute_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    mute = runtime.delete_mute(mute_id)
    out: dict[str, Any] = mute.to_dict(runtime.now_ns())
    out["active"] = False
    return out


@router.post(
    "/rules/reload",
    summary="Load the rules again; on failure the running rules are kept",
    responses=problem_responses(401, 422, 503),
)
def reload_rules(runtime: RuntimeDep) -> dict[str, Any]:
    try:
        result: dict[str, Any] = runtime.reload_rules()
    except StockadeError as e:
        errors = getattr(e, "errors", None) or [str(e)]
        raise Problem(422, str(e), kind="invalid-rules", title="Rules reload failed", errors=errors) from e
    return result
