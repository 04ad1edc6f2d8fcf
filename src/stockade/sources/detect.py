"""Which source an input file holds, told from its first record by asking every registered source.

Each source class tells its own records (``classify``) and, for one JSON document too long to
decode within the peek, its keys (``sniff``); sources are asked in their ``detect_order``. Nothing
here knows a source by name.

:func:`open_input` peeks at a file or stdin without losing data and returns the detected source name
with a stream that still starts at the first byte. The peek reads the whole first line, however
long (up to :data:`MAX_PEEK_BYTES`). A binary input (an executable, a capture, compressed data) is
refused with what it looks like, never shown byte by byte (:func:`binary_kind`).
"""

from __future__ import annotations

import functools
import gzip
import io
import os
import sys
from typing import TYPE_CHECKING, BinaryIO

import orjson

from stockade.errors import SourceError
from stockade.plugins import PluginError
from stockade.sources.base import display_name, open_input_stream
from stockade.sources.interface import PathOrStream, SourcePlugin
from stockade.sources.registry import SOURCES

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "MAX_PEEK_BYTES",
    "PEEK_BYTES",
    "binary_kind",
    "check_text",
    "classify",
    "detect_source",
    "foreign",
    "open_input",
]

#: how much of the input is read at first to decide
PEEK_BYTES = 1 << 20
#: more is read until the first line ends, up to this much
MAX_PEEK_BYTES = 256 << 20
#: how much of the start of an input tells text from binary
SNIFF_BYTES = 8192

#: (leading bytes, what they are) of binary files someone may hand to `stockade replay`
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip-compressed data: name it *.gz or pipe it through zcat"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed data: decompress it first"),
    (b"\xfd7zXZ\x00", "xz-compressed data: decompress it first"),
    (b"BZh", "bzip2-compressed data: decompress it first"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x7fELF", "an ELF executable"),
    (b"\x0a\x0d\x0d\x0a", "a pcapng capture, such as a Falco/sysdig .scap file: replay reads JSON"),
    (b"\xd4\xc3\xb2\xa1", "a pcap capture"),
    (b"\xa1\xb2\xc3\xd4", "a pcap capture"),
    (b"SQLite format 3\x00", "an SQLite database"),
)


@functools.cache
def _detectors() -> tuple[type[SourcePlugin], ...]:
    """Every registered source available in this build, in detection order."""
    found = []
    for name in SOURCES:
        try:
            found.append(SOURCES.load(name))
        except PluginError:
            continue
    return tuple(sorted(found, key=lambda cls: cls.detect_order))


def _claimant(obj: object) -> type[SourcePlugin] | None:
    return next((cls for cls in _detectors() if cls.classify(obj)), None)


def classify(obj: object) -> str | None:
    """The source a decoded record belongs to, or None."""
    cls = _claimant(obj)
    return None if cls is None else cls.name


def foreign(obj: object, own: str) -> str | None:
    """If ``obj`` is a record of another source than ``own``, say which and how to read it."""
    cls = _claimant(obj)
    if cls is None or cls.name == own:
        return None
    return f"{cls.record}, not {SOURCES.load(own).record} (use --source {cls.name})"


def binary_kind(head: bytes) -> str | None:
    """What the start of an input looks like if it is not text ("gzip-compressed data: ...",
    "binary data"), or None for text (UTF-8 without NUL characters)."""
    for magic, kind in _MAGIC:
        if head.startswith(magic) and (magic != b"BZh" or head[4:10] == b"1AY&SY"):
            return kind
    sample = head[:SNIFF_BYTES]
    if b"\x00" in sample:
        return "binary data"
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(sample) - 3:  # not a character cut at the end of the sample
            return "binary data"
    return None


def _binary_error(where: str, kind: str) -> SourceError:
    return SourceError(f"{where} is a binary file ({kind}), not events in JSON Lines or JSON")


def _read_error(where: str, e: OSError | EOFError) -> SourceError:
    if isinstance(e, gzip.BadGzipFile):
        return SourceError(f"cannot read {where}: it is named .gz but is not gzip-compressed")
    return SourceError(f"cannot read {where}: {getattr(e, 'strerror', None) or e}")


def check_text(path_or_stream: PathOrStream) -> None:
    """Raise SourceError if the input (a path; ``.gz`` is decompressed) is a binary file."""
    stream, owned = open_input_stream(path_or_stream)
    try:
        head = stream.read(SNIFF_BYTES)
    except (OSError, EOFError) as e:  # a .gz that is not gzip
        raise _read_error(display_name(path_or_stream), e) from None
    finally:
        if owned:
            stream.close()
    kind = binary_kind(head)
    if kind is not None:
        raise _binary_error(display_name(path_or_stream), kind)


