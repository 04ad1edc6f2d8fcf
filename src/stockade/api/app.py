"""The manager API: FastAPI application factory and the runtime interface it serves.

``create_app(store, runtime, token=..., max_body_bytes=...)`` builds the app:

* ``GET /healthz`` (never authenticated),
* ``/api/v1/alerts``, ``/api/v1/events``, ``/api/v1/rules``, ``/api/v1/status``,
* ``POST /api/v1/ingest/{falco,k8s-audit,events}``,
* ``/api/v1/mutes``, ``POST /api/v1/rules/reload`` (tuning without restart),
* ``GET /metrics`` (Prometheus; behind the token like ``/api``),
* OpenAPI at ``/openapi.json``, ``/docs`` and ``/redoc``, their scripts served from the package
  (fastapi-offline), so the pages work without internet.

Every error is ``application/problem+json`` (see :mod:`stockade.api.problem`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from fastapi import Depends, FastAPI
from fastapi_offline import FastAPIOffline

from stockade import __version__
from stockade.api import (
    metrics,
    routes_alerts,
    routes_events,
    routes_health,
    routes_ingest,
    routes_rules,
    routes_tuning,
)
from stockade.api.body import BodyLimitMiddleware
from stockade.api.deps import require_token
from stockade.api.problem import PROBLEM_MEDIA_TYPE, install_problem_handlers
from stockade.model.alert import Alert
from stockade.model.event import Event
from stockade.model.mute import Mute

if TYPE_CHECKING:
    from stockade.storage.store import Store

API_PREFIX = "/api/v1"
DEFAULT_MAX_BODY_BYTES = 16 * 2**20


class RuntimeView(Protocol):
    """What the API needs from the running pipeline (implemented by :mod:`stockade.runtime`)."""

    def rules_info(self) -> list[dict[str, Any]]:
        """The engine's rules: name, priority, source, tags, enabled, desc, condition, output, file, line."""
        ...

    def status(self) -> dict[str, Any]:
        """Backend, rules loaded, events/s, drops, sources, sinks."""
        ...

    def ingest(self, events: list[Event]) -> int:
        """Evaluate and store `events`; the number of alerts produced (forwarded ones included).

        An event whose ``meta["falco_alert"]`` holds a Falco alert (``POST /ingest/falco``) carries
        an external alert: the runtime forwards it, linked to the event, to storage and the sinks.
        Thread-safe.
        """
        ...

    def record(self, events: list[Event]) -> None:
        """Store `events` without evaluating them (an agent's evidence, already evaluated there)."""
        ...

    def ingest_alerts(self, alerts: list[Alert]) -> int:
        """Store external alerts that come without an event and send them to the sinks."""
        ...

    def metrics(self) -> dict[str, Any]:
        """The counters /metrics exposes (stockade.api.metrics reads them at scrape time)."""
        ...

    def reload_rules(self) -> dict[str, Any]:
        """Load and compile the rules again and swap them in; a StockadeError (the running rules
        kept) if they fail."""
        ...

    def now_ns(self) -> int:
        """The clock mutes expire by."""
        ...

    def add_mute(
        self,
        rule: str,
        reason: str,
        *,
        workload: str | None = None,
        for_: str | float | None = None,
        until: str | int | None = None,
        created_by: str | None = None,
    ) -> Mute:
        """Mute a loaded rule for a workload (or everywhere) until an expiry; applies at once."""
        ...

    def list_mutes(self, include_expired: bool = False) -> list[Mute]: ...

    def delete_mute(self, mute_id: str) -> Mute:
        """Unmute (id or unique prefix); NotFoundError if there is no such mute."""
        ...


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
    install_problem_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=max_body_bytes)

    app.include_router(routes_health.router)
    auth = [Depends(require_token)]
    for r in (
        routes_alerts.router,
        routes_events.router,
        routes_rules.router,
        routes_ingest.router,
        routes_tuning.router,
    ):
        app.include_router(r, prefix=API_PREFIX, dependencies=auth)
    app.include_router(metrics.router, dependencies=auth)
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
