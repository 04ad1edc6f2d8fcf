"""Recordings: JSON Lines of syscall-source events keyed by Falco field names (docs/events.md).

One event per line, a flat JSON object (``{"evt.type": "openat", "fd.name": "/etc/shadow", ...}``).
Blank lines are skipped. A line that is not a JSON object, or has no ``evt.type``, is counted as
malformed with its ``file:line`` and skipped. An optional header line
``{"stockade.schema": 1, ...}`` names the schema version.

This module also holds the line reading shared by the other line-oriented sources:
:func:`open_input_stream`, :func:`iter_lines` and :func:`iter_records`.
"""

from __future__ import annotations

import gzip
import os
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

import orjson

from stockade.errors import SourceError
from stockade.model.event import SCHEMA_VERSION, Event
from stockade.sources.interface import SourceStats

__all__ = [
    "DataBatch",
    "JsonlSource",
    "describe_foreign",
    "display_name",
    "iter_lines",
    "iter_records",
    "open_input_stream",
]

CHUNK_SIZE = 1 << 20
#: events per :class:`DataBatch`
BATCH_EVENTS = 64
SCHEMA_KEY = "stockade.schema"

PathOrStream = str | os.PathLike[str] | BinaryIO


def display_name(path_or_stream: PathOrStream, name_hint: str | None = None) -> str:
    """The name used in origins and error messages: the hint, the path, or "stdin"."""
    if name_hint:
        return name_hint
    if isinstance(path_or_stream, str | os.PathLike):
        p = os.fspath(path_or_stream)
        return "stdin" if p == "-" else p
    n = getattr(path_or_stream, "name", None)
    return n if isinstance(n, str) and n and not n.startswith("<") else "stdin"


def open_input_stream(path_or_stream: PathOrStream) -> tuple[BinaryIO, bool]:
    """A binary stream for a path ("-" is stdin; ``.gz`` is decompressed) or the stream itself.

    Returns ``(stream, owned)``: ``owned`` says the caller must close it.
    """
    if not isinstance(path_or_stream, str | os.PathLike):
        return path_or_stream, False
    p = os.fspath(path_or_stream)
    if p == "-":
        return sys.stdin.buffer, False
    try:
        if p.endswith(".gz"):
            return gzip.open(p, "rb"), True  # type: ignore[return-value]
        return open(p, "rb"), True
    except OSError as e:
        raise SourceError(f"cannot open {p}: {e.strerror or e}") from None


def iter_line_batches(stream: BinaryIO) -> Iterator[list[bytes]]:
    """The lines of a binary stream, without their newline, one list per large chunk read."""
    read = stream.read
    rest = b""
    while True:
        chunk = read(CHUNK_SIZE)
        if not chunk:
            break
        if rest:
            chunk = rest + chunk
        lines = chunk.split(b"\n")
        rest = lines.pop()
        yield lines
    if rest:
        yield [rest]


def iter_lines(stream: BinaryIO) -> Iterator[bytes]:
    """Lines of a binary stream without their newline, read in large chunks."""
    for lines in iter_line_batches(stream):
        yield from lines


def iter_records(stream: BinaryIO, where: str, stats: SourceStats) -> Iterator[tuple[int, Any]]:
    """``(line number, decoded JSON value)`` per non-blank line; undecodable lines are counted."""
    loads = orjson.loads
    decode_error = orjson.JSONDecodeError
    lineno = 0
    for line in iter_lines(stream):
        lineno += 1
        try:
            obj = loads(line)
        except decode_error as e:
            if line.strip():
                stats.bad(f"{where}:{lineno}", f"not JSON: {_short_json_error(e)}")
            continue
        yield lineno, obj


def _short_json_error(e: orjson.JSONDecodeError) -> str:
    return f"{e.msg} at column {e.colno}"


def describe_foreign(obj: dict[str, Any]) -> str | None:
    """If ``obj`` belongs to another source, say which and how to read it; else None."""
    api = obj.get("apiVersion")
    if obj.get("kind") in ("Event", "EventList") and isinstance(api, str) and api.startswith("audit.k8s.io/"):
        return "a Kubernetes audit event, not a syscall recording (use --source k8s_audit)"
    if "rule" in obj and "priority" in obj and "output" in obj:
        return "a Falco alert, not a syscall recording (use --source falco)"
    for k in ("process_exec", "process_exit", "process_kprobe", "process_tracepoint"):
        if k in obj:
            return "a Tetragon event, not a syscall recording (use --source tetragon)"
    return None


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


class InputSource:
    """A source that reads one input (a path, ``-`` for stdin, ``.gz``, or a binary stream): it opens
    the input, reads it with ``_events``, and closes what it opened. Subclasses give ``name`` and
    ``_events``."""

    name = ""

    def __init__(self, path_or_stream: PathOrStream, *, name_hint: str | None = None) -> None:
        self._input = path_or_stream
        self.where = display_name(path_or_stream, name_hint)
        self.stats = SourceStats()

    def events(self) -> Iterator[Event]:
        stream, owned = open_input_stream(self._input)
        try:
            yield from self._events(stream)
        finally:
            if owned:
                stream.close()

    def _events(self, stream: BinaryIO) -> Iterator[Event]:
        raise NotImplementedError


class JsonlSource(InputSource):
    """Syscall-source events from a JSON Lines recording (file path, ``-`` for stdin, or a stream)."""

    name = "syscall"

    def __init__(self, path_or_stream: PathOrStream, *, name_hint: str | None = None) -> None:
        super().__init__(path_or_stream, name_hint=name_hint)
        #: the header line's contents, if the recording has one
        self.header: dict[str, Any] | None = None

    def _events(self, stream: BinaryIO) -> Iterator[Event]:
        stats = self.stats
        for b in self._batches(stream):
            if b.skipped:
                for i, data in enumerate(b.datas):
                    stats.events += 1
                    yield Event("syscall", data, b.origin(i))
                continue
            where = b.where
            n = b.first
            for data in b.datas:
                stats.events += 1
                yield Event("syscall", data, f"{where}:{n}")
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
                        stats.bad(f"{where}:{lineno}", f"not JSON: {_short_json_error(e)}")
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

    def _odd_line(self, obj: Any, lineno: int) -> None:
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
        why = describe_foreign(obj)
        self.stats.bad(loc, why or "no evt.type")


def json_kind(v: Any) -> str:
    """What kind of JSON value `v` is, for messages ("an array", "a string", ...)."""
    if isinstance(v, list):
        return "an array"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if v is None:
        return "null"
    return "an object"
