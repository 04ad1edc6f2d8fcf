"""Standard output sink: Falco's text lines or JSON Lines (Falco's alert JSON).

The lines are :mod:`stockade.sinks.lines`: in text, the time is local, as in Falco (with
``time_format_iso_8601`` the full UTC time).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, BinaryIO, ClassVar

from stockade.model.alert import Alert
from stockade.model.choices import check_output_format
from stockade.sinks.interface import SinkContext, SinkEntry, SinkStats
from stockade.sinks.lines import line_formatter
from stockade.sinks.options import Bool, SinkOptions
from stockade.sinks.spool import ErrorLog

__all__ = ["StdoutOptions", "StdoutSink"]


class StdoutOptions(SinkOptions):
    """The ``options`` of a stdout sink."""

    #: true: flush on flush()/close() only (faster for big replays)
    buffered: Bool = False
    #: text format: the full UTC time instead of Falco's local HH:MM:SS
    time_format_iso_8601: Bool = False
    #: JSON as OCSF Detection Findings instead of Falco's alert JSON
    ocsf: Bool = False


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
        self._line = line_formatter(self.format, opts.time_format_iso_8601, opts.ocsf)
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
