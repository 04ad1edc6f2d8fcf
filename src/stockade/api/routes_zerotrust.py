"""Zero trust: workloads, their learned profiles, modes and policies, and what this node can enforce.

Workload ids hold slashes (``k8s/shop/deployment/web``, ``container/localhost/web/web``): clients
send them as one path segment (``%2F``) or as they are; both reach the same route.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from stockade.api.deps import RuntimeDep
from stockade.api.problem import problem_responses
from stockade.model import apipaths as paths

router = APIRouter(tags=["zero trust"])


def _route(path: str) -> str:
    """A route whose ``{workload_id}`` takes the rest of the path (ids hold slashes)."""
    return path.replace("{workload_id}", "{workload_id:path}")


class ModeIn(BaseModel):
    """A mode change: the mode, why, who, and whether to skip the dry run."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["discover", "monitor", "protect"]
    why: str = Field("", description="Why (recorded with the change)")
    who: str | None = Field(None, description="Who (recorded; default: the API client)")
    force: bool = Field(False, description="Protect without the dry run on recent operations")


class PolicyIn(BaseModel):
    """A WorkloadPolicy to apply (YAML text) and where it came from."""

    model_config = ConfigDict(extra="forbid")

    policy: str = Field(description="The WorkloadPolicy document, YAML")
    origin: str = Field("api", description="Its file name, for error messages")
    who: str | None = None


class PolicyText(BaseModel):
    """A WorkloadPolicy as YAML."""

    workload: str
    policy: str


@router.get(paths.WORKLOADS, summary="Every workload: id, mode, running containers, profile, policy")
def list_workloads(runtime: RuntimeDep) -> dict[str, Any]:
    """Sorted by id."""
    items = runtime.zero_trust().list()
    return {"items": items, "total": len(items)}


@router.get(
    _route(paths.WORKLOAD), summary="One workload with its mode history", responses=problem_responses(404)
)
def get_workload(workload_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    """404 when no such workload has been seen."""
    return runtime.zero_trust().show(workload_id)


@router.get(
    _route(paths.PROFILE),
    summary="The workload's learned behaviour profile",
    responses=problem_responses(404),
)
def get_profile(workload_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    """Processes, files, network, privileged operations and syscalls, each with count and times."""
    return runtime.zero_trust().profile(workload_id)


@router.put(
    _route(paths.MODE),
    summary="Set a workload's mode (discover, monitor, protect)",
    responses=problem_responses(404, 409, 422),
)
def set_mode(workload_id: str, body: ModeIn, runtime: RuntimeDep) -> dict[str, Any]:
    """Protect first replays the workload's recent operations against its policy and answers 409,
    saying why, if any would be denied (``force`` skips that). A pattern (``k8s/shop/*``,
    ``namespace:shop``) sets every matching workload, now and later."""
    return runtime.zero_trust().set_mode(
        workload_id, body.mode, who=body.who or "api", why=body.why, force=body.force
    )


@router.put(paths.POLICIES, summary="Apply a WorkloadPolicy", responses=problem_responses(400, 422))
def apply_policy(body: PolicyIn, runtime: RuntimeDep) -> dict[str, Any]:
    """Stored and in force at once; an error names the file, line and field."""
    return runtime.zero_trust().apply_policy(body.policy, body.origin, who=body.who or "api")


@router.get(
    _route(paths.POLICY),
    response_model=PolicyText,
    summary="The policy in force for a workload",
    responses=problem_responses(404),
)
def get_policy(workload_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    """404 while it is still learning without a policy."""
    return {"workload": workload_id, "policy": runtime.zero_trust().policy_text(workload_id)}


@router.post(
    _route(paths.POLICY_GENERATE),
    response_model=PolicyText,
    summary="Generate a WorkloadPolicy from the workload's profile",
    responses=problem_responses(404),
)
def generate_policy(workload_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    """Not applied: edit it, then PUT /policies."""
    return {"workload": workload_id, "policy": runtime.zero_trust().generate(workload_id)}


@router.get(paths.ENFORCEMENT, summary="What this node can enforce, per kind of operation")
def enforcement(runtime: RuntimeDep) -> dict[str, Any]:
    """``support`` per kind (exec, open, connect, bind, raw_socket, privileged, ingress): block,
    audit or none, with the mechanism's reason; counters; containers enforced."""
    return runtime.zero_trust().status()
