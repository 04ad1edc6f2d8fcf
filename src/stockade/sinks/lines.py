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
from typing import assert_never

import orjson

from stockade.model.alert import Alert
from stockade.model.choices import OutputFormat
from stockade.model.timeutil import format_time_ns

__all__ = ["format_json_line", "format_text_line", "line_formatter"]


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


def format_json_line(alert: Alert) -> bytes:
    """One alert as a JSON Lines record (Falco's alert JSON plus the `stockade` object)."""
    return orjson.dumps(alert.to_falco_json(), option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS)


def line_formatter(format: OutputFormat, iso8601: bool = False) -> Callable[[Alert], bytes]:
    """The function that turns an alert into one line of `format`."""
    match format:
        case "json":
            return format_json_line
        case "text":
            return functools.partial(format_text_line, iso8601=iso8601)
        case _:
            assert_never(format)
