"""The mutes in force in a running pipeline: kept in the store, applied to every alert at once,
expiring on time (the clock is injectable for tests), and every silenced alert counted."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from stockade.errors import UsageError
from stockade.model.alert import Alert
from stockade.model.mute import Mute, check_selector
from stockade.model.timeutil import parse_duration_s, parse_time_ns

Clock = Callable[[], int]


def expiry_ns(now_ns: int, for_: str | float | None, until: str | int | None) -> int:
    """A mute's expiry from a duration (`for_`: 2h, 30m, 7d or seconds) or a time (`until`:
    RFC 3339 or ns since the epoch); exactly one of them."""
    if (for_ is None) == (until is None):
        raise UsageError("a mute needs one expiry: a duration (for: 2h) or a time (until: RFC 3339)")
    if for_ is not None:
        try:
            secs = for_ if isinstance(for_, (int, float)) else parse_duration_s(str(for_))
        except ValueError:
            secs = -1.0
        if not secs > 0 or secs == float("inf"):
            raise UsageError(f"for: expected a positive duration (90s, 15m, 2h, 7d), not {for_!r}")
        return now_ns + int(secs * 1e9)
    t = until if isinstance(until, int) else parse_time_ns(str(until))
    if t is None:
        raise UsageError(f"until: expected an RFC 3339 time (2025-06-01T18:00:00Z), not {until!r}")
    if t <= now_ns:
        raise UsageError(f"until: {until} is in the past")
    return t


class MuteSet:
    """Thread-safe; `filter` (the pipeline's, per alert) reads an immutable tuple without locking."""

    def __init__(self, clock: Clock = time.time_ns) -> None:
        self.clock = clock
        self._mutes: tuple[Mute, ...] = ()
        self._lock = threading.Lock()
        #: alerts silenced, per rule and per mute id (since start; expired mutes keep theirs)
        self.muted: Counter[str] = Counter()
        self._hits: Counter[str] = Counter()

    def load(self, mutes: Iterable[Mute]) -> None:
        now = self.clock()
        with self._lock:
            self._mutes = tuple(m for m in mutes if m.active(now))

    def new(
        self,
        rule: str,
        reason: str,
        *,
        workload: str | None = None,
        for_: str | float | None = None,
        until: str | int | None = None,
        created_by: str | None = None,
    ) -> Mute:
        """A valid mute (not yet added): the rule named, a reason, a workload selector, an expiry."""
        if not rule.strip():
            raise UsageError("rule: a mute needs the name of the rule it silences")
        if not reason.strip():
            raise UsageError("reason: a mute needs a reason (who asked, why, a ticket)")
        now = self.clock()
        return Mute(
            rule=rule,
            reason=reason.strip(),
            workload=check_selector(workload) if workload is not None else None,
            created_ns=now,
            expires_ns=expiry_ns(now, for_, until),
            created_by=created_by,
        )

    def add(self, mute: Mute) -> None:
        with self._lock:
            self._mutes = (*(m for m in self._mutes if m.id != mute.id), mute)

    def remove(self, mute_id: str) -> None:
        with self._lock:
            self._mutes = tuple(m for m in self._mutes if m.id != mute_id)

    def prune(self) -> list[Mute]:
        """Forget the expired mutes; those it forgot."""
        now = self.clock()
        with self._lock:
            gone = [m for m in self._mutes if not m.active(now)]
            if gone:
                self._mutes = tuple(m for m in self._mutes if m.active(now))
        return gone

    def active(self) -> list[Mute]:
        now = self.clock()
        return [m for m in self._mutes if m.active(now)]

    def hits(self, mute_id: str) -> int:
        return self._hits[mute_id]

    def filter(self, alerts: list[Alert], data: Mapping[str, Any] | None = None) -> list[Alert]:
        """The alerts no active mute silences; the others are counted (per rule and per mute)."""
        mutes = self._mutes
        if not mutes:
            return alerts
        now = self.clock()
        kept = []
        for a in alerts:
            hit = next((m for m in mutes if m.active(now) and m.matches(a, data)), None)
            if hit is None:
                kept.append(a)
            else:
                hit.hits += a.count
                self._hits[hit.id] += a.count
                self.muted[a.rule] += a.count
        return kept

    @property
    def muted_total(self) -> int:
        return sum(self.muted.values())
