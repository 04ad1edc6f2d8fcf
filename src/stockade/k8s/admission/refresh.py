"""A value rebuilt from disk in a background thread, outside the request path: readers take the
last good build without locking; a build that fails keeps the previous value and records why
(:attr:`Refreshed.error`, which readers may treat as an evaluation error)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from stockade.errors import StockadeError

__all__ = ["Refreshed"]

T = TypeVar("T")


class Refreshed(Generic[T]):
    """`build()` now, then every `interval` seconds in a daemon thread once :meth:`start` ed."""

    def __init__(self, build: Callable[[], T], empty: T, interval: float = 10.0) -> None:
        self._build = build
        self.interval = interval
        self.value: T = empty
        self.error: str | None = None
        self.built_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refresh()

    def refresh(self) -> None:
        """Rebuild now (the previous value kept, and the error recorded, when that fails)."""
        try:
            self.value = self._build()
        except (OSError, ValueError, StockadeError) as e:
            self.error = f"{type(e).__name__}: {e}"
            return
        self.error = None
        self.built_at = time.time()

    def start(self) -> None:
        """Refresh in the background until :meth:`stop`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="admission-refresh", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """End the background refresh."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.refresh()
