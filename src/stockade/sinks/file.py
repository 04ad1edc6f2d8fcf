"""File sink: JSON Lines (or Falco text) appended to a file, rotated by size.

Rotation keeps ``backups`` old files (``path.1`` newest ... ``path.N`` oldest) and starts a new
file when the next line would make the current one exceed ``max_bytes``; a line is always written
whole with one ``write`` and never spans two files. ``reopen()`` reopens the path (for logrotate's
``postrotate``, typically on SIGHUP). A failed write (disk full, ...) is cut back off the file,
counted in ``stats.failed`` and reported; the sink keeps going.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from stockade.model.alert import Alert
from stockade.model.choices import check_output_format
from stockade.model.clock import SYSTEM, Clock
from stockade.sinks.interface import EntryError, SinkContext, SinkEntry, SinkStats
from stockade.sinks.lines import line_formatter
from stockade.sinks.options import (
    Bool,
    Count,
    Duration,
    FileMode,
    Fsync,
    FsyncPolicy,
    SinkOptions,
    Size,
    fsync_due,
)
from stockade.sinks.spool import ErrorLog

__all__ = ["FileOptions", "FileSink"]


class FileOptions(SinkOptions):
    """The ``options`` of a file sink."""

    #: rotate when the next line would pass this (0: never)
    max_bytes: Size = 100 << 20
    #: rotated files kept: path.1 (newest) ... path.N (oldest)
    backups: Count = 5
    fsync: Fsync = "interval"
    fsync_interval_s: Duration = 1.0
    #: permissions of a new file
    mode: FileMode = 0o600
    #: >0: batch writes in memory up to this size
    buffer_bytes: Size = 0
    #: JSON as OCSF Detection Findings instead of Falco's alert JSON
    ocsf: Bool = False


class FileSink:
    """Appends one line per alert to ``path`` (see the module docstring).

    ``fsync``: ``always`` (after every write), ``interval`` (at most every ``fsync_interval_s``,
    and on flush/close) or ``never``. ``buffer_bytes`` > 0 batches lines in memory up to that size
    (written on flush/close and before rotation); 0 writes every alert at once.
    """

    Options: ClassVar[type[SinkOptions]] = FileOptions

    def __init__(
        self,
        path: str | Path,
        format: str = "json",
        name: str = "file",
        options: FileOptions | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        opts = options or FileOptions()
        self.format = check_output_format(format, "format")
        self._line = line_formatter(self.format, ocsf=opts.ocsf)
        self.name = name
        self.stats = SinkStats()
        self.errors = ErrorLog(name)
        self.path = Path(path)
        self.max_bytes = opts.max_bytes  # 0: never rotate
        self.backups = opts.backups
        self.fsync: FsyncPolicy = opts.fsync
        self.fsync_interval_s = opts.fsync_interval_s
        self.mode = opts.mode
        self.buffer_bytes = opts.buffer_bytes
        #: how many times the file was rotated
        self.rotations = 0
        self._clock = clock
        self._lock = threading.Lock()
        self._buf = bytearray()
        self._buf_n = 0  # alerts in _buf
        self._fd: int | None = None
        self._size = 0
        self._unsynced = False
        self._last_sync = clock.monotonic()
        self._open()

    @classmethod
    def from_config(cls, entry: SinkEntry, options: FileOptions, context: SinkContext) -> FileSink:
        """The sink of a ``type: file`` entry (its ``path`` is required)."""
        if not entry.path:
            raise EntryError("path", "a file sink needs a path")
        return cls(entry.path, format=entry.format, name=context.name, options=options, clock=context.clock)

    # ---- file handling ---------------------------------------------------------------

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, self.mode)
            os.fchmod(fd, self.mode)  # the umask must not widen or narrow what was asked for
        except FileExistsError:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._fd = fd
        self._size = os.fstat(fd).st_size

    def _close_fd(self) -> None:
        if self._fd is not None:
            if self._unsynced and self.fsync != "never":
                try:
                    os.fsync(self._fd)
                except OSError:
                    pass
            os.close(self._fd)
            self._fd = None
            self._unsynced = False

    def _rotate(self) -> None:
        self._close_fd()
        if self.backups == 0:
            self.path.unlink(missing_ok=True)
        else:
            base = str(self.path)
            for i in range(self.backups - 1, 0, -1):
                src = f"{base}.{i}"
                if os.path.exists(src):
                    os.replace(src, f"{base}.{i + 1}")
            os.replace(base, f"{base}.1")
        self.rotations += 1
        self._open()

    def _write_out(self) -> None:
        """Write the buffered lines with one write; on failure cut the file back and count them."""
        if not self._buf:
            return
        data, n = bytes(self._buf), self._buf_n
        self._buf.clear()
        self._buf_n = 0
        try:
            if self._fd is None:
                self._open()
            assert self._fd is not None
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as e:
            self.stats.failed += n
            self.errors.report(f"cannot write {self.path}: {e.strerror or e}")
            if self._fd is not None:
                try:
                    os.ftruncate(self._fd, self._size)  # never leave half a line behind
                except OSError:
                    pass
            return
        self._size += len(data)
        self.stats.sent += n
        self._unsynced = True
        if fsync_due(self.fsync, self._clock.monotonic() - self._last_sync, self.fsync_interval_s):
            self._sync()

    def _sync(self) -> None:
        if self._fd is not None and self._unsynced and self.fsync != "never":
            try:
                os.fsync(self._fd)
            except OSError as e:
                self.errors.report(f"cannot fsync {self.path}: {e.strerror or e}")
        self._unsynced = False
        self._last_sync = self._clock.monotonic()

    # ---- Sink ------------------------------------------------------------------------

    def emit(self, alert: Alert) -> None:
        """Append one line (rotating first if it would not fit)."""
        line = self._line(alert)
        with self._lock:
            pending = self._size + len(self._buf)
            if self.max_bytes and pending + len(line) > self.max_bytes and pending > 0:
                self._write_out()
                try:
                    if self._size > 0:
                        self._rotate()
                except OSError as e:
                    self.errors.report(f"cannot rotate {self.path}: {e.strerror or e}")
                    if self._fd is None:
                        try:
                            self._open()
                        except OSError:
                            pass
            self._buf += line
            self._buf_n += 1
            if len(self._buf) >= self.buffer_bytes:
                self._write_out()

    def flush(self) -> None:
        """Write what is buffered and fsync (unless fsync is never)."""
        with self._lock:
            self._write_out()
            self._sync()

    def reopen(self) -> None:
        """Close and reopen the path (after an external rotation moved the file away)."""
        with self._lock:
            self._write_out()
            self._close_fd()
            try:
                self._open()
            except OSError as e:
                self.errors.report(f"cannot reopen {self.path}: {e.strerror or e}")

    def close(self) -> None:
        """Write what is buffered and close the file; safe to call twice."""
        with self._lock:
            self._write_out()
            self._close_fd()


if TYPE_CHECKING:
    from stockade.sinks.interface import SinkPlugin

    _plugin: type[SinkPlugin] = FileSink
