"""A monitor's rounds: `tick` in a thread of its own, now and every interval, until closed.

A round that raises is counted (``stats["failed_rounds"]``) and reported (the monitor's
:class:`~stockade.model.errorlog.ErrorLog`, which `stockade status` shows); the next round runs.
:meth:`Rounds.wake` starts the next round at once (a configuration change, a request).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

from stockade.model.errorlog import ErrorLog

__all__ = ["Rounds"]


class Rounds:
    """Runs `tick` now and every `interval_s()` seconds (measured start to start)."""

    def __init__(
        self,
        name: str,
        tick: Callable[[], object],
        interval_s: Callable[[], float],
        stats: Counter[str],
        errors: ErrorLog,
    ) -> None:
        self.name = name
        self._tick = tick
        self._interval_s = interval_s
        self._stats = stats
        self._errors = errors
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """The first round now, in the thread."""
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """The next round now."""
        self._wake.set()

    def close(self, timeout_s: float = 60.0) -> None:
        """Stop (the round under way finishes, within `timeout_s`)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._tick()
            except Exception as e:  # the next round runs: counted, kept for status, logged
                self._stats["failed_rounds"] += 1
                self._errors.report(f"{type(e).__name__}: {e}")
            self._wake.wait(max(0.0, self._interval_s() - (time.monotonic() - started)))
            self._wake.clear()