def _read_head(stream: BinaryIO) -> bytes:
    """The start of the input: PEEK_BYTES, then more until its first line with content ends (the
    first record may be one long line), at most MAX_PEEK_BYTES."""
    buf = bytearray(stream.read(PEEK_BYTES))
    if binary_kind(bytes(buf[:SNIFF_BYTES])) is not None:
        return bytes(buf)
    while len(buf) < MAX_PEEK_BYTES:
        start = len(buf) - len(buf.lstrip())
        if start < len(buf) and buf.find(b"\n", start) >= 0:
            break
        more = stream.read(min(len(buf) or PEEK_BYTES, MAX_PEEK_BYTES - len(buf)))
        if not more:
            break
        buf += more
    return bytes(buf)


def _decide_document(text: bytes) -> str | None:
    """The source of one JSON document longer than the peek (a pretty-printed EventList), by its keys."""
    return next((cls.name for cls in _detectors() if cls.sniff(text)), None)


def _decide(head: bytes, where: str) -> str:
    kind = binary_kind(head)
    if kind is not None:
        raise _binary_error(where, kind)
    text = head.lstrip()
    if not text:
        raise SourceError(f"cannot tell the source of {where}: it is empty; use --source")
    # one JSON document (an audit EventList, a pretty-printed event) or JSON Lines
    first_line = text.split(b"\n", 1)[0].strip()
    candidates = [first_line]
    if text[:1] in (b"{", b"["):
        candidates.append(text)
    document_cut = False  # a document longer than the peek: its keys tell
    for cand in candidates:
        try:
            obj = orjson.loads(cand)
        except orjson.JSONDecodeError:
            document_cut = cand is text and len(text) >= PEEK_BYTES // 2
            continue
        if isinstance(obj, list) and obj:
            obj = obj[0]
        name = classify(obj)
        if name is not None:
            return name
    if document_cut and len(first_line) < len(text):
        name = _decide_document(text)
        if name is not None:
            return name
    shown = first_line[:120].decode("utf-8", "replace")
    if len(first_line) > 120:
        shown += "..."
    raise SourceError(f"cannot tell the source of {where}: first line is {shown!r}; use --source")


def open_input(path_or_stream: PathOrStream, *, name_hint: str | None = None) -> tuple[str, BinaryIO]:
    """(source name, a binary stream positioned at the start of the input).

    ``path_or_stream`` is a path (``-`` for stdin, ``.gz`` is decompressed) or a binary stream;
    a non-seekable input is buffered, so nothing is lost to the peek.
    """
    where = display_name(path_or_stream, name_hint)
    stream, _owned = open_input_stream(path_or_stream)
    try:
        seekable = stream.seekable()
    except (AttributeError, ValueError, OSError):
        seekable = False
    try:
        if seekable:
            pos = stream.tell()
            head = _read_head(stream)
            stream.seek(pos)
            return _decide(head, where), stream
        head = _read_head(stream)
    except (OSError, EOFError) as e:  # a .gz that is not gzip, or is cut short
        if _owned:
            stream.close()
        raise _read_error(where, e) from None
    except SourceError:
        if _owned:
            stream.close()
        raise
    rest = io.BufferedReader(_Prefixed(head, stream), buffer_size=1 << 16)
    return _decide(head, where), rest


def detect_source(path: str | os.PathLike[str]) -> str:
    """The name of the registered source a file holds (see :mod:`stockade.sources.registry`); "-" is stdin.

    For stdin use :func:`open_input`, which also returns the stream to read from.
    """
    name, stream = open_input(path)
    if stream is not _stdin_buffer():
        stream.close()
    return name


def _stdin_buffer() -> BinaryIO:
    return sys.stdin.buffer


class _Prefixed(io.RawIOBase):
    """A stream that yields ``head`` and then the rest of ``tail``."""

    def __init__(self, head: bytes, tail: BinaryIO) -> None:
        super().__init__()
        self._head = memoryview(head)
        self._tail = tail
        self.name = getattr(tail, "name", "stdin")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        b = memoryview(buffer).cast("B")
        if self._head.nbytes:
            n = min(len(b), self._head.nbytes)
            b[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._tail.read(len(b))
        n = len(data)
        b[:n] = data
        return n

    def close(self) -> None:
        super().close()
        if self._tail is not _stdin_buffer():
            self._tail.close()
