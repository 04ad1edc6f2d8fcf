"""The audit log: ``GET /api/v1/audit`` (records, newest first), ``GET /api/v1/audit/verify`` (the
chain and its checkpoints checked now) and ``POST /api/v1/audit/checkpoints`` (sign one now)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from stockade.api.deps import StoreDep
from stockade.api.params import STRICT_QUERY, parse_time_param
from stockade.api.problem import Problem, problem_responses
from stockade.model import apipaths as paths

if TYPE_CHECKING:
    from stockade.audit.chain import AuditLog

router = APIRouter(tags=["audit"])

MAX_LIMIT = 1000


class AuditPage(BaseModel):
    """Audit records, newest first."""

    items: list[dict[str, Any]]
    limit: int


def _audit(request: Request) -> AuditLog:
    audit: AuditLog | None = getattr(request.app.state, "audit", None)
    if audit is None:
        raise Problem(
            409,
            "this instance keeps no audit log (audit.enabled is false, or the API serves a store only)",
            kind="no-audit-log",
            title="No audit log here",
        )
    return audit


@router.get(
    paths.AUDIT,
    response_model=AuditPage,
    summary="Audit records, newest first",
    responses=problem_responses(422),
    dependencies=[STRICT_QUERY],
)
def list_audit(
    store: StoreDep,
    kind: Annotated[
        str | None,
        Query(description="Only this kind: alert, api, mode, policy, rules, mute, response, incident"),
    ] = None,
    since: Annotated[
        str | None, Query(description="From this time: a duration ago (15m, 1h), RFC 3339, or epoch")
    ] = None,
    until: Annotated[str | None, Query(description="Before this time (same forms as since)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> dict[str, Any]:
    """Each record with its seq, time, kind, actor, subject, data, prev_hash and hash."""
    from stockade.storage.audit import AuditStore

    rows = AuditStore(store).recent(
        kind=kind or None,
        since_ns=parse_time_param("since", since),
        until_ns=parse_time_param("until", until),
        limit=limit,
    )
    return {"items": [r.to_dict() for r in rows], "limit": limit}


@router.get(paths.AUDIT_VERIFY, summary="Verify the audit log now")
def verify_audit(request: Request, store: StoreDep) -> dict[str, Any]:
    """The whole chain, the checkpoints' signatures (with this node's key) and the checkpoint file;
    ``ok`` false and ``problems`` (the first one first) when anything was changed, inserted or
    deleted."""
    from stockade.audit.verify import verify

    audit: AuditLog | None = getattr(request.app.state, "audit", None)
    if audit is None:
        return verify(store).to_dict()
    return verify(store, audit.key.public, checkpoint_file=audit.checkpoint_file).to_dict()


@router.post(
    paths.AUDIT_CHECKPOINTS,
    summary="Sign a checkpoint of the audit log now",
    status_code=201,
    responses=problem_responses(409),
)
def add_checkpoint(request: Request) -> dict[str, Any]:
    """The chain's head, signed with the node's key, stored and written to the checkpoint file."""
    return _audit(request).checkpoint().to_dict()
