"""Response actions on a container, pending playbook actions approved or rejected, and the
response status (docs/response.md). Served where the sensor runs (`stockade up`); elsewhere 409."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from stockade.api.deps import RuntimeDep
from stockade.api.params import STRICT_QUERY
from stockade.errors import StockadeError
from stockade.model import apipaths as paths
from stockade.model.allowlist import checked_allow

router = APIRouter(tags=["response"])


class ActionFailedProblem(StockadeError):
    """The action ran and failed: recorded; the detail says why."""

    http_status = 409
    problem_type = "action-failed"
    title = "The response action failed"


class ActionIn(BaseModel):
    """The container (full id, unique id prefix or name) and the action's settings."""

    model_config = ConfigDict(extra="forbid")

    container: str = Field(min_length=1, max_length=255)
    allow: list[str] = Field(default_factory=list, description="isolate: CIDRs still reachable (forensics)")
    memory: list[str] = Field(default_factory=list, description="capture: pids to dump memory of, or 'all'")
    pids: list[int] = Field(default_factory=list, description="capture: only these processes (default: all)")
    reason: str = Field("", max_length=2000)
    incident: str | None = Field(None, max_length=64, description="Record it on this incident")
    who: str | None = Field(None, max_length=255)

    @field_validator("allow")
    @classmethod
    def _allow(cls, v: list[str]) -> list[str]:
        checked_allow(v)
        return v


class DecisionIn(BaseModel):
    """Who decides."""

    model_config = ConfigDict(extra="forbid")

    who: str | None = Field(None, max_length=255)


def _outcome(out: Any) -> dict[str, Any]:
    d: dict[str, Any] = out.to_dict()
    if not out.ok:
        raise ActionFailedProblem(f"{d['action']} {d.get('name') or d['container'][:12]}: {d['detail']}")
    return d


@router.post(
    paths.RESPOND, summary="Isolate, unisolate, freeze, thaw, capture evidence of, or kill a container"
)
def respond(
    runtime: RuntimeDep,
    action: Literal["isolate", "unisolate", "freeze", "thaw", "capture", "kill"],
    body: ActionIn,
) -> dict[str, Any]:
    """Recorded on the container's incident and in the audit log; 409 when it failed (recorded too).
    A kill captures evidence first when none was taken."""
    out = runtime.responder().act(
        action,
        body.container,
        actor=body.who or "api",
        incident=body.incident,
        allow=body.allow,
        memory=body.memory,
        pids=body.pids,
        reason=body.reason,
    )
    return _outcome(out)


@router.post(paths.INCIDENT_ACTION, summary="Approve (run) or reject an action a playbook left pending")
def decide(
    runtime: RuntimeDep,
    incident_id: str,
    action_id: str,
    decision: Literal["approve", "reject"],
    body: DecisionIn,
) -> dict[str, Any]:
    """Approve runs it now, as the approver."""
    r = runtime.responder()
    who = body.who or "api"
    if decision == "approve":
        return _outcome(r.approve(incident_id, action_id, actor=who))
    return {"rejected": r.reject(incident_id, action_id, actor=who)}


@router.get(
    paths.RESPONSE,
    summary="Playbooks, queued work and what this node can enforce",
    dependencies=[STRICT_QUERY],
)
def response_status(runtime: RuntimeDep) -> dict[str, Any]:
    """``capabilities``: each containment mechanism, measured on this node."""
    return runtime.responder().status()
