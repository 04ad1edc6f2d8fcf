"""The API's audit trail: every request that changes something (any method but GET, HEAD and
OPTIONS) is appended to the audit log once answered: kind ``api``, subject ``METHOD PATH``, data
``{method, path, status}``, actor ``token@<peer address>`` when the API has a token and the request
carried it, else the peer address. Ingestion (``/api/v1/ingest/*``: Falco, agents, the Kubernetes
audit webhook) is data, not a user's action: not recorded here (the alerts it raises are)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stockade.api.deps import INGEST_PREFIX

__all__ = ["AuditMiddleware"]

_READS = frozenset({"GET", "HEAD", "OPTIONS"})


class AuditMiddleware:
    """ASGI middleware (module docstring); the log is the app's ``state.audit`` (None: nothing recorded)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; record it once answered if it changes something."""
        method = scope.get("method", "")
        path = scope.get("path", "")
        audit = getattr(scope["app"].state, "audit", None) if scope["type"] == "http" else None
        if audit is None or method in _READS or path.startswith(INGEST_PREFIX):
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets if the app fails before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            actor = _actor(scope, status)
            data: dict[str, Any] = {"method": method, "path": path, "status": status}
            await run_in_threadpool(audit.record, "api", f"{method} {path}", data, actor=actor)


def _actor(scope: Scope, status: int) -> str:
    client = scope.get("client")
    peer = str(client[0]) if client else "unknown"
    token = getattr(scope["app"].state, "token", None)
    return f"token@{peer}" if token is not None and status != 401 else peer
