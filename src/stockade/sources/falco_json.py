"""Falco's JSON alerts (``json_output: true``) as events.

Each alert becomes an :class:`Event` of the alert's source (``syscall`` or ``k8s_audit``) whose data
is the alert's ``output_fields`` (flat, keyed by Falco field names) plus ``evt.time`` from the alert's
``time``. The original alert is kept in ``meta["falco_alert"]`` so it can be forwarded as is.

Input: one alert per line from a file or stdin (:class:`FalcoJsonSource`), or the body Falco's
``http_output`` and falcosidekick POST (:func:`parse_falco_http_body`): one alert object, a JSON array
of alerts, or JSON Lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO, ClassVar, cast

import orjson

from stockade.errors import SourceError
from stockade.model.event import K8S_AUDIT, SYSCALL, Event
from stockade.model.timeutil import parse_time_ns
from stockade.sources.base import InputSource, iter_records
from stockade.sources.detect import foreign

__all__ = ["FalcoJsonSource", "alert_to_event", "check_alert", "parse_falco_http_body"]

#: values Falco prints for a field the event lacks
_MISSING = (None, "<NA>")
#: the keys every Falco alert has
_ALERT_KEYS = ("rule", "priority", "output")
#: those keys in one JSON document too long to decode within the detection peek
_DOC_KEYS = tuple(re.compile(rb'"%s"\s*:' % k.encode()) for k in _ALERT_KEYS)
NAME = "falco"


def check_alert(obj: object) -> str | None:
    """Why ``obj`` is not a Falco alert, or None if it is one."""
    if not isinstance(obj, dict):
        return "expected a Falco alert object"
    missing = [k for k in ("rule", "output") if not isinstance(obj.get(k), str)]
    if missing:
        return foreign(obj, NAME) or f"not a Falco alert: no {' or '.join(missing)}"
    fields = obj.get("output_fields", {})
    if fields is not None and not isinstance(fields, dict):
        return "output_fields is not an object"
    return None


def alert_to_event(alert: dict[str, Any], origin: str | None = None) -> Event:
    """The event a checked Falco alert describes (see :func:`check_alert`)."""
    fields = alert.get("output_fields") or {}
    data: dict[str, Any] = {k: v for k, v in fields.items() if v not in _MISSING}
    t = data.get("evt.time")
    if not isinstance(t, int):
        ns = None
        if isinstance(t, str):
            ns = parse_time_ns(t)
        if ns is None and isinstance(alert.get("time"), str):
            ns = parse_time_ns(alert["time"])
        if ns is not None:
            data["evt.time"] = ns
    if "evt.hostname" not in data and isinstance(alert.get("hostname"), str):
        data["evt.hostname"] = alert["hostname"]
    source = alert.get("source")
    if not isinstance(source, str) or not source:
        source = K8S_AUDIT if any(k.startswith(("ka.", "jevt.")) for k in data) else SYSCALL
    return Event(source, data, origin, meta={"falco_alert": alert})


class FalcoJsonSource(InputSource):
    """Events from Falco JSON alerts, one per line (a file, ``-`` for stdin, or a binary stream)."""

    name = NAME
    record: ClassVar[str] = "a Falco alert"
    detect_order: ClassVar[int] = 20

    @classmethod
    def classify(cls, obj: object) -> bool:
        """An alert: it has ``rule``, ``priority`` and ``output``."""
        return isinstance(obj, dict) and all(k in obj for k in _ALERT_KEYS)

    @classmethod
    def sniff(cls, text: bytes) -> bool:
        """A document with the keys of an alert."""
        return all(p.search(text) is not None for p in _DOC_KEYS)

    def _events(self, stream: BinaryIO) -> Iterator[Event]:
        where = self.where
        for lineno, obj in iter_records(stream, where, self.stats):
            why = check_alert(obj)
            if why is not None:
                self.stats.bad(f"{where}:{lineno}", why)
                continue
            self.stats.events += 1
            yield alert_to_event(cast("dict[str, Any]", obj), f"{where}:{lineno}")  # checked


def parse_falco_http_body(body: bytes, content_type: str | None = None) -> list[dict[str, Any]]:
    """The alerts in a body POSTed by Falco's http_output or falcosidekick.

    Accepts one alert object, a JSON array of alerts, or JSON Lines (``application/x-ndjson``,
    or any body with one object per line). Raises :class:`SourceError` naming the first bad
    alert (by index or line) if the body is not alerts.
    """
    text = body.strip()
    if not text:
        raise SourceError("empty body: expected a Falco alert (JSON object), an array, or JSON Lines")
    ct = (content_type or "").lower()
    ndjson = "ndjson" in ct or "jsonl" in ct or "json-seq" in ct
    if not ndjson:
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError as e:
            if b"\n" not in text:
                raise SourceError(f"body is not JSON: {e.msg} at column {e.colno}") from None
        else:
            items = obj if isinstance(obj, list) else [obj]
            for i, item in enumerate(items):
                why = check_alert(item)
                if why is not None:
                    at = f"item {i}: " if isinstance(obj, list) else ""
                    raise SourceError(f"{at}{why}")
            return items
    alerts: list[dict[str, Any]] = []
    for lineno, line in enumerate(text.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise SourceError(f"line {lineno}: not JSON: {e.msg} at column {e.colno}") from None
        why = check_alert(item)
        if why is not None:
            raise SourceError(f"line {lineno}: {why}")
        alerts.append(item)
    return alerts
