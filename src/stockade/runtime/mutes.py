"""The mutes in force in a running pipeline: kept in the store, applied to every alert at once,
expiring on time (the clock is injectable for tests), and every silenced alert counted."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from stockade.model.alert import Alert
from stockade.model.mute import Mute

Clock = Callable[[], int]


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
        """Take these mutes (from the store), keeping those still in force."""
        now = self.clock()
        with self._lock:
            self._mutes = tuple(m for m in mutes if m.active(now))

    def add(self, mute: Mute) -> None:
        """Apply a mute from now on (one with the same id is replaced)."""
        with self._lock:
            self._mutes = (*(m for m in self._mutes if m.id != mute.id), mute)

    def remove(self, mute_id: str) -> None:
        """Stop applying a mute."""
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
        """The mutes in force now."""
        now = self.clock()
        return [m for m in self._mutes if m.active(now)]

    def hits(self, mute_id: str) -> int:
        """Alerts this mute silenced since start."""
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
        """Alerts silenced since start, all rules together."""
        return sum(self.muted.values())
