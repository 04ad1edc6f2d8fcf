"""The bounded record of one component's problems (a sink's delivery errors, a sensor's read errors,
a source's malformed records, the engine's evaluation errors): every problem counted, a few kept.

Which few is the component's choice (:data:`KeepPolicy`): the latest (``"last"``, for a running
component whose status should show what goes wrong now) or the first (``"first"``, for a finite
input whose report should show where the trouble began).
"""

from __future__ import annotations

import collections
import logging
from typing import Literal, assert_never

from stockade.model.clock import SYSTEM, Clock

__all__ = ["DEFAULT_KEEP", "LOG_EVERY_S", "ErrorLog", "KeepPolicy"]

#: an identical message is logged at most once in this many seconds
LOG_EVERY_S = 60.0
#: how many problems a record keeps unless told otherwise
DEFAULT_KEEP = 20

#: which problems a full record keeps: the first ones, or the latest ones
KeepPolicy = Literal["first", "last"]


class ErrorLog:
    """The problems of one component: every one counted in :attr:`total`, `keep` of them kept for
    status (:attr:`errors`: the first or the latest, per `policy`) and, with a `logger`, logged as
    warnings ``"{subject}: ..."``.

    A repeated identical message is logged at most once a minute (on `clock`), so a dead
    destination or a stream of unreadable records does not flood the log.
    """

    __slots__ = (
        "_clock",
        "_kept",
        "_last_logged",
        "_last_msg",
        "_log",
        "_subject",
        "keep",
        "policy",
        "total",
    )

    def __init__(
        self,
        subject: str,
        keep: int = DEFAULT_KEEP,
        *,
        policy: KeepPolicy = "last",
        logger: str | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        self._subject = subject
        self._log = logging.getLogger(logger) if logger is not None else None
        self._clock = clock
        self.keep = keep
        self.policy: KeepPolicy = policy
        self._kept: collections.deque[str] | list[str]
        match policy:
            case "last":
                self._kept = collections.deque(maxlen=keep)
            case "first":
                self._kept = []
            case _:
                assert_never(policy)
        self.total = 0
        self._last_msg = ""
        self._last_logged = 0.0

    def report(self, message: str) -> None:
        """Count one problem, keep it if the policy says so, and log it (rate-limited)."""
        self.total += 1
        if self.policy == "last" or len(self._kept) < self.keep:
            self._kept.append(message)
        if self._log is None:
            return
        now = self._clock.monotonic()
        if message != self._last_msg or now - self._last_logged >= LOG_EVERY_S:
            self._log.warning("%s: %s", self._subject, message)
            self._last_msg = message
            self._last_logged = now

    @property
    def errors(self) -> list[str]:
        """The kept problems, oldest first."""
        return list(self._kept)

    @property
    def dropped(self) -> int:
        """Problems counted but no longer (or never) kept."""
        return self.total - len(self._kept)
