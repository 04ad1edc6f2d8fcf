"""Kubernetes audit events (``audit.k8s.io`` Event objects) from a log file, stdin or a webhook body.

Input, as the API server's log and webhook backends write it and as Falco's k8saudit plugin reads it:

* JSON Lines: one ``Event`` per line (the ``--audit-log-path`` format), or one ``EventList`` per line;
* one JSON document: an ``EventList`` (``{"kind": "EventList", "items": [...]}``) or an array of
  Events, compact or pretty-printed over many lines;
* the audit webhook's POST body (:func:`parse_audit_webhook_body`): an ``EventList``; one Event, an
  array or JSON Lines are accepted too.

Each Event becomes ``Event("k8s_audit", data=<the Event dict>, origin="file:line")``. Versions
``audit.k8s.io/v1``, ``v1beta1`` and ``v1alpha1`` are read; older events are normalised in place so
that rules see v1's shape: a missing ``stageTimestamp``/``requestReceivedTimestamp`` is taken from the
deprecated ``timestamp`` (v1alpha1, v1beta1), and a v1alpha1 ``objectRef.apiVersion`` of
``group/version`` is split into ``apiGroup`` and ``apiVersion``.

A record that is not an audit Event (no ``auditID``, no usable time, another kind) is counted in
``stats.malformed`` with its ``file:line`` and skipped, as the plugin skips it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, BinaryIO, ClassVar

import orjson

from stockade.errors import SourceError
from stockade.model.event import K8S_AUDIT, Event
from stockade.model.timeutil import parse_time_ns
from stockade.sources.base import InputSource, iter_lines, json_kind
from stockade.sources.detect import foreign
from stockade.sources.interface import SourceStats

__all__ = ["K8sAuditSource", "check_audit_event", "normalize_audit_event", "parse_audit_webhook_body"]

API_GROUP = "audit.k8s.io/"
#: an audit apiVersion, in one JSON document too long to decode within the detection peek
_DOC_KEY = re.compile(rb'"apiVersion"\s*:\s*"audit\.k8s\.io/')
_TIME_KEYS = ("stageTimestamp", "requestReceivedTimestamp")


def normalize_audit_event(obj: dict[str, Any]) -> None:
    """Give an older (v1alpha1, v1beta1) Event v1's shape, in place (see the module docstring)."""
    old = obj.get("timestamp")
    if not isinstance(old, str):
        meta = obj.get("metadata")
        old = meta.get("creationTimestamp") if isinstance(meta, dict) else None
    if isinstance(old, str):
        for k in _TIME_KEYS:
            if k not in obj:
                obj[k] = old
    if "stageTimestamp" not in obj and isinstance(obj.get("requestReceivedTimestamp"), str):
        obj["stageTimestamp"] = obj["requestReceivedTimestamp"]
    if obj.get("apiVersion") == "audit.k8s.io/v1alpha1":
        ref = obj.get("objectRef")
        if isinstance(ref, dict) and "apiGroup" not in ref:
            ver = ref.get("apiVersion")
            if isinstance(ver, str) and "/" in ver:
                ref["apiGroup"], ref["apiVersion"] = ver.split("/", 1)


def check_audit_event(obj: object) -> str | None:
    """Why ``obj`` is not a usable audit Event (None if it is one); normalises it in place."""
    if not isinstance(obj, dict):
        return f"expected an audit.k8s.io Event object, got {json_kind(obj)}"
    kind = obj.get("kind")
    api = obj.get("apiVersion")
    if (kind is not None and kind != "Event") or (api is not None and not str(api).startswith(API_GROUP)):
        return f"not an audit event (kind {kind!r}, apiVersion {api!r})"
    if "auditID" not in obj:
        return foreign(obj, K8S_AUDIT) or "not an audit event: no auditID"
    for k in ("verb", "requestURI", "stage", "auditID"):
        v = obj.get(k)
        if v is not None and not isinstance(v, str):
            return f"{k} is {json_kind(v)}, expected a string"
    normalize_audit_event(obj)
    ts = obj.get("stageTimestamp")
    if ts is None:
        return "no stageTimestamp (nor requestReceivedTimestamp or timestamp)"
    if not isinstance(ts, str) or parse_time_ns(ts) is None:
        return f"stageTimestamp {ts!r} is not an RFC 3339 time"
    return None


def _records(doc: Any) -> tuple[list[Any], str | None]:
    """The Event candidates a decoded document holds (EventList items, array elements, or itself),
    or a reason it holds none."""
    if isinstance(doc, list):
        return doc, None
    if isinstance(doc, dict) and doc.get("kind") == "EventList":
        items = doc.get("items")
        if items is None:
            return [], None  # an empty list: the API server omits "items"
        if not isinstance(items, list):
            return [], f"EventList items is {json_kind(items)}, expected an array"
        return items, None
    return [doc], None


