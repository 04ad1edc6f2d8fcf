"""Tuning a running Stockade without a restart: mutes (``/api/v1/mutes``) and rules reload
(``POST /api/v1/rules/reload``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from stockade.api.deps import RuntimeDep
from stockade.api.params import STRICT_QUERY
from stockade.api.problem import Problem, problem_responses
from stockade.errors import StockadeError
from stockade.model import apipaths as paths
from stockade.model.mute import MuteRequest

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
    """A mute as stored, whether it is in force, and the alerts it silenced."""

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
    """The mutes asked for."""

    items: list[MuteOut]
    total: int


@router.post(
    paths.MUTES,
    status_code=201,
    response_model=MuteOut,
    summary="Mute a rule for a workload (or everywhere) until an expiry",
    responses=problem_responses(422),
)
def add_mute(body: MuteIn, runtime: RuntimeDep) -> dict[str, Any]:
    """The rule must be loaded; the mute applies to the next alert and survives restarts."""
    mute = runtime.add_mute(
        MuteRequest(
            body.rule,
            body.reason,
            workload=body.workload,
            for_=body.for_,
            until=body.until,
            created_by=body.created_by,
        )
    )
    out: dict[str, Any] = mute.to_dict(runtime.now_ns())
    return out


@router.get(
    paths.MUTES,
    response_model=MutePage,
    summary="Mutes in force (with all=true, the expired ones too)",
    responses=problem_responses(422),
    dependencies=[STRICT_QUERY],
)
def list_mutes(
    runtime: RuntimeDep,
    all: Annotated[bool, Query(description="Include expired mutes")] = False,
) -> dict[str, Any]:
    """Soonest to expire first."""
    now = runtime.now_ns()
    items = [m.to_dict(now) for m in runtime.list_mutes(include_expired=all)]
    return {"items": items, "total": len(items)}


@router.delete(
    paths.MUTE,
    response_model=MuteOut,
    summary="Unmute: delete a mute (its id or a unique prefix of 6+ characters)",
    responses=problem_responses(404),
)
def delete_mute(mute_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    """The rule alerts again at once."""
    mute = runtime.delete_mute(mute_id)
    out: dict[str, Any] = mute.to_dict(runtime.now_ns())
    out["active"] = False
    return out


@router.post(
    paths.RULES_RELOAD,
    summary="Load the rules again; on failure the running rules are kept",
    responses=problem_responses(422),
)
def reload_rules(runtime: RuntimeDep) -> dict[str, Any]:
    """The new rules are loaded and compiled off to the side, then swapped in between two events; a 422 problem listing every error when they fail."""
    try:
        result: dict[str, Any] = runtime.reload_rules()
    except StockadeError as e:
        errors = getattr(e, "errors", None) or [str(e)]
        raise Problem(422, str(e), kind="invalid-rules", title="Rules reload failed", errors=errors) from e
    return result
