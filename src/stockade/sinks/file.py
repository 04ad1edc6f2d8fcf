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
import time
from pathlib import Path

from stockade.model.alert import Alert
from stockade.sinks.interface import SinkStats
from stockade.sinks.spool import ErrorLog
from stockade.sinks.stdout import format_json_line, format_text_line

__all__ = ["FileSink"]


class FileSink:
    """Appends one line per alert to ``path`` (see the module docstring).

    ``fsync``: ``always`` (after every write), ``interval`` (at most every ``fsync_interval_s``,
    and on flush/close) or ``never``. ``buffer_bytes`` > 0 batches lines in memory up to that size
    (written on flush/close and before rotation); 0 writes every alert at once.
    """

    def __init__(
        self,
        path: str | Path,
        format: str = "json",
        max_bytes: int = 100 << 20,
        backups: int = 5,
        fsync: str = "interval",
        fsync_interval_s: float = 1.0,
        mode: int = 0o600,
        buffer_bytes: int = 0,
        name: str = "file",
    ) -> None:
        if format not in ("json", "text"):
            raise ValueError(f"format must be json or text, not {format!r}")
        if fsync not in ("always", "interval", "never"):
            raise ValueError(f"fsync must be always, interval or never, not {fsync!r}")
        if max_bytes < 0 or backups < 0 or buffer_bytes < 0:
            raise ValueError("max_bytes, backups and buffer_bytes must not be negative")
        self.name = name
        self.stats = SinkStats()
        self.errors = ErrorLog(name)
        self.path = Path(path)
        self.format = format
        self.max_bytes = max_bytes  # 0: never rotate
        self.backups = backups
        self.fsync = fsync
        self.fsync_interval_s = fsync_interval_s
        self.mode = mode
        self.buffer_bytes = buffer_bytes
        #: how many times the file was rotated
        self.rotations = 0
        self._lock = threading.Lock()
        self._buf = bytearray()
        self._buf_n = 0  # alerts in _buf
        self._fd: int | None = None
        self._size = 0
        self._unsynced = False
        self._last_sync = time.monotonic()
        self._open()

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
        if self.fsync == "always" or (
            self.fsync == "interval" and time.monotonic() - self._last_sync >= self.fsync_interval_s
        ):
            self._sync()

    def _sync(self) -> None:
        if self._fd is not None and self._unsynced and self.fsync != "never":
            try:
                os.fsync(self._fd)
            except OSError as e:
                self.errors.report(f"cannot fsync {self.path}: {e.strerror or e}")
        self._unsynced = False
        self._last_sync = time.monotonic()

    # ---- Sink ------------------------------------------------------------------------

    def emit(self, alert: Alert) -> None:
        line = format_json_line(alert) if self.format == "json" else format_text_line(alert)
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
        with self._lock:
            self._write_out()
            self._close_fd()
