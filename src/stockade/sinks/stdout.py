"""Standard output sink: Falco's text lines or JSON Lines (Falco's alert JSON).

Text is Falco's format, one alert per line: ``HH:MM:SS.nnnnnnnnn: Priority Output`` (local time,
like Falco; with ``time_format_iso_8601`` the full UTC time). An aggregated alert ends with
``(repeated N times)``. JSON Lines carry :meth:`Alert.to_falco_json`, the shape falcosidekick
and SIEM pipelines read.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO, ClassVar, assert_never

import orjson

from stockade.model.alert import Alert
from stockade.model.choices import OutputFormat, check_output_format
from stockade.model.timeutil import format_time_ns
from stockade.sinks.interface import SinkContext, SinkEntry, SinkStats
from stockade.sinks.options import Bool, SinkOptions
from stockade.sinks.spool import ErrorLog

__all__ = ["StdoutOptions", "StdoutSink", "format_json_line", "format_text_line", "line_formatter"]


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


class StdoutOptions(SinkOptions):
    """The ``options`` of a stdout sink."""

    #: true: flush on flush()/close() only (faster for big replays)
    buffered: Bool = False
    #: text format: the full UTC time instead of Falco's local HH:MM:SS
    time_format_iso_8601: Bool = False


class StdoutSink:
    """Writes alerts to a binary stream (default: the process's standard output).

    Each alert is flushed to the stream at once unless ``buffered`` (then on :meth:`flush`/:meth:`close`
    or when the stream's buffer fills). A closed pipe (the reader went away) is reported once; later
    alerts are counted as failed.
    """

    Options: ClassVar[type[SinkOptions]] = StdoutOptions

    def __init__(
        self,
        format: str = "json",
        stream: BinaryIO | None = None,
        name: str = "stdout",
        options: StdoutOptions | None = None,
    ) -> None:
        opts = options or StdoutOptions()
        self.format = check_output_format(format, "format")
        self._line = line_formatter(self.format, opts.time_format_iso_8601)
        self.name = name
        self.stats = SinkStats()
        self.errors = ErrorLog(name)
        self._is_stdout = stream is None
        self._stream: BinaryIO = stream if stream is not None else sys.stdout.buffer
        self._buffered = opts.buffered
        self._broken = False

    @classmethod
    def from_config(cls, entry: SinkEntry, options: StdoutOptions, context: SinkContext) -> StdoutSink:
        """The sink of a ``type: stdout`` entry."""
        return cls(format=entry.format, name=context.name, options=options)

    def emit(self, alert: Alert) -> None:
        """Write one line (flushed at once unless buffered)."""
        if self._broken:
            self.stats.failed += 1
            return
        line = self._line(alert)
        try:
            self._stream.write(line)
            if not self._buffered:
                self._stream.flush()
        except BrokenPipeError:
            self._on_broken_pipe()
            self.stats.failed += 1
            return
        except (OSError, ValueError) as e:  # ValueError: write to a closed stream
            self.stats.failed += 1
            self.errors.report(f"cannot write alert: {e}")
            return
        self.stats.sent += 1

    def _on_broken_pipe(self) -> None:
        self._broken = True
        self.errors.report("output closed by the reader (broken pipe); further alerts are not written")
        if self._is_stdout:
            # Python would complain again when flushing stdout at exit: point it at /dev/null.
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self._stream.fileno())
                os.close(devnull)
            except (OSError, ValueError):
                pass

    def flush(self) -> None:
        """Flush the stream."""
        if self._broken:
            return
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._on_broken_pipe()
        except (OSError, ValueError) as e:
            self.errors.report(f"cannot flush: {e}")

    def close(self) -> None:
        """Flushes; the stream is left open (it belongs to the caller)."""
        self.flush()


if TYPE_CHECKING:
    from stockade.sinks.interface import SinkPlugin

    _plugin: type[SinkPlugin] = StdoutSink
