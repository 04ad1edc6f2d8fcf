"""Time as a dependency: code that waits, backs off, expires or timestamps takes a :class:`Clock`.

:data:`SYSTEM` is the real one; :class:`FakeClock` is the test double, shipped with the code so
tests of retries, expiry and rate limits run in microseconds and never race a loaded machine.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

__all__ = ["SYSTEM", "Clock", "FakeClock", "SystemClock"]


class Clock(Protocol):
    """Wall time (for timestamps), monotonic time (for intervals) and sleeping."""

    def time(self) -> float:
        """Seconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (only differences mean anything)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`."""
        ...


class SystemClock:
    """The machine's clocks."""

    def time(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def monotonic(self) -> float:
        """The kernel's monotonic clock."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        if seconds > 0:
            time.sleep(seconds)


SYSTEM: Clock = SystemClock()


class FakeClock:
    """A clock that moves only when told to: :meth:`advance`, or :meth:`sleep` (which advances).

    Thread-safe; every sleep is recorded in :attr:`sleeps`, so a test can assert a backoff schedule.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._wall = start
        self._mono = 0.0
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def time(self) -> float:
        """The fake wall time."""
        with self._lock:
            return self._wall

    def monotonic(self) -> float:
        """The fake monotonic time."""
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by `seconds`."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        with self._lock:
            self._wall += seconds
            self._mono += seconds

    def sleep(self, seconds: float) -> None:
        """Record the sleep and advance by it, without waiting."""
        self.sleeps.append(seconds)
        self.advance(max(0.0, seconds))
