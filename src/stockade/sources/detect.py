"""Which source an input file holds, told from its first record.

:func:`open_input` peeks at a file or stdin without losing data and returns the detected source name
with a stream that still starts at the first byte.
"""

from __future__ import annotations

import io
import os
from typing import Any, BinaryIO

import orjson

from stockade.errors import SourceError
from stockade.sources.jsonl import PathOrStream, display_name, open_input_stream

__all__ = ["PEEK_BYTES", "classify", "detect_source", "open_input"]

#: how much of the input is read to decide (the first record must fit)
PEEK_BYTES = 1 << 20

_TETRAGON_KINDS = (
    "process_exec",
    "process_exit",
    "process_kprobe",
    "process_tracepoint",
    "process_lsm",
    "process_uprobe",
    "process_loader",
    "process_usdt",
    "process_throttle",
    "rate_limit_info",
)


def classify(obj: Any) -> str | None:
    """The source a decoded record belongs to, or None."""
    if not isinstance(obj, dict):
        return None
    kind = obj.get("kind")
    api = obj.get("apiVersion")
    if kind in ("Event", "EventList") and isinstance(api, str) and api.startswith("audit.k8s.io/"):
        return "k8s_audit"
    if "rule" in obj and "priority" in obj and "output" in obj:
        return "falco"
    if any(k in obj for k in _TETRAGON_KINDS):
        return "tetragon"
    if "evt.type" in obj or "stockade.schema" in obj:
        return "syscall"
    return None


def _decide(head: bytes, where: str) -> str:
    text = head.lstrip()
    if not text:
        raise SourceError(f"cannot tell the source of {where}: it is empty; use --source")
    # one JSON document (an audit EventList, a pretty-printed event) or JSON Lines
    first_line = text.split(b"\n", 1)[0].strip()
    candidates = [first_line]
    if text[:1] in (b"{", b"["):
        candidates.append(text)
    for cand in candidates:
        try:
            obj = orjson.loads(cand)
        except orjson.JSONDecodeError:
            continue
        if isinstance(obj, list) and obj:
            obj = obj[0]
        name = classify(obj)
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
    if seekable:
        pos = stream.tell()
        head = stream.read(PEEK_BYTES)
        stream.seek(pos)
        try:
            return _decide(head, where), stream
        except SourceError:
            if _owned:
                stream.close()
            raise
    head = stream.read(PEEK_BYTES)
    rest = io.BufferedReader(_Prefixed(head, stream), buffer_size=1 << 16)
    return _decide(head, where), rest


def detect_source(path: str | os.PathLike[str]) -> str:
    """The source name ("syscall", "falco", "tetragon", "k8s_audit") of a file; "-" is stdin.

    For stdin use :func:`open_input`, which also returns the stream to read from.
    """
    name, stream = open_input(path)
    if stream is not _stdin_buffer():
        stream.close()
    return name


def _stdin_buffer() -> Any:
    import sys

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

    def readinto(self, b: Any) -> int:
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
