"""Kubernetes audit events: JSON Lines of audit.k8s.io Event objects (v1, v1beta1), a whole EventList
document (possibly pretty-printed over many lines), or JSON Lines of EventLists; and the body the API
server's audit webhook POSTs (an EventList)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from stockade.errors import SourceError
from stockade.model.event import Event
from stockade.sources.interface import SourceStats
from stockade.sources.jsonl import PathOrStream, display_name, open_input_stream

_API_VERSIONS = ("audit.k8s.io/v1", "audit.k8s.io/v1beta1", "audit.k8s.io/v1alpha1")


def check_audit_event(obj: Any) -> str | None:
    """Why `obj` is not an audit Event, or None if it is one."""
    if not isinstance(obj, dict):
        return f"expected a JSON object, found {type(obj).__name__}"
    if "auditID" not in obj:
        return "not an audit event (no auditID)"
    api = obj.get("apiVersion")
    if api is not None and api not in _API_VERSIONS:
        return f"unsupported apiVersion {api!r}"
    if not isinstance(obj.get("verb", ""), str):
        return "'verb' is not a string"
    return None


def items_of(doc: Any) -> list[Any] | None:
    """The Events of an EventList, [doc] for an Event, None otherwise."""
    if isinstance(doc, dict) and doc.get("kind") == "EventList":
        items = doc.get("items")
        return items if isinstance(items, list) else []
    if isinstance(doc, dict):
        return [doc]
    return None


class K8sAuditSource:
    name = "k8s_audit"

    def __init__(self, path_or_stream: PathOrStream, *, name_hint: str | None = None) -> None:
        self._input = path_or_stream
        self.where = display_name(path_or_stream, name_hint)
        self.stats = SourceStats()

    def events(self) -> Iterator[Event]:
        stream, owned = open_input_stream(self._input)
        try:
            yield from self._events(stream)
        finally:
            if owned:
                stream.close()

    def _emit(self, obj: Any, origin: str) -> Iterator[Event]:
        items = items_of(obj)
        if items is None:
            self.stats.bad(origin, f"expected an audit Event or EventList, found {type(obj).__name__}")
            return
        for i, item in enumerate(items):
            why = check_audit_event(item)
            where = origin if len(items) == 1 else f"{origin} item {i}"
            if why is not None:
                self.stats.bad(where, why)
                continue
            self.stats.events += 1
            yield Event("k8s_audit", item, where)

    def _events(self, stream: BinaryIO) -> Iterator[Event]:
        lineno = 0
        for raw in stream:
            lineno += 1
            line = raw.strip()
            if not line:
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                if lineno == 1 and line in (b"{", b"["):
                    # a pretty-printed document (an EventList): read it whole
                    yield from self._whole(raw + stream.read(), lineno)
                    return
                self.stats.bad(f"{self.where}:{lineno}", f"not JSON: {e.msg} at column {e.colno}")
                continue
            yield from self._emit(obj, f"{self.where}:{lineno}")

    def _whole(self, data: bytes, lineno: int) -> Iterator[Event]:
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            self.stats.bad(f"{self.where}:{lineno + e.lineno - 1}", f"not JSON: {e.msg} at column {e.colno}")
            return
        if isinstance(doc, list):
            for i, item in enumerate(doc):
                yield from self._emit(item, f"{self.where}[{i}]")
            return
        yield from self._emit(doc, f"{self.where}:{lineno}")


def parse_audit_webhook_body(body: bytes) -> list[dict[str, Any]]:
    """The audit Events in a webhook POST (an EventList; also one Event, an array, or JSON Lines).
    Raises SourceError naming what is wrong."""
    text = body.strip()
    if not text:
        raise SourceError("empty body: expected an audit.k8s.io EventList")
    docs: list[Any]
    try:
        doc = orjson.loads(text)
        docs = doc if isinstance(doc, list) else [doc]
    except orjson.JSONDecodeError:
        docs = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                docs.append(orjson.loads(line))
            except orjson.JSONDecodeError as e:
                raise SourceError(f"line {n}: not JSON: {e.msg} at column {e.colno}") from None
    out: list[dict[str, Any]] = []
    for i, d in enumerate(docs):
        items = items_of(d)
        if items is None:
            raise SourceError(f"item {i}: expected an audit Event or EventList, found {type(d).__name__}")
        for j, item in enumerate(items):
            why = check_audit_event(item)
            if why is not None:
                raise SourceError(f"item {i}.{j}: {why}")
            out.append(item)
    return out
