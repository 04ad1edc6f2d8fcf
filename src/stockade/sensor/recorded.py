"""The recorded backend: the raw events of a recording, through the backend interface.

The sensor's test double, shipped with the code (as httpx ships ``MockTransport``): the runtime's
sensing (:class:`stockade.runtime.sensing.SensorRunner`), enrichment and the pipeline run on it
without root or a kernel. Its events come from a JSON Lines recording (one raw event per line, as
docs/events.md describes, private ``_`` keys included; blank lines and the ``{"stockade.schema":
...}`` header are skipped; a line that is not an event is counted in ``stats.errors`` with its
``file:line``), or from an iterable of dicts, then from :meth:`RecordedBackend.feed` while it runs.

Like a kernel backend it delivers only the event types ``start`` asked for, in batches of at most
``max_batch``, and its :meth:`~RecordedBackend.fileno` is readable while events wait, so it can
also stand in for a ``causal_first`` backend (a subclass setting the class attribute). Its role is
``replay``: no plan chooses it; it is given to the runner (``SensorRunner(..., backends=[...])``).
"""

from __future__ import annotations

import collections
import gzip
import io
import os
import select
import threading
from collections.abc import Iterable, Iterator
from typing import ClassVar

import orjson

from stockade.sensor.interface import Backend, BackendStats, Capabilities, RawEvent, Role, SensorError

__all__ = ["RecordedBackend", "read_recording"]

#: the key of a recording's optional header line
SCHEMA_KEY = "stockade.schema"

Recording = str | os.PathLike[str] | Iterable[RawEvent]


def read_recording(lines: Iterable[bytes], name: str, stats: BackendStats) -> Iterator[RawEvent]:
    """The raw events of a JSON Lines recording; a line that is not one is counted in `stats`."""
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            stats.error(f"{name}:{lineno}: not JSON: {e}")
            continue
        if not isinstance(obj, dict):
            stats.error(f"{name}:{lineno}: not a JSON object")
        elif "evt.type" in obj:
            yield obj
        elif SCHEMA_KEY not in obj:
            stats.error(f"{name}:{lineno}: no evt.type")


def _open(path: str) -> gzip.GzipFile | io.BufferedReader:
    try:
        if path.endswith(".gz"):
            return gzip.open(path, "rb")
        return open(path, "rb")
    except OSError as e:
        raise SensorError(f"recorded backend: cannot open {path}: {e.strerror or e}") from None


class RecordedBackend(Backend):
    """Raw events from a recording (a path or dicts) and from :meth:`feed`: see the module docstring."""

    name = "recorded"
    title = "recorded"
    role: ClassVar[Role] = "replay"

    def __init__(self, recording: Recording = (), *, max_batch: int = 256) -> None:
        self.stats = BackendStats()
        self.recording = recording
        self.max_batch = max_batch
        self._want: frozenset[str] | None = None
        self._source: Iterator[RawEvent] | None = None
        self._stream: gzip.GzipFile | io.BufferedReader | None = None
        self._fed: collections.deque[RawEvent] = collections.deque()
        self._lock = threading.Lock()
        #: a pipe holding one byte while events may wait (what fileno() and poll() wait on)
        self._ready_r = self._ready_w = -1
        self._signalled = False

    @staticmethod
    def probe() -> Capabilities:
        """Runs anywhere; it promises no event type (a recording holds what it holds)."""
        return Capabilities("recorded", True)

    def start(self, evttypes: set[str] | None = None) -> None:
        """Open the recording; deliver only `evttypes` (None: every event)."""
        if self._ready_r >= 0:
            return
        self._want = None if evttypes is None else frozenset(evttypes)
        rec = self.recording
        if isinstance(rec, str | os.PathLike):
            path = os.fspath(rec)
            self._stream = _open(path)
            self._source = read_recording(self._stream, path, self.stats)
        else:
            self._source = iter(rec)
        self._ready_r, self._ready_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._signal()

    def feed(self, events: Iterable[RawEvent]) -> None:
        """Add events after the recording's (as a kernel sends them while the backend runs)."""
        with self._lock:
            self._fed.extend(events)
            if self._ready_w >= 0:
                self._signal()

    def fileno(self) -> int:
        """Readable while events wait."""
        if self._ready_r < 0:
            raise SensorError("recorded backend: not started")
        return self._ready_r

    def poll(self, timeout_s: float = 0.1) -> list[RawEvent]:
        """The next events (at most `max_batch` read), waiting at most `timeout_s` for some."""
        if self._ready_r < 0:
            raise SensorError("recorded backend: not started")
        out = self._take()
        if not out and timeout_s > 0:
            select.select([self._ready_r], [], [], timeout_s)
            out = self._take()
        self.stats.events += len(out)
        return out

    def close(self) -> None:
        """Close the recording and the readiness pipe (safe twice)."""
        with self._lock:
            for fd in (self._ready_r, self._ready_w):
                if fd >= 0:
                    os.close(fd)
            self._ready_r = self._ready_w = -1
            self._signalled = False
            self._source = None
            if self._stream is not None:
                self._stream.close()
                self._stream = None

    def _take(self) -> list[RawEvent]:
        """Up to `max_batch` events read (each a copy), those of the wanted types kept."""
        out: list[RawEvent] = []
        want = self._want
        with self._lock:
            for _ in range(self.max_batch):
                ev = self._next()
                if ev is None:
                    self._unsignal()
                    break
                if want is None or ev.get("evt.type") in want:
                    out.append(dict(ev))
        return out

    def _next(self) -> RawEvent | None:
        if self._source is not None:
            ev = next(self._source, None)
            if ev is not None:
                return ev
            self._source = None
            if self._stream is not None:
                self._stream.close()
                self._stream = None
        return self._fed.popleft() if self._fed else None

    def _signal(self) -> None:
        if not self._signalled:
            os.write(self._ready_w, b"\x01")
            self._signalled = True

    def _unsignal(self) -> None:
        if self._signalled:
            os.read(self._ready_r, 1)
            self._signalled = False
