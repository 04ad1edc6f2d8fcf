"""The bounded record of one component's problems (a sink's delivery errors, a sensor's read errors)."""

from __future__ import annotations

import collections
import logging
import time

__all__ = ["ErrorLog"]

#: an identical message is logged at most once in this many seconds
LOG_EVERY_S = 60.0


class ErrorLog:
    """The latest problems of one component: every one counted in :attr:`total`, the latest `keep`
    kept for status (:attr:`errors`) and, with a `logger`, logged as warnings ``"{subject}: ..."``.

    A repeated identical message is logged at most once a minute, so a dead destination or a
    stream of unreadable records does not flood the log.
    """

    def __init__(self, subject: str, keep: int = 20, *, logger: str | None = None) -> None:
        self._subject = subject
        self._log = logging.getLogger(logger) if logger is not None else None
        self.recent: collections.deque[str] = collections.deque(maxlen=keep)
        self.total = 0
        self._last_msg = ""
        self._last_logged = 0.0

    def report(self, message: str) -> None:
        self.total += 1
        self.recent.append(message)
        if self._log is None:
            return
        now = time.monotonic()
        if message != self._last_msg or now - self._last_logged >= LOG_EVERY_S:
            self._log.warning("%s: %s", self._subject, message)
            self._last_msg = message
            self._last_logged = now

    @property
    def errors(self) -> list[str]:
        return list(self.recent)
