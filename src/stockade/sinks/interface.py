"""Alert sinks: each delivers alerts somewhere (stdout, a file, syslog, a webhook, memory).

Adding a sink is one new file with a class that implements :class:`SinkPlugin` plus one line in
:mod:`stockade.sinks.registry` (docs/architecture.md, "How to add a sink"). `emit` must not block
the pipeline for long: slow destinations queue (bounded) and spill to disk; nothing is dropped
silently: what cannot be delivered is counted in ``stats`` and, where the sink has a spool, kept
on disk for later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from stockade.errors import SinkError
from stockade.model.alert import Alert
from stockade.model.choices import OutputFormat
from stockade.model.clock import SYSTEM, Clock
from stockade.sinks.options import SinkOptions

__all__ = [
    "EntryError",
    "Reopenable",
    "Sink",
    "SinkContext",
    "SinkEntry",
    "SinkError",
    "SinkOptions",
    "SinkPlugin",
    "SinkStats",
]


@dataclass(slots=True)
class SinkStats:
    """What happened to the alerts a sink was given (docs/sinks.md): each one is counted once."""

    sent: int = 0
    #: could not be delivered and will not be retried
    failed: int = 0
    #: delivery attempts repeated
    retried: int = 0
    #: written to the disk spool
    spooled: int = 0
    #: lost because the spool (or the sink's memory) was full or could not be written
    dropped: int = 0


class Sink(Protocol):
    """What the pipeline needs of a sink."""

    name: str
    stats: SinkStats

    def emit(self, alert: Alert) -> None:
        """Deliver (or queue) one alert; never raises for a delivery problem (counts it)."""
        ...

    def flush(self) -> None:
        """Push out what is buffered (bounded in time)."""
        ...

    def close(self) -> None:
        """Flush and release the destination; safe to call twice."""
        ...


@runtime_checkable
class Reopenable(Protocol):
    """A sink that writes a file it can reopen (SIGHUP, after logrotate moved it)."""

    def reopen(self) -> None:
        """Close and reopen the output file."""
        ...


class SinkEntry(Protocol):
    """What a sink reads of its ``sinks:`` entry (:class:`stockade.config.SinkConfig`)."""

    @property
    def type(self) -> str:
        """The registered name of the sink."""
        ...

    @property
    def name(self) -> str | None:
        """The sink's name, if the entry gives one (else ``options.name``, or the type)."""
        ...

    @property
    def format(self) -> OutputFormat:
        """json or text."""
        ...

    @property
    def path(self) -> str | None:
        """A file sink's file."""
        ...

    @property
    def address(self) -> str | None:
        """A syslog sink's address."""
        ...

    @property
    def url(self) -> str | None:
        """A webhook sink's URL."""
        ...

    @property
    def min_priority(self) -> str:
        """Alerts below this priority do not reach the sink."""
        ...

    @property
    def rules(self) -> list[str]:
        """Only alerts of these rules (names or globs); empty: every rule."""
        ...

    @property
    def tags(self) -> list[str]:
        """Only alerts with one of these tags (names or globs); empty: any."""
        ...

    @property
    def namespaces(self) -> list[str]:
        """Only alerts in these Kubernetes namespaces (names or globs); empty: any."""
        ...

    @property
    def exclude_rules(self) -> list[str]:
        """Never alerts of these rules."""
        ...

    @property
    def exclude_tags(self) -> list[str]:
        """Never alerts with one of these tags."""
        ...

    @property
    def exclude_namespaces(self) -> list[str]:
        """Never alerts in these namespaces."""
        ...

    @property
    def options(self) -> Mapping[str, Any]:
        """The sink's own settings, checked by its ``Options`` model."""
        ...


@dataclass(frozen=True, slots=True)
class SinkContext:
    """What a sink is built with besides its entry: its name, the data directory, the clock."""

    name: str
    data_dir: Path
    clock: Clock = field(default=SYSTEM)


class EntryError(ValueError):
    """A problem with one key of a sink's entry (``path``, ``url``, ``address``, ``options.x``).

    Raised by :meth:`SinkPlugin.from_config`; the builder names the entry and key in the
    :class:`stockade.errors.ConfigError` it raises (``key 'sinks.1.path': ...``).
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
        self.message = message


class SinkPlugin(Sink, Protocol):
    """A sink class as the registry holds it: its options model and how to build it."""

    #: the model of the entry's ``options`` (a :class:`SinkOptions`, ``extra="forbid"``)
    Options: ClassVar[type[SinkOptions]]

    @classmethod
    def from_config(cls, entry: SinkEntry, options: Any, context: SinkContext) -> Sink:
        """The sink for one ``sinks:`` entry; `options` is an instance of ``cls.Options``.

        Raises :class:`EntryError` for a key of the entry it cannot use, :class:`ValueError`
        for other bad settings and :class:`OSError` when the destination cannot be opened.
        """
        ...
