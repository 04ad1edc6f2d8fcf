"""Disk spill for sinks: an ordered, durable queue of records kept as JSON Lines segments.

A :class:`Spool` lives in one directory. Records (one JSON document each, no raw newline) are
appended to numbered segment files (``00000001000000000000.jsonl`` ...); the oldest undelivered
record is read back with :meth:`Spool.peek` and marked delivered with :meth:`Spool.advance`. The
read position is kept in a ``cursor`` file, so the spool survives restarts: what was not
delivered before a stop is delivered after the next start, in order. :meth:`Spool.prepend` puts
records *before* everything spooled (used when in-memory records, older than the spool, must be
persisted). The total size is bounded by ``max_bytes``: :meth:`Spool.append` returns how many
records it accepted, and the caller counts and reports the rest as dropped.

The spool is not thread-safe: the owning sink serialises calls with its own lock.

:class:`ErrorLog` is the bounded record of delivery problems that every sink keeps.
"""

from __future__ import annotations

import collections
import fcntl
import os
import re
from collections.abc import Sequence
from pathlib import Path

from stockade.model import errorlog
from stockade.model.clock import SYSTEM, Clock
from stockade.sinks.options import FsyncPolicy, fsync_due
from stockade.storage.files import make_private_dirs

__all__ = ["ErrorLog", "Spool"]

_SEGMENT_RE = re.compile(r"^(\d{20})\.jsonl$")
_FIRST_SEQ = 10**12  # room below for prepended segments
_READ_CHUNK = 1 << 16


