"""Drift: a running container's files added, changed and deleted against its image, and those in
watched paths (docs/drift.md). Checked on demand: a watched change not alerted yet raises its alert.

Served where the containers are (`stockade up`); elsewhere 409 (no-drift).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from stockade.api.deps import RuntimeDep
from stockade.api.problem import problem_responses
from stockade.model import apipaths as paths

router = APIRouter(tags=["drift"])


class DriftChange(BaseModel):
    """One path the container changed: added, changed, deleted, or opaque (a directory whose image
    contents are hidden)."""

    path: str
    change: str
    type: str | None = None
    size: int | None = None
    mode: str | None = None
    uid: int | None = None
    gid: int | None = None
    mtime_ns: int | None = None
    target: str | None = None
    watched: str | None = Field(None, description="The watch-list pattern covering it (drift.watch)")


class DriftReport(BaseModel):
    """A container's drift: known (false with a reason when its root is no overlay), the changes,
    those in watched paths, and the runtime's own mount points left out."""

    container: dict[str, Any]
    known: bool
    reason: str | None = None
    method: str | None = None
    upperdir: str | None = None
    counts: dict[str, int]
    changes: list[DriftChange]
    watched: list[DriftChange]
    runtime_mountpoints: list[str] = []
    alerts_raised: int = 0


@router.get(
    paths.CONTAINER_DRIFT,
    response_model=DriftReport,
    summary="A running container's files added, changed and deleted against its image",
    responses=problem_responses(404, 409, 422),
)
def container_drift(container_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    """`container_id`: its full id, a unique prefix or its name."""
    return runtime.drift().drift(container_id)