class K8sAuditSource(InputSource):
    """Audit events from a file (path, ``-`` for stdin, ``.gz``) or a binary stream."""

    name = K8S_AUDIT
    record: ClassVar[str] = "a Kubernetes audit event"
    #: first: an audit Event says what it is (kind and apiVersion)
    detect_order: ClassVar[int] = 10

    @classmethod
    def classify(cls, obj: object) -> bool:
        """An ``audit.k8s.io`` Event or EventList."""
        if not isinstance(obj, dict) or obj.get("kind") not in ("Event", "EventList"):
            return False
        api = obj.get("apiVersion")
        return isinstance(api, str) and api.startswith(API_GROUP)

    @classmethod
    def sniff(cls, text: bytes) -> bool:
        """A document with an ``audit.k8s.io`` apiVersion."""
        return _DOC_KEY.search(text) is not None

    # --- JSON Lines ----------------------------------------------------------------------------

    def _events(self, stream: BinaryIO) -> Iterator[Event]:
        lines = iter_lines(stream)
        lineno = 0
        first = True
        for line in lines:
            lineno += 1
            if not line.strip():
                continue
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                if first and line.lstrip()[:1] in (b"{", b"["):
                    # not one record per line: one document over many lines (a pretty EventList)
                    yield from self._document([line, *lines], lineno)
                    return
                self.stats.bad(f"{self.where}:{lineno}", f"not JSON: {e.msg} at column {e.colno}")
                first = False
                continue
            first = False
            yield from self._doc_events(doc, lineno, None)

    def _doc_events(self, doc: Any, lineno: int, item_lines: list[int] | None) -> Iterator[Event]:
        where = f"{self.where}:{lineno}"
        items, why = _records(doc)
        if why is not None:
            self.stats.bad(where, why)
            return
        several = len(items) > 1 or item_lines is not None
        for i, item in enumerate(items):
            origin = f"{self.where}:{item_lines[i]}" if item_lines and i < len(item_lines) else where
            why = check_audit_event(item)
            if why is not None:
                self.stats.bad(origin, f"item {i}: {why}" if several and not item_lines else why)
                continue
            self.stats.events += 1
            yield Event(K8S_AUDIT, item, origin)

    # --- one document over many lines ----------------------------------------------------------

    def _document(self, lines: list[bytes], first_line: int) -> Iterator[Event]:
        data = b"\n".join(lines)
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            if lines[0].strip() in (b"{", b"["):
                line = first_line + e.lineno - 1
                self.stats.bad(f"{self.where}:{line}", f"not JSON: {e.msg} at column {e.colno}")
                return
            # JSON Lines whose first line is broken: report it and read the rest line by line
            yield from self._lines_from(lines, first_line)
            return
        yield from self._doc_events(doc, first_line, _item_lines(data, first_line))

    def _lines_from(self, lines: list[bytes], first_line: int) -> Iterator[Event]:
        for n, line in enumerate(lines, start=first_line):
            if not line.strip():
                continue
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                self.stats.bad(f"{self.where}:{n}", f"not JSON: {e.msg} at column {e.colno}")
                continue
            yield from self._doc_events(doc, n, None)


def _item_lines(data: bytes, first_line: int) -> list[int] | None:
    """The line each Event of a multi-line document starts on (EventList items or array elements),
    or None if they cannot be told apart."""
    try:
        text = data.decode("utf-8")
        dec = json.JSONDecoder()
        ws = " \t\r\n"
        pos = len(text) - len(text.lstrip(ws))
        if text[pos] == "{":
            # find the top-level "items" value
            pos += 1
            while True:
                while text[pos] in ws + ",":
                    pos += 1
                if text[pos] == "}":
                    return None
                key, pos = dec.raw_decode(text, pos)
                while text[pos] in ws + ":":
                    pos += 1
                if key == "items":
                    break
                _, pos = dec.raw_decode(text, pos)
        if text[pos] != "[":
            return None
        starts: list[int] = []
        pos += 1
        line, counted = first_line, 0
        while True:
            while text[pos] in ws + ",":
                pos += 1
            if text[pos] == "]":
                return starts
            line += text.count("\n", counted, pos)
            counted = pos
            starts.append(line)
            _, pos = dec.raw_decode(text, pos)
    except (UnicodeDecodeError, ValueError, IndexError):
        return None


def parse_audit_webhook_body(body: bytes, stats: SourceStats | None = None) -> list[dict[str, Any]]:
    """The audit Events of an audit webhook POST body: an ``EventList`` (also one Event, an array of
    Events, or JSON Lines of either).

    Raises SourceError with the reason when the body is not JSON or not audit events. Without
    ``stats``, any item that is not a usable Event fails the whole body (nothing is dropped
    silently); with ``stats``, such items are counted there and the usable ones returned.
    """
    text = body.strip()
    if not text:
        raise SourceError("empty body: expected an audit.k8s.io EventList")
    docs, problems = _body_documents(text)
    out: list[dict[str, Any]] = []
    for where, doc in docs:
        items, why = _records(doc)
        if why is not None:
            problems.append((where, why))
            continue
        for i, item in enumerate(items):
            why = check_audit_event(item)
            if why is not None:
                problems.append((f"{where} item {i}" if len(items) > 1 or doc is not item else where, why))
                continue
            out.append(item)
    if problems:
        if stats is None or not out:
            more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
            where, what = problems[0]
            raise SourceError(f"not a valid audit.k8s.io EventList: {where}: {what}{more}")
        for where, what in problems:
            stats.bad(where, what)
    if stats is not None:
        stats.events += len(out)
    return out


def _body_documents(text: bytes) -> tuple[list[tuple[str, Any]], list[tuple[str, str]]]:
    """The JSON documents of a body (the whole body, else each line) as ``(where, document)``, and
    ``(where, what)`` for each line that is not JSON. SourceError if no part is JSON."""
    try:
        return [("body", orjson.loads(text))], []
    except orjson.JSONDecodeError as whole_err:
        docs: list[tuple[str, Any]] = []
        problems: list[tuple[str, str]] = []
        for n, line in enumerate(text.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                docs.append((f"line {n}", orjson.loads(line)))
            except orjson.JSONDecodeError as e:
                problems.append((f"line {n}", f"not JSON: {e.msg} at column {e.colno}"))
        if not docs:
            raise SourceError(
                f"body is not JSON: {whole_err.msg} at line {whole_err.lineno} column {whole_err.colno}"
            ) from None
        return docs, problems
