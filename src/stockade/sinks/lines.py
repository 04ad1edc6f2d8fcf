"""Alert lines, shared by the sinks that write one alert per line (stdout, file).

Text is Falco's format, one alert per line: ``HH:MM:SS.nnnnnnnnn: Priority Output`` (local time,
like Falco; with ``iso8601`` the full UTC time). An aggregated alert ends with ``(repeated N
times)``. JSON Lines carry :meth:`Alert.to_falco_json`, the shape falcosidekick and SIEM pipelines
read.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from typing import Any, assert_never

import orjson

from stockade.model.alert import Alert
from stockade.model.choices import OutputFormat
from stockade.model.timeutil import format_time_ns
from stockade.sinks.ocsf import to_ocsf

__all__ = [
    "alert_document",
    "alert_json",
    "container_label",
    "format_json_line",
    "format_text_line",
    "line_formatter",
    "namespace_of",
]


_FALCO_PREFIX = re.compile(r"\d\d:\d\d:\d\d\.\d{9}: [A-Z][a-z]+ ")


def format_text_line(alert: Alert, iso8601: bool = False) -> bytes:
    """One alert in Falco's text format, newline-terminated."""
    secs, frac = divmod(alert.time_ns, 1_000_000_000)
    if iso8601:
        ts = format_time_ns(alert.time_ns)
    else:
        ts = time.strftime("%H:%M:%S", time.localtime(secs)) + f".{frac:09d}"
    out = alert.output
    if "\n" in out or "\r" in out:
        out = out.replace("\r", "\\r").replace("\n", "\\n")
    # Falco's (and the engine's) `output` already starts with "HH:MM:SS.nnnnnnnnn: Priority "
    line = out if _FALCO_PREFIX.match(out) and not iso8601 else f"{ts}: {alert.priority} {out}"
    if alert.count > 1:
        line += f" (repeated {alert.count} times)"
    return (line + "\n").encode("utf-8", "replace")


def alert_document(alert: Alert, ocsf: bool = False) -> dict[str, Any]:
    """The alert as a JSON document: Falco's alert JSON, or (`ocsf`) an OCSF Detection Finding."""
    return to_ocsf(alert) if ocsf else alert.to_falco_json()


def alert_json(alert: Alert, ocsf: bool = False) -> bytes:
    """:func:`alert_document` serialised (one line: no raw newline)."""
    return orjson.dumps(alert_document(alert, ocsf), option=orjson.OPT_NON_STR_KEYS)


def format_json_line(alert: Alert, ocsf: bool = False) -> bytes:
    """One alert as a JSON Lines record (Falco's alert JSON plus the `stockade` object, or OCSF)."""
    return alert_json(alert, ocsf) + b"\n"


def line_formatter(
    format: OutputFormat, iso8601: bool = False, ocsf: bool = False
) -> Callable[[Alert], bytes]:
    """The function that turns an alert into one line of `format` (JSON: Falco's, or OCSF)."""
    match format:
        case "json":
            return functools.partial(format_json_line, ocsf=ocsf)
        case "text":
            return functools.partial(format_text_line, iso8601=iso8601)
        case _:
            assert_never(format)


def namespace_of(alert: Alert) -> str | None:
    """The alert's Kubernetes namespace: ``k8s.ns.name``, else the first part of its workload."""
    ns = alert.output_fields.get("k8s.ns.name")
    if ns:
        return str(ns)
    if alert.workload and "/" in alert.workload:
        return alert.workload.split("/", 1)[0]
    return None


def container_label(alert: Alert) -> str:
    """A short name of the container an alert concerns: ``name (id)``, the workload, or ``host``."""
    f = alert.output_fields
    name, cid = f.get("container.name"), f.get("container.id")
    if name and cid and cid != "host":
        return f"{name} ({str(cid)[:12]})"
    if cid and cid != "host":
        return str(cid)[:12]
    return alert.workload or "host"
