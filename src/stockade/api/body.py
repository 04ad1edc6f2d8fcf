"""Reading request bodies defensively: size cap, content type, JSON / JSON Lines decoding with location.

The size cap is enforced twice: :class:`BodyLimitMiddleware` refuses a declared ``Content-Length``
above the cap before anything is read, and :func:`read_body` stops reading a streamed (chunked) body
as soon as it passes the cap. Either way the answer is a 413 problem and the rest is never read.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from stockade.api.problem import Problem, problem_body

JSON_TYPES = frozenset({"application/json", "text/json"})
JSONL_TYPES = frozenset(
    {
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/x-jsonlines",
        "application/jsonlines",
    }
)
#: at most this many per-line problems are reported back
MAX_REPORTED_ERRORS = 10


def media_type(request: Request) -> str | None:
    """The request's media type, lower-case, without parameters; None when absent."""
    raw = request.headers.get("content-type")
    if raw is None:
        return None
    return raw.split(";", 1)[0].strip().lower() or None


def require_json_type(request: Request, *, allow_jsonl: bool = True) -> str:
    """'json' or 'jsonl' for an acceptable Content-Type (absent counts as JSON); 415 otherwise."""
    mt = media_type(request)
    if mt is None or mt in JSON_TYPES or (mt.startswith("application/") and mt.endswith("+json")):
        return "json"
    if allow_jsonl and mt in JSONL_TYPES:
        return "jsonl"
    accepted = ", ".join(sorted(JSON_TYPES | (JSONL_TYPES if allow_jsonl else frozenset())))
    hint = " (Falco: set json_output: true)" if mt == "text/plain" else ""
    raise Problem(
        415,
        f"unsupported Content-Type '{mt}'{hint}; send one of: {accepted}",
        kind="unsupported-media-type",
    )


def _too_large(limit: int) -> Problem:
    return Problem(413, f"request body larger than the limit of {limit} bytes", kind="body-too-large")


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, at most `limit` bytes (413 beyond), decompressed if gzip/deflate-encoded."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = (request.headers.get("content-encoding") or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise Problem(415, f"unsupported Content-Encoding '{encoding}'", kind="unsupported-media-type")
    return _decompress(body, encoding, limit)


def _decompress(body: bytes, encoding: str, limit: int) -> bytes:
    wbits = 16 + zlib.MAX_WBITS if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
    d = zlib.decompressobj(wbits)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as e:
        raise Problem(400, f"cannot decompress the {encoding} body: {e}", kind="invalid-json") from e
    if len(out) > limit or d.unconsumed_tail:
        raise _too_large(limit)
    return out


def json_error_where(body: bytes, pos: int) -> tuple[int, int]:
    """1-based (line, column) of byte offset `pos` in `body`."""
    pos = max(0, min(pos, len(body)))
    line = body.count(b"\n", 0, pos) + 1
    col = pos - (body.rfind(b"\n", 0, pos) + 1) + 1
    return line, col


def decode_json(body: bytes) -> Any:
    """One JSON document; a 400 problem naming line, column and offset when it is not valid JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        line, col = json_error_where(body, e.pos)
        raise Problem(
            400,
            f"invalid JSON at line {line}, column {col} (offset {e.pos}): {e.msg}",
            kind="invalid-json",
            line=line,
            column=col,
            offset=e.pos,
        ) from e


@dataclass(slots=True)
class LineResult:
    """Counts of records that were not accepted, with the first few reasons."""

    rejected: int = 0
    errors: list[str] = field(default_factory=list)

    def bad(self, where: str, why: str) -> None:
        """Count one rejected record; keep its reason among the first few."""
        self.rejected += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(f"{where}: {why}")


@dataclass(frozen=True, slots=True)
class Undecodable:
    """Stands for a JSON Lines line that is not JSON, in its place among the records."""

    why: str


def _lines(body: bytes) -> Iterator[tuple[int, bytes]]:
    for n, raw in enumerate(body.split(b"\n"), start=1):
        line = raw.strip()
        if line:
            yield n, line


def decode_records(body: bytes, kind: str) -> tuple[list[tuple[int, Any]], str]:
    """Decode a body into (position, record) pairs and a label for positions ("line" or "item").

    ``jsonl``: one JSON value per line; a line that is not JSON becomes an :class:`Undecodable`
    record in its place. ``json``: one document, an array of records or a single record; if it is
    not valid JSON but its first line is, it is read as JSON Lines (senders that mislabel), else it
    is a 400 problem naming line and column.
    """
    if not body.strip():
        return [], "line"
    if kind == "json":
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            first = next(_lines(body))[1]
            if first == body.strip() or not _is_json(first):
                decode_json(body)  # raises the 400 problem with the location
        else:
            if isinstance(value, list):
                return list(enumerate(value, start=1)), "item"
            return [(1, value)], "line"
    records: list[tuple[int, Any]] = []
    for n, line in _lines(body):
        try:
            records.append((n, orjson.loads(line)))
        except orjson.JSONDecodeError as e:
            records.append((n, Undecodable(f"invalid JSON at column {e.pos + 1}: {e.msg}")))
    return records, "line"


def _is_json(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


class BodyLimitMiddleware:
    """Refuse, before reading it, a request whose declared Content-Length exceeds `max_body_bytes`."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 413 at once when the declared length is over the limit; else pass the request on."""
        if scope["type"] == "http":
            declared = None
            for k, v in scope.get("headers", ()):
                if k == b"content-length":
                    declared = v.decode("latin-1").strip()
                    break
            status, detail, kind = 0, "", ""
            if declared is not None and not declared.isdigit():
                status, detail, kind = 400, f"invalid Content-Length '{declared[:40]}'", "invalid-request"
            elif declared is not None and int(declared) > self.max_body_bytes:
                status, kind = 413, "body-too-large"
                detail = f"request body larger than the limit of {self.max_body_bytes} bytes"
            if status:
                body = orjson.dumps(problem_body(status, detail, instance=scope.get("path"), kind=kind))
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [
                            (b"content-type", b"application/problem+json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
