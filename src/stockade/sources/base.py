"""What the file-reading sources share: opening an input, reading its lines and JSON records, and
:class:`InputSource`, the base of a source that reads one input.

An input is a path (``-`` for stdin; ``.gz`` is decompressed) or a binary stream
(:data:`~stockade.sources.interface.PathOrStream`).
"""

from __future__ import annotations

import gzip
import os
import sys
from collections.abc import Iterator
from typing import BinaryIO, cast

import orjson

from stockade.errors import SourceError
from stockade.model.event import Event
from stockade.sources.interface import PathOrStream, SourceStats

__all__ = [
    "CHUNK_SIZE",
    "InputSource",
    "display_name",
    "iter_line_batches",
    "iter_lines",
    "iter_records",
    "json_kind",
    "open_input_stream",
    "short_json_error",
]

#: bytes read at a time
CHUNK_SIZE = 1 << 20


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
            return cast("BinaryIO", gzip.open(p, "rb")), True
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


def iter_records(stream: BinaryIO, where: str, stats: SourceStats) -> Iterator[tuple[int, object]]:
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
                stats.bad(f"{where}:{lineno}", f"not JSON: {short_json_error(e)}")
            continue
        yield lineno, obj


def short_json_error(e: orjson.JSONDecodeError) -> str:
    """Where and why a line is not JSON, for messages ("unexpected character at column 3")."""
    return f"{e.msg} at column {e.colno}"


def json_kind(v: object) -> str:
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


class InputSource:
    """A source that reads one input (a path, ``-`` for stdin, ``.gz``, or a binary stream): it opens
    the input, reads it with ``_events``, and closes what it opened. Subclasses give ``name``,
    ``record``, ``detect_order``, ``_events`` and their format detection (``classify``, ``sniff``):
    the :class:`~stockade.sources.interface.SourcePlugin` protocol."""

    name = ""

    def __init__(self, path_or_stream: PathOrStream, *, name_hint: str | None = None) -> None:
        self._input = path_or_stream
        self.where = display_name(path_or_stream, name_hint)
        self.stats = SourceStats()

    def events(self) -> Iterator[Event]:
        """Open the input, yield its events, and close what was opened."""
        stream, owned = open_input_stream(self._input)
        try:
            yield from self._events(stream)
        finally:
            if owned:
                stream.close()

    def _events(self, stream: BinaryIO) -> Iterator[Event]:
        raise NotImplementedError
