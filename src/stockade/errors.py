"""One error hierarchy for all of Stockade.

Every error a user can cause derives from :class:`StockadeError`; anything else escaping is a bug.
Errors that concern a place in an input carry a :class:`Location`, so the message names the file,
line and column (or the configuration key, the flag, the environment variable)::

    class                        exit  HTTP  problem type
    StockadeError                1     400   error
    ├── ConfigError              2     500   configuration          a bad key or value
    ├── UsageError               2     422   invalid-parameter      a bad flag or parameter
    ├── RuleError                1     400   error                  a bad rule or condition
    │   ├── ConditionSyntaxError                (stockade.rules.parser)
    │   └── RuleLoadError                       (stockade.rules.ruleset: every problem of a load)
    ├── EventError               1     400   invalid-event          a malformed event
    ├── SourceError              1     400   invalid-input          an input that cannot be read
    ├── SinkError                1     400   error                  an alert sink that fails
    ├── StorageError             1     503   storage-unavailable    the database
    ├── NotFoundError            3     404   not-found              no such alert, event, mute
    ├── SensorError                             (stockade.sensor.interface)
    │   └── BpfError                            (stockade.sensor.ebpf.libbpf)
    ├── PluginError                             (stockade.plugins: an unknown or broken plugin)
    ├── PolicyError                             (stockade.policy.model: a bad WorkloadPolicy)
    │   └── ExportError                         (stockade.policy.export: a format cannot take it)
    ├── EnforceError                            (stockade.enforce.interface: a mechanism that fails)
    └── ReloadError                             (stockade.runtime.reload: the running rules kept)

A subclass defined elsewhere inherits its parent's exit status and problem (a test checks this
table against the classes).

Errors are translated at two boundaries only: the CLI prints ``stockade: error: <str(error)>``
(and the error's `details` below it) and exits with its `exit_code`
(:func:`stockade.cli.main.report`); the API answers an RFC 9457 problem+json document with the
error's `http_status`, `problem_type` and `title` (:mod:`stockade.api.problem`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Location:
    """A place in an input: file (or other origin), 1-based line and column, and an optional item."""

    file: str = "<input>"
    line: int | None = None
    column: int | None = None
    item: str | None = None  # e.g. "rule 'Terminal shell in container'"

    def __str__(self) -> str:
        s = self.file
        if self.line is not None:
            s += f":{self.line}"
            if self.column is not None:
                s += f":{self.column}"
        if self.item:
            s += f" ({self.item})"
        return s


class StockadeError(Exception):
    """Base of every error Stockade reports to a user: a message, where, and further lines.

    `details` are lines that say more (the other errors of a failed rules load); the CLI prints
    them indented below the message.
    """

    #: the CLI's exit status
    exit_code = 1
    #: the API's answer: HTTP status, problem type (a slug under the problem base URL), title
    http_status = 400
    problem_type = "error"
    title = "Stockade error"

    def __init__(self, message: str, location: Location | None = None, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.details = tuple(details)

    def __str__(self) -> str:
        if self.location is not None:
            return f"{self.location}: {self.message}"
        return self.message


class ConfigError(StockadeError):
    """A configuration key with a bad value, or a file that is not a configuration (exit 2)."""

    http_status = 500
    problem_type = "configuration"
    title = "Invalid configuration"
    exit_code = 2


class UsageError(StockadeError):
    """A bad flag, argument or request parameter (exit 2; a 422 problem)."""

    http_status = 422
    problem_type = "invalid-parameter"
    title = "Invalid usage"
    exit_code = 2


class RuleError(StockadeError):
    """A problem in a rules file or a condition (syntax, unknown field, undefined macro...)."""

    title = "Invalid rule"


class EventError(StockadeError):
    """A malformed event: counted and reported, the pipeline goes on."""

    problem_type = "invalid-event"
    title = "Malformed event"


class SourceError(StockadeError):
    """An input that cannot be read as events at all (missing, binary, not the format named)."""

    problem_type = "invalid-input"
    title = "Event source error"


class SinkError(StockadeError):
    """An alert sink that cannot be built or cannot deliver."""

    title = "Alert sink error"


class StorageError(StockadeError):
    """The database cannot be opened, read or written (the URL and the cause in the message)."""

    http_status = 503
    problem_type = "storage-unavailable"
    title = "Storage error"


class NotFoundError(StockadeError):
    """No alert, event, mute or running instance by that name (exit 3; a 404 problem)."""

    http_status = 404
    problem_type = "not-found"
    title = "Not found"
    exit_code = 3
