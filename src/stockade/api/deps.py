"""Request dependencies: the store, the runtime, the bearer-token check."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from stockade.api.interface import RuntimeView
from stockade.api.problem import Problem
from stockade.model.apipaths import INGEST, api_path

if TYPE_CHECKING:
    from stockade.storage.store import Store


def get_store(request: Request) -> Store:
    """The store the API reads and the runtime writes."""
    store: Store = request.app.state.store
    return store


def get_runtime(request: Request) -> RuntimeView:
    """The attached runtime; 503 when this API serves a store only."""
    runtime: Any = request.app.state.runtime
    if runtime is None:
        raise Problem(
            503,
            "no detection runtime is attached to this API (read-only store)",
            kind="runtime-unavailable",
        )
    rv: RuntimeView = runtime
    return rv


def get_max_body(request: Request) -> int:
    """The largest request body the API reads, in bytes."""
    n: int = request.app.state.max_body_bytes
    return n


#: ingestion endpoints also take the token as an `access_token` query parameter
INGEST_PREFIX = api_path(INGEST) + "/"


def require_token(request: Request) -> None:
    """When a token is configured, require `Authorization: Bearer <token>` (constant-time compare).

    On the ingestion endpoints, ``?access_token=<token>`` is accepted in place of the header.
    """
    expected: bytes | None = request.app.state.token
    if expected is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if not header and request.url.path.startswith(INGEST_PREFIX):
        # RFC 6750 section 2.3, for senders that cannot set headers (Falco's http_output)
        scheme, given = "bearer", request.query_params.get("access_token", "")
        header = given
    ok = scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode("utf-8"), expected)
    if not ok:
        raise Problem(
            401,
            "missing or invalid bearer token" if header else "this API requires a bearer token",
            kind="unauthorized",
            headers={"WWW-Authenticate": 'Bearer realm="stockade"'},
        )


# Annotated dependency types. At run time the parameter type is Any so FastAPI never needs to
# introspect Store (whose import is deferred to create_app); mypy sees the real types.
if TYPE_CHECKING:
    StoreDep = Annotated[Store, Depends(get_store)]
    RuntimeDep = Annotated[RuntimeView, Depends(get_runtime)]
else:
    StoreDep = Annotated[Any, Depends(get_store)]
    RuntimeDep = Annotated[Any, Depends(get_runtime)]
MaxBodyDep = Annotated[int, Depends(get_max_body)]
