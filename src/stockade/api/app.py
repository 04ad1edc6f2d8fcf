"""The manager API: the FastAPI application factory.

``create_app(store, runtime, token=..., max_body_bytes=...)`` builds the app over a store and a
runtime (:class:`~stockade.api.interface.RuntimeView`); the paths are in
:mod:`stockade.model.apipaths`:

* ``GET /healthz`` (never authenticated),
* ``/api/v1/alerts``, ``/api/v1/events``, ``/api/v1/rules``, ``/api/v1/status``,
* ``POST /api/v1/ingest/{falco,k8s-audit,events,alerts}``,
* ``/api/v1/mutes``, ``POST /api/v1/rules/reload`` (tuning without restart),
* ``GET /metrics`` (Prometheus; behind the token like ``/api``),
* OpenAPI at ``/openapi.json``, ``/docs`` and ``/redoc``, their scripts served from the package
  (fastapi-offline), so the pages work without internet.

Every error is ``application/problem+json`` (see :mod:`stockade.api.problem`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI
from fastapi_offline import FastAPIOffline

from stockade import __version__
from stockade.api import (
    metrics,
    routes_alerts,
    routes_audit,
    routes_certs,
    routes_drift,
    routes_events,
    routes_evidence,
    routes_health,
    routes_incidents,
    routes_ingest,
    routes_inventory,
    routes_resources,
    routes_respond,
    routes_rules,
    routes_tuning,
    routes_vulnerabilities,
    routes_zerotrust,
)
from stockade.api.auditing import AuditMiddleware
from stockade.api.body import BodyLimitMiddleware
from stockade.api.deps import require_token
from stockade.api.interface import RuntimeView
from stockade.api.problem import PROBLEM_MEDIA_TYPE, install_problem_handlers, problem_responses
from stockade.model.apipaths import API_PREFIX

if TYPE_CHECKING:
    from stockade.storage.store import Store

__all__ = ["DEFAULT_MAX_BODY_BYTES", "RuntimeView", "create_app"]

DEFAULT_MAX_BODY_BYTES = 16 * 2**20


def create_app(
    store: Store,
    runtime: RuntimeView | None = None,
    *,
    token: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """The API over `store` (and `runtime`, without which rules and ingestion answer 503).

    With `token`, every ``/api/*`` endpoint requires ``Authorization: Bearer <token>``.
    """
    app = FastAPIOffline(
        title="Stockade manager API",
        version=__version__,
        description=(
            "Alerts, events and rules of a Stockade manager, and ingestion endpoints for Falco "
            "(http_output, falcosidekick), the Kubernetes audit webhook and Stockade agents. "
            "Errors are RFC 9457 problem+json documents."
        ),
    )
    app.state.store = store
    app.state.runtime = runtime
    app.state.token = token.encode("utf-8") if token else None
    app.state.max_body_bytes = max_body_bytes
    app.state.metrics = metrics.registry_for(runtime)
    #: the runtime's audit log (stockade.audit): API changes are recorded in it (api/auditing.py)
    app.state.audit = getattr(runtime, "audit", None)
    install_problem_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=max_body_bytes)
    app.add_middleware(AuditMiddleware)

    # what every route of a kind may answer is said here, once: a route declares only its own
    app.include_router(routes_health.router, responses=problem_responses(503))
    auth = [Depends(require_token)]
    for r in (
        routes_alerts.router,
        routes_events.router,
        routes_rules.router,
        routes_ingest.router,
        routes_tuning.router,
        routes_zerotrust.router,
        routes_resources.router,
        routes_incidents.router,
        routes_respond.router,
        routes_audit.router,
        routes_evidence.router,
        routes_certs.router,
        routes_drift.router,
        routes_inventory.router,
        routes_vulnerabilities.router,
    ):
        # behind the token; the store or the runtime may be unavailable
        app.include_router(r, prefix=API_PREFIX, dependencies=auth, responses=problem_responses(401, 503))
    app.include_router(metrics.router, dependencies=auth, responses=problem_responses(401))
    _document_problems(app)
    return app


def _document_problems(app: FastAPI) -> None:
    """Make the OpenAPI document say what the API does: errors are problem+json, 422s included."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = build()
        problem_ref = {"$ref": "#/components/schemas/ProblemModel"}
        for ops in spec.get("paths", {}).values():
            for op in ops.values():
                for status, resp in op.get("responses", {}).items():
                    if not status.isdigit() or int(status) < 400:
                        continue
                    resp["content"] = {PROBLEM_MEDIA_TYPE: {"schema": problem_ref}}
        for name in ("HTTPValidationError", "ValidationError"):
            spec.get("components", {}).get("schemas", {}).pop(name, None)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
