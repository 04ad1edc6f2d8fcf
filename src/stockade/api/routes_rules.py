"""GET /api/v1/rules and /api/v1/status: what the running engine has loaded and how it is doing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from stockade.api.deps import RuntimeDep, StoreDep
from stockade.api.params import STRICT_QUERY
from stockade.api.problem import problem_responses
from stockade.model import apipaths as paths

router = APIRouter(tags=["rules"])


class RulePage(BaseModel):
    """The loaded rules that pass the filters."""

    items: list[dict[str, Any]]
    total: int


class Status(BaseModel):
    """What the running instance and its store are doing."""

    #: runtime status (backend, rules loaded, events/s, drops, sources, sinks); null without a runtime
    runtime: dict[str, Any] | None
    #: storage counters
    store: dict[str, int]


@router.get(
    paths.RULES,
    response_model=RulePage,
    summary="Rules loaded in the engine",
    responses=problem_responses(422),
    dependencies=[STRICT_QUERY],
)
def list_rules(
    runtime: RuntimeDep,
    source: Annotated[
        str | None, Query(description="Only rules for this source (syscall, k8s_audit)")
    ] = None,
    enabled: Annotated[
        bool | None, Query(description="Only enabled (true) or disabled (false) rules")
    ] = None,
    tag: Annotated[str | None, Query(description="Only rules carrying this tag")] = None,
) -> dict[str, Any]:
    """Name, priority, source, tags, enabled, description, condition, output, file and line of each rule."""
    items = [
        r
        for r in runtime.rules_info()
        if (source is None or r.get("source") == source)
        and (enabled is None or bool(r.get("enabled", True)) == enabled)
        and (tag is None or tag in (r.get("tags") or ()))
    ]
    return {"items": items, "total": len(items)}


@router.get(
    paths.STATUS,
    response_model=Status,
    summary="Runtime and storage status",
)
def status(request: Request, store: StoreDep) -> dict[str, Any]:
    """The runtime's status (null when this API serves a store only) and the store's counters."""
    runtime = request.app.state.runtime
    return {"runtime": runtime.status() if runtime is not None else None, "store": store.stats()}