class ErrorLog(errorlog.ErrorLog):
    """A sink's record of its delivery problems (:class:`stockade.model.errorlog.ErrorLog`), logged
    as ``sink NAME: ...`` on the logger ``stockade.sinks.NAME``."""

    def __init__(self, sink_name: str, keep: int = 20) -> None:
        super().__init__(f"sink {sink_name}", keep, logger=f"stockade.sinks.{sink_name}")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class Spool:
    """Durable FIFO of byte records in ``directory`` (see the module docstring)."""

    def __init__(
        self,
        directory: str | Path,
        max_bytes: int = 1 << 30,
        segment_bytes: int = 4 << 20,
        fsync: FsyncPolicy = "interval",
        fsync_interval_s: float = 0.5,
        clock: Clock = SYSTEM,
    ) -> None:
        if fsync not in ("always", "interval", "never"):
            raise ValueError(f"fsync must be always, interval or never, not {fsync!r}")
        self._clock = clock
        self.dir = Path(directory)
        make_private_dirs(self.dir)
        self._lock_fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise BlockingIOError(
                f"spool directory {self.dir} is in use by another sink or process"
            ) from None
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.fsync: FsyncPolicy = fsync
        self.fsync_interval_s = fsync_interval_s
        #: records found damaged (a torn last line after a crash) and skipped
        self.corrupt = 0
        self._segments: collections.deque[int] = collections.deque()
        self._sizes: dict[int, int] = {}
        self._head_off = 0
        self._count = 0  # undelivered records (exact)
        self._active: int | None = None  # segment open for appending
        self._wfd: int | None = None
        self._dirty = False
        self._last_sync = clock.monotonic()
        # read buffer over the head segment: bytes starting at file offset _rbuf_off
        self._rbuf = b""
        self._rbuf_off = 0
        self._peeked: int | None = None  # length of the record(s) returned by peek (with newlines)
        self._peeked_n = 0  # how many records that was
        self._load()

    # ---- state on disk ---------------------------------------------------------------

    def _seg_path(self, seq: int) -> Path:
        return self.dir / f"{seq:020d}.jsonl"

    def _load(self) -> None:
        seqs = sorted(int(m.group(1)) for p in self.dir.iterdir() if (m := _SEGMENT_RE.match(p.name)))
        for s in seqs:
            self._segments.append(s)
            self._sizes[s] = self._seg_path(s).stat().st_size
        cur = self.dir / "cursor"
        if seqs and cur.exists():
            try:
                seq_s, off_s = cur.read_text().split()
                seq, off = int(seq_s), int(off_s)
            except (ValueError, OSError):
                seq, off = seqs[0], 0
            while self._segments and self._segments[0] < seq:  # delivered but not yet deleted
                self._drop_head_segment()
            if self._segments and self._segments[0] == seq:
                self._head_off = min(off, self._sizes[seq])
        for s in self._segments:
            start = self._head_off if s == self._segments[0] else 0
            with open(self._seg_path(s), "rb") as f:
                f.seek(start)
                self._count += f.read().count(b"\n")

    def _save_cursor(self) -> None:
        tmp = self.dir / "cursor.tmp"
        head = self._segments[0] if self._segments else 0
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_all(fd, f"{head} {self._head_off}\n".encode())
        finally:
            os.close(fd)
        os.replace(tmp, self.dir / "cursor")

    def _drop_head_segment(self) -> None:
        seq = self._segments.popleft()
        self._sizes.pop(seq, None)
        if seq == self._active:
            self._close_writer()
        try:
            self._seg_path(seq).unlink()
        except FileNotFoundError:
            pass
        self._head_off = 0
        self._rbuf, self._rbuf_off = b"", 0

    def _close_writer(self) -> None:
        if self._wfd is not None:
            if self._dirty and self.fsync != "never":
                os.fsync(self._wfd)
            os.close(self._wfd)
        self._wfd = None
        self._active = None
        self._dirty = False

    # ---- size ------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    @property
    def size_bytes(self) -> int:
        """Bytes of undelivered records on disk."""
        return sum(self._sizes.values()) - self._head_off

    def _fit(self, records: Sequence[bytes]) -> int:
        room = self.max_bytes - self.size_bytes
        n = 0
        for r in records:
            if b"\n" in r:
                raise ValueError("a spool record must not contain a newline")
            room -= len(r) + 1
            if room < 0:
                break
            n += 1
        return n

    # ---- writing ---------------------------------------------------------------------

    def append(self, records: Sequence[bytes]) -> int:
        """Append records after everything spooled; returns how many fit (the first n).

        Raises OSError if the disk write fails (nothing of this call is kept then).
        """
        n = self._fit(records)
        if n == 0:
            return 0
        if self._active is None or self._sizes[self._active] >= self.segment_bytes:
            self._close_writer()
            seq = self._segments[-1] + 1 if self._segments else _FIRST_SEQ
            fd = os.open(self._seg_path(seq), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
            self._segments.append(seq)
            self._sizes[seq] = 0
            self._active, self._wfd = seq, fd
            if len(self._segments) == 1:
                self._head_off = 0
                self._save_cursor()
        assert self._wfd is not None and self._active is not None
        data = b"\n".join(records[:n]) + b"\n"
        size = self._sizes[self._active]
        try:
            _write_all(self._wfd, data)
        except OSError:
            try:
                os.ftruncate(self._wfd, size)  # never leave a torn record behind
            except OSError:
                pass
            raise
        self._sizes[self._active] = size + len(data)
        self._count += n
        self._dirty = True
        self._maybe_sync()
        return n

    def prepend(self, records: Sequence[bytes]) -> int:
        """Put records before everything spooled (in the given order); returns how many fit."""
        if not self._segments:
            return self.append(records)
        n = self._fit(records)
        if n == 0:
            return 0
        if self._head_off:
            self._compact_head()
        seq = self._segments[0] - 1
        path = self._seg_path(seq)
        tmp = path.with_suffix(".tmp")
        data = b"\n".join(records[:n]) + b"\n"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_all(fd, data)
            if self.fsync != "never":
                os.fsync(fd)
        except OSError:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        os.replace(tmp, path)
        self._segments.appendleft(seq)
        self._sizes[seq] = len(data)
        self._head_off = 0
        self._rbuf, self._rbuf_off = b"", 0
        self._count += n
        self._save_cursor()
        return n

    def _compact_head(self) -> None:
        """Rewrite the head segment without its delivered part (so its cursor offset becomes 0)."""
        seq = self._segments[0]
        path = self._seg_path(seq)
        with open(path, "rb") as f:
            f.seek(self._head_off)
            rest = f.read()
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            _write_all(fd, rest)
            if self.fsync != "never":
                os.fsync(fd)
        finally:
            os.close(fd)
        was_active = seq == self._active
        if was_active:
            self._close_writer()
        os.replace(tmp, path)
        self._sizes[seq] = len(rest)
        self._head_off = 0
        self._rbuf, self._rbuf_off = b"", 0
        self._save_cursor()
        if was_active:
            self._wfd = os.open(path, os.O_WRONLY | os.O_APPEND)
            self._active = seq

    def _maybe_sync(self) -> None:
        if fsync_due(self.fsync, self._clock.monotonic() - self._last_sync, self.fsync_interval_s):
            self.sync()

    def sync(self) -> None:
        """fsync what was appended (unless fsync is 'never')."""
        if self._wfd is not None and self._dirty and self.fsync != "never":
            os.fsync(self._wfd)
        self._dirty = False
        self._last_sync = self._clock.monotonic()

    # ---- reading ---------------------------------------------------------------------

    def peek(self) -> bytes | None:
        """The oldest undelivered record (without newline), or None if the spool is empty."""
        while self._segments:
            seq = self._segments[0]
            rel = self._head_off - self._rbuf_off
            nl = self._rbuf.find(b"\n", rel) if 0 <= rel <= len(self._rbuf) else -1
            if nl >= 0:
                rec = self._rbuf[rel:nl]
                self._peeked, self._peeked_n = nl + 1 - rel, 1
                return rec
            # refill the buffer from the head offset
            with open(self._seg_path(seq), "rb") as f:
                f.seek(self._head_off)
                chunk = f.read(max(_READ_CHUNK, self._sizes[seq] - self._head_off))
            self._rbuf, self._rbuf_off = chunk, self._head_off
            if b"\n" in chunk:
                continue
            if seq == self._active:
                return None  # everything written so far is delivered
            if chunk:
                self.corrupt += 1  # a torn tail from a crash: skip it
            self._drop_head_segment()
            self._save_cursor()
        return None

    def peek_batch(self, n: int) -> list[bytes]:
        """Up to `n` of the oldest undelivered records (at least one unless the spool is empty;
        fewer than `n` when the rest is not in the same segment's read buffer)."""
        first = self.peek()
        if first is None or n <= 1:
            return [] if first is None else [first]
        assert self._peeked is not None
        out = [first]
        rel = self._head_off - self._rbuf_off + self._peeked
        while len(out) < n:
            nl = self._rbuf.find(b"\n", rel)
            if nl < 0:
                break
            out.append(self._rbuf[rel:nl])
            self._peeked += nl + 1 - rel
            rel = nl + 1
        self._peeked_n = len(out)
        return out

    def advance(self) -> None:
        """Mark the record(s) returned by the last :meth:`peek` (or :meth:`peek_batch`) as delivered."""
        if self._peeked is None:
            raise RuntimeError("advance() without peek()")
        self._head_off += self._peeked
        self._peeked = None
        self._count -= self._peeked_n
        if self._head_off >= self._sizes[self._segments[0]]:
            self._drop_head_segment()  # fully delivered (if it was the active one, the next append starts anew)
        self._save_cursor()

    def close(self) -> None:
        """Close the files and release the directory's lock; safe to call twice."""
        self._close_writer()
        if self._segments:
            self._save_cursor()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = -1
