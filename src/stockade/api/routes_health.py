"""GET /healthz: liveness plus a storage check (never behind the bearer token)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter

from stockade.api.deps import StoreDep
from stockade.api.problem import Problem
from stockade.model import apipaths as paths

router = APIRouter(tags=["health"])
log = logging.getLogger("stockade.api")


@router.get(paths.HEALTHZ, summary="Health check")
def healthz(store: StoreDep) -> dict[str, Any]:
    """200 while the store answers; a 503 problem when it does not."""
    try:
        store.stats()
    except Exception as e:
        log.warning("health check: store unreachable: %s", e)
        raise Problem(503, "the store is unreachable", kind="storage-unavailable") from e
    return {"status": "ok"}
