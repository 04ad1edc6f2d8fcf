"""What a read of the store selects: :class:`AlertFilter` for alerts, and the time range and source
that alerts and events are both filtered on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from stockade.errors import UsageError
from stockade.model.alert import normalize_priority, priority_rank
from stockade.storage import tables

__all__ = ["AlertFilter", "span_conditions"]


def span_conditions(
    table: sa.Table, since_ns: int | None, until_ns: int | None, source: str | None
) -> list[Any]:
    """Rows of `table` (alerts or events) from `since_ns` to `until_ns` (both included) of `source`;
    a None bound or source does not filter."""
    conds: list[Any] = []
    if since_ns is not None:
        conds.append(table.c.time_ns >= since_ns)
    if until_ns is not None:
        conds.append(table.c.time_ns <= until_ns)
    if source is not None:
        conds.append(table.c.source == source)
    return conds


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Alerts matching every filter given (None: not filtered on).

    ``rule`` is the exact rule name in any case; ``min_priority="Warning"`` gives Warning and more
    severe (any case; an unknown name is a :class:`~stockade.errors.UsageError` when the store
    reads); ``container_id`` matches the container's id or a prefix of it (short ids work), or its
    name (``container.name``), or the workload as `stockade alerts list` shows it (``container:web``,
    ``prod/web-7d4b9c-x2x``); ``text`` is a case-insensitive substring of the output or the rule name.
    """

    since_ns: int | None = None
    until_ns: int | None = None
    rule: str | None = None
    min_priority: str | None = None
    source: str | None = None
    container_id: str | None = None
    text: str | None = None

    def conditions(self) -> list[Any]:
        """The SQL conditions on the alerts table, all to hold."""
        a = tables.alerts
        conds = span_conditions(a, self.since_ns, self.until_ns, self.source)
        if self.rule is not None:
            conds.append(sa.func.lower(a.c.rule) == sa.func.lower(sa.literal(self.rule)))
        if self.min_priority is not None:
            p = normalize_priority(self.min_priority)
            if p is None:
                raise UsageError(f"unknown priority {self.min_priority!r}")
            conds.append(a.c.priority_rank <= priority_rank(p))
        if self.container_id:
            c = self.container_id
            conds.append(
                sa.or_(
                    a.c.container_id.startswith(c, autoescape=True),
                    a.c.workload.in_([c, f"container:{c}"]),
                    a.c.body[("output_fields", "container.name")].as_string() == c,
                )
            )
        if self.text:
            needle = self.text.lower()
            conds.append(
                sa.or_(
                    sa.func.lower(a.c.output).contains(needle, autoescape=True),
                    sa.func.lower(a.c.rule).contains(needle, autoescape=True),
                )
            )
        return conds
