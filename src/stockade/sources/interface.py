"""Event sources: each yields normalised Events from one kind of input.

Adding a source is one new file with a class implementing :class:`Source` plus one line in
:mod:`stockade.sources.registry`. A source never raises on a bad record: it counts it in
``stats.malformed``, records the first few problems (with location) in ``stats.errors``, and goes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from stockade.errors import SourceError
from stockade.model.event import Event

__all__ = ["MAX_REPORTED_ERRORS", "Source", "SourceError", "SourceStats"]

MAX_REPORTED_ERRORS = 20


@dataclass(slots=True)
class SourceStats:
    events: int = 0
    malformed: int = 0
    #: first MAX_REPORTED_ERRORS problems, "file:line: message"
    errors: list[str] = field(default_factory=list)

    def bad(self, where: str, message: str) -> None:
        self.malformed += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(f"{where}: {message}")


class Source(Protocol):
    #: registry name: "syscall" (JSON Lines recordings), "falco", "tetragon", "k8s_audit"
    name: str
    stats: SourceStats

    def events(self) -> Iterator[Event]:
        """Yield events until the input ends."""
        ...
