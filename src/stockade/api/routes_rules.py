"""GET /api/v1/rules and /api/v1/status: what the running engine has loaded and how it is doing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from stockade.api.deps import RuntimeDep, StoreDep
from stockade.api.params import reject_unknown_params
from stockade.api.problem import problem_responses

router = APIRouter(tags=["rules"])

_KNOWN = frozenset({"source", "enabled", "tag"})


class RulePage(BaseModel):
    items: list[dict[str, Any]]
    total: int


class Status(BaseModel):
    #: runtime status (backend, rules loaded, events/s, drops, sources, sinks); null without a runtime
    runtime: dict[str, Any] | None
    #: storage counters
    store: dict[str, int]


@router.get(
    "/rules",
    response_model=RulePage,
    summary="Rules loaded in the engine",
    responses=problem_responses(401, 422, 503),
)
def list_rules(
    request: Request,
    runtime: RuntimeDep,
    source: Annotated[
        str | None, Query(description="Only rules for this source (syscall, k8s_audit)")
    ] = None,
    enabled: Annotated[
        bool | None, Query(description="Only enabled (true) or disabled (false) rules")
    ] = None,
    tag: Annotated[str | None, Query(description="Only rules carrying this tag")] = None,
) -> dict[str, Any]:
    reject_unknown_params(request, _KNOWN)
    items = [
        r
        for r in runtime.rules_info()
        if (source is None or r.get("source") == source)
        and (enabled is None or bool(r.get("enabled", True)) == enabled)
        and (tag is None or tag in (r.get("tags") or ()))
    ]
    return {"items": items, "total": len(items)}


@router.get(
    "/status",
    response_model=Status,
    summary="Runtime and storage status",
    responses=problem_responses(401, 503),
)
def status(request: Request, store: StoreDep) -> dict[str, Any]:
    runtime = request.app.state.runtime
    return {"runtime": runtime.status() if runtime is not None else None, "store": store.stats()}
