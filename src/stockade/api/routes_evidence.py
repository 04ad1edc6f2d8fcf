"""Evidence: capture a running container into a sealed bundle, list bundles, show and verify one
(docs/evidence.md). Served by an instance with a runtime (``stockade up``, ``stockade server``), in
its data directory; capture needs the container on this node.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from stockade.api.deps import RuntimeDep
from stockade.api.problem import problem_responses
from stockade.model import apipaths as paths

router = APIRouter(tags=["evidence"])


class CaptureIn(BaseModel):
    """What to capture."""

    model_config = ConfigDict(extra="forbid")

    container: str = Field(description="The running container: full id, unique id prefix or name")
    pids: list[int] | None = Field(None, description="Only these processes of it (default: all)")
    memory: list[int | str] | None = Field(
        None, description="Dump the memory of these pids (or 'all'), while the container is frozen"
    )
    reason: str = Field("", description="Why (recorded in the manifest and the chain of custody)")
    actor: str | None = Field(None, description="Who (recorded; default: the API client)")
    command: str | None = Field(None, description="The command that asked (recorded)")


class CaptureOut(BaseModel):
    """The sealed bundle."""

    id: str
    path: str
    files: int
    problems: list[str]
    frozen: bool | None = Field(None, description="Whether the container was frozen during the capture")


@router.post(
    paths.EVIDENCE,
    status_code=201,
    response_model=CaptureOut,
    summary="Capture a running container into a sealed evidence bundle",
    responses=problem_responses(404, 409, 422),
)
def capture(body: CaptureIn, runtime: RuntimeDep) -> dict[str, Any]:
    """Processes, environment (secrets redacted in the summary), executables' hashes, open files,
    sockets, maps, memory of the chosen pids, filesystem changes, recent events and alerts, host and
    container metadata; sealed with a signed manifest of SHA-256 hashes."""
    b = runtime.evidence().capture(
        body.container,
        pids=body.pids,
        memory=body.memory,
        reason=body.reason,
        actor=body.actor or "api",
        command=body.command,
    )
    m = b.manifest
    during = ((m.get("frozen") or {}).get("during") or {}).get("frozen")
    return {
        "id": b.id,
        "path": str(b.path),
        "files": len(m.get("files") or []),
        "problems": list(m.get("problems") or []),
        "frozen": during,
    }


@router.get(paths.EVIDENCE, summary="Every evidence bundle, newest first")
def list_bundles(runtime: RuntimeDep) -> dict[str, Any]:
    """Id, path, target, reason, times, collector, frozen state, files, bytes, problems."""
    items = runtime.evidence().list()
    return {"items": items, "total": len(items)}


@router.get(paths.EVIDENCE_BUNDLE, summary="One evidence bundle", responses=problem_responses(404, 422))
def show_bundle(bundle_id: str, runtime: RuntimeDep, actor: str = "api") -> dict[str, Any]:
    """Its manifest, summary and chain of custody (``viewed`` is recorded in it)."""
    return runtime.evidence().show(bundle_id, actor=actor)


@router.get(paths.EVIDENCE_VERIFY, summary="Verify an evidence bundle", responses=problem_responses(404, 422))
def verify_bundle(bundle_id: str, runtime: RuntimeDep, actor: str = "api") -> dict[str, Any]:
    """Every file's hash, files added or removed, the manifest's signature (the node's key), the chain
    of custody. ``ok`` false names the problems, the first in ``first_problem``."""
    return runtime.evidence().verify(bundle_id, actor=actor)
