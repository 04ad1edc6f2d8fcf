"""RFC 9457 (ex-7807) problem details: every error the API returns is ``application/problem+json``.

A problem is ``{type, title, status, detail, instance}`` plus optional extension members
(``errors`` for validation problems, ``accepted``/``rejected`` for ingestion). No handler ever puts a
traceback in a response: unexpected exceptions become a 500 with a generic detail and are logged.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from stockade.errors import StockadeError

log = logging.getLogger("stockade.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://stockade.dev/problems/"


class ProblemModel(BaseModel):
    """The problem+json body (for the OpenAPI schema)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


class ProblemResponse(JSONResponse):
    """A JSON response of type application/problem+json."""

    media_type = PROBLEM_MEDIA_TYPE


class Problem(Exception):
    """Raise from an endpoint to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind
        self.title = title
        self.headers = headers
        self.extensions = extensions


def problem_body(
    status: int,
    detail: str | None,
    *,
    instance: str | None,
    kind: str | None = None,
    title: str | None = None,
    **extensions: Any,
) -> dict[str, Any]:
    """The problem document: `kind` is the type's slug under PROBLEM_BASE (None: about:blank)."""
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + kind if kind else "about:blank",
        "title": title or phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
    }
    body.update(extensions)
    return body


def problem_response(
    request: Request | None,
    status: int,
    detail: str | None,
    *,
    kind: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    instance: str | None = None,
    **extensions: Any,
) -> ProblemResponse:
    """The problem response for `request` (its path is the problem's instance)."""
    if instance is None and request is not None:
        instance = request.url.path
    body = problem_body(status, detail, instance=instance, kind=kind, title=title, **extensions)
    return ProblemResponse(body, status_code=status, headers=headers)


def _loc_str(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("query", "path", "body", "header")] if loc else []
    where = loc[0] if loc else ""
    return f"{where} parameter '{'.'.join(parts)}'" if parts else str(where or "request")


async def _on_problem(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, Problem)
    return problem_response(
        request, exc.status, exc.detail, kind=exc.kind, title=exc.title, headers=exc.headers, **exc.extensions
    )


async def _on_http(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no such path: {request.url.path}"
    elif exc.status_code == 405:
        detail = f"method {request.method} not allowed on {request.url.path}"
    headers = dict(exc.headers) if exc.headers else None
    return problem_response(request, exc.status_code, detail, headers=headers)


async def _on_validation(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"where": _loc_str(e.get("loc", ())), "message": str(e.get("msg", "invalid"))} for e in exc.errors()
    ]
    detail = "; ".join(f"{e['where']}: {e['message']}" for e in errors[:5]) or "invalid request"
    return problem_response(
        request, 422, detail, kind="invalid-parameter", title="Invalid request parameter", errors=errors
    )


async def _on_stockade(request: Request, exc: Exception) -> ProblemResponse:
    """The API's error boundary: a StockadeError answers with its class's status, type and title."""
    assert isinstance(exc, StockadeError)
    if exc.http_status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc)
    return problem_response(request, exc.http_status, str(exc), kind=exc.problem_type, title=exc.title)


async def _on_unexpected(request: Request, exc: Exception) -> ProblemResponse:
    log.error("%s %s: unexpected error", request.method, request.url.path, exc_info=exc)
    return problem_response(
        request, 500, "internal error; the server log has the details", kind="internal-error"
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error response of `app` a problem document."""
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StockadeError, _on_stockade)
    app.add_exception_handler(Exception, _on_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A `responses=` entry for routes and routers: the OpenAPI document shows the problem shape."""
    return {
        s: {
            "model": ProblemModel,
            "description": HTTPStatus(s).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemModel"}}},
        }
        for s in statuses
    }
