"""Event sources: each yields normalised Events from one kind of input.

Adding a source is one new file with a class implementing :class:`SourcePlugin` plus one line in
:mod:`stockade.sources.registry`. A source never raises on a bad record: it counts it in
``stats.malformed``, records the first few problems (with location) in ``stats.errors``, and goes on.
A source class also tells its own format (:meth:`SourcePlugin.classify`, :meth:`SourcePlugin.sniff`),
so :mod:`stockade.sources.detect` asks every registered source instead of knowing any.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, ClassVar, Protocol

from stockade.errors import SourceError
from stockade.model.errorlog import ErrorLog
from stockade.model.event import Event

__all__ = ["MAX_REPORTED_ERRORS", "PathOrStream", "Source", "SourceError", "SourcePlugin", "SourceStats"]

#: how many problems of one input are kept for its report (all are counted)
MAX_REPORTED_ERRORS = 20

#: an input: a path (``-`` for stdin, ``.gz`` decompressed) or a binary stream
PathOrStream = str | os.PathLike[str] | BinaryIO


def _first_errors() -> ErrorLog:
    return ErrorLog("source", MAX_REPORTED_ERRORS, policy="first")


@dataclass(slots=True)
class SourceStats:
    """What a source read: events, and the malformed records it skipped (counted, the first kept)."""

    events: int = 0
    log: ErrorLog = field(default_factory=_first_errors, repr=False, compare=False)

    @property
    def malformed(self) -> int:
        """Records skipped as malformed."""
        return self.log.total

    @property
    def errors(self) -> list[str]:
        """The first :data:`MAX_REPORTED_ERRORS` problems, ``"file:line: message"``."""
        return self.log.errors

    def bad(self, where: str, message: str) -> None:
        """Count one malformed record at ``where`` ("file:line")."""
        self.log.report(f"{where}: {message}")


class Source(Protocol):
    """A running source: what the pipeline consumes."""

    #: registry name: "syscall" (JSON Lines recordings), "falco", "tetragon", "k8s_audit"
    name: str
    stats: SourceStats

    def events(self) -> Iterator[Event]:
        """Yield events until the input ends."""
        ...


class SourcePlugin(Source, Protocol):
    """A registered source class: opens one input, and tells its own format from a first record."""

    #: what one record of this source is, for messages ("a Falco alert")
    record: ClassVar[str]
    #: detection asks sources in this order (lower first); matters only when two claim a record
    detect_order: ClassVar[int]

    def __init__(self, path_or_stream: PathOrStream, *, name_hint: str | None = None) -> None: ...

    @classmethod
    def classify(cls, obj: object) -> bool:
        """Whether a decoded record (an input's first record) is one of this source's."""
        ...

    @classmethod
    def sniff(cls, text: bytes) -> bool:
        """Whether the start of one JSON document too long to decode whole has this source's keys."""
        ...
