"""One error hierarchy for all of Stockade.

Every error a user can cause derives from :class:`StockadeError`. The CLI turns it into one line
and a non-zero exit; the API into RFC 9457 problem+json. Errors that concern a place in a file
carry a :class:`Location` so the message names file, line and column.
"""

from __future__ import annotations

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

    def shifted(self, line_offset: int = 0, column: int | None = None) -> Location:
        line = (self.line or 1) + line_offset
        return Location(self.file, line, column if column is not None else self.column, self.item)


class StockadeError(Exception):
    """Base of every error Stockade reports to a user."""

    exit_code = 1
    title = "Stockade error"

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location

    def __str__(self) -> str:
        if self.location is not None:
            return f"{self.location}: {self.message}"
        return self.message


class ConfigError(StockadeError):
    title = "Invalid configuration"
    exit_code = 2


class UsageError(StockadeError):
    title = "Invalid usage"
    exit_code = 2


class RuleError(StockadeError):
    """A problem in a rules file or a condition (syntax, unknown field, undefined macro...)."""

    title = "Invalid rule"


class EventError(StockadeError):
    """A malformed event: counted and reported, the pipeline goes on."""

    title = "Malformed event"


class SourceError(StockadeError):
    title = "Event source error"


class SinkError(StockadeError):
    title = "Alert sink error"


class StorageError(StockadeError):
    title = "Storage error"


class NotFoundError(StockadeError):
    title = "Not found"
    exit_code = 3
