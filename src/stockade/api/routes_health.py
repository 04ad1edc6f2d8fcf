"""GET /healthz: liveness plus a storage check (never behind the bearer token)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter

from stockade.api.deps import StoreDep
from stockade.api.problem import Problem, problem_responses

router = APIRouter(tags=["health"])
log = logging.getLogger("stockade.api")


@router.get("/healthz", summary="Health check", responses=problem_responses(503))
def healthz(store: StoreDep) -> dict[str, Any]:
    try:
        store.stats()
    except Exception as e:
        log.warning("health check: store unreachable: %s", e)
        raise Problem(503, "the store is unreachable", kind="storage-unavailable") from e
    return {"status": "ok"}
