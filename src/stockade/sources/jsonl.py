"""Recordings: JSON Lines of syscall-source events keyed by Falco field names (docs/events.md).

One event per line, a flat JSON object (``{"evt.type": "openat", "fd.name": "/etc/shadow", ...}``).
Blank lines are skipped. A line that is not a JSON object, or has no ``evt.type``, is counted as
malformed with its ``file:line`` and skipped. An optional header line
``{"stockade.schema": 1, ...}`` names the schema version.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO, ClassVar

import orjson

from stockade.model.event import SCHEMA_VERSION, SYSCALL, Event
from stockade.sources.base import (
    InputSource,
    iter_line_batches,
    json_kind,
    open_input_stream,
    short_json_error,
)
from stockade.sources.detect import foreign
from stockade.sources.interface import PathOrStream

__all__ = ["BATCH_EVENTS", "DataBatch", "JsonlSource"]

#: events per :class:`DataBatch`
BATCH_EVENTS = 64
SCHEMA_KEY = "stockade.schema"
#: in one JSON document too long to decode within the detection peek: a recording's key
_DOC_KEY = re.compile(rb'"evt\.type"\s*:')


class DataBatch:
    """Decoded events of one source, in order, with the line each came from."""

    __slots__ = ("_linenos", "datas", "first", "skipped", "where")

    def __init__(
        self, datas: list[dict[str, Any]], where: str, first: int, skipped: list[int] | None
    ) -> None:
        self.datas = datas
        self.where = where
        #: line number of the batch's first line
        self.first = first
        #: line numbers in the batch that are not events (blank, malformed, header), ascending
        self.skipped = skipped
        self._linenos: list[int] | None = None

    def lineno(self, i: int) -> int:
        """The line number of ``datas[i]``."""
        if not self.skipped:
            return self.first + i
        if self._linenos is None:
            gaps = set(self.skipped)
            end = self.first + len(self.datas) + len(gaps)
            self._linenos = [n for n in range(self.first, end) if n not in gaps]
        return self._linenos[i]

    def origin(self, i: int) -> str:
        """``datas[i]``'s origin, "file:line" (:attr:`Event.origin`)."""
        return f"{self.where}:{self.lineno(i)}"


class JsonlSource(InputSource):
    """Syscall-source events from a JSON Lines recording (file path, ``-`` for stdin, or a stream)."""

    name = SYSCALL
    record: ClassVar[str] = "a syscall recording"
    #: last: an event is a flat object any other source's record might look like
    detect_order: ClassVar[int] = 90

    def __init__(self, path_or_stream: PathOrStream, *, name_hint: str | None = None) -> None:
        super().__init__(path_or_stream, name_hint=name_hint)
        #: the header line's contents, if the recording has one
        self.header: dict[str, Any] | None = None

    @classmethod
    def classify(cls, obj: object) -> bool:
        """A recording's event (it has ``evt.type``) or its header line."""
        return isinstance(obj, dict) and ("evt.type" in obj or SCHEMA_KEY in obj)

    @classmethod
    def sniff(cls, text: bytes) -> bool:
        """A document with an ``evt.type`` key."""
        return _DOC_KEY.search(text) is not None

    def _events(self, stream: BinaryIO) -> Iterator[Event]:
        stats = self.stats
        for b in self._batches(stream):
            if b.skipped:
                for i, data in enumerate(b.datas):
                    stats.events += 1
                    yield Event(SYSCALL, data, b.origin(i))
                continue
            where = b.where
            n = b.first
            for data in b.datas:
                stats.events += 1
                yield Event(SYSCALL, data, f"{where}:{n}")
                n += 1

    def data_batches(self) -> Iterator[DataBatch]:
        """The events' data, one :class:`DataBatch` per chunk read (about a thousand events): what
        :meth:`events` yields one by one, without an :class:`Event` per event (the pipeline wraps
        only those that raise alerts). The input is opened and closed as by :meth:`events`."""
        stream, owned = open_input_stream(self._input)
        try:
            for b in self._batches(stream):
                self.stats.events += len(b.datas)
                yield b
        finally:
            if owned:
                stream.close()

    def _batches(self, stream: BinaryIO) -> Iterator[DataBatch]:
        # The hot loop of `stockade replay`: per line only the decode, two type checks and an append.
        # Batches are small so that their events are still in the CPU caches when they are evaluated
        # (a batch per 1 MiB chunk cost ~1 us per event more than one of 64).
        where = self.where
        stats = self.stats
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        lineno = 0
        for lines in iter_line_batches(stream):
            first = lineno + 1
            datas: list[dict[str, Any]] = []
            append = datas.append
            skipped: list[int] | None = None
            room = BATCH_EVENTS
            for line in lines:
                lineno += 1
                try:
                    obj = loads(line)
                except decode_error as e:
                    if line.strip():
                        stats.bad(f"{where}:{lineno}", f"not JSON: {short_json_error(e)}")
                    if skipped is None:
                        skipped = []
                    skipped.append(lineno)
                    continue
                if type(obj) is dict and "evt.type" in obj:
                    append(obj)
                    room -= 1
                    if not room:
                        yield DataBatch(datas, where, first, skipped)
                        first = lineno + 1
                        datas = []
                        append = datas.append
                        skipped = None
                        room = BATCH_EVENTS
                    continue
                self._odd_line(obj, lineno)
                if skipped is None:
                    skipped = []
                skipped.append(lineno)
            if datas:
                yield DataBatch(datas, where, first, skipped)

    def _odd_line(self, obj: object, lineno: int) -> None:
        loc = f"{self.where}:{lineno}"
        if not isinstance(obj, dict):
            self.stats.bad(loc, f"expected a JSON object, got {json_kind(obj)}")
            return
        if SCHEMA_KEY in obj:
            version = obj[SCHEMA_KEY]
            if version != SCHEMA_VERSION:
                self.stats.bad(
                    loc, f"unsupported recording schema {version!r} (this Stockade reads {SCHEMA_VERSION})"
                )
            elif self.header is None:
                self.header = obj
            return
        self.stats.bad(loc, foreign(obj, self.name) or "no evt.type")
