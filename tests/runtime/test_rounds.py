"""A monitor's rounds (runtime/rounds.py): a failing round is counted and reported and the next one
runs; wake starts one at once; close stops the thread."""

from __future__ import annotations

import threading
from collections import Counter

from helpers import wait_until
from stockade.model.errorlog import ErrorLog
from stockade.runtime.rounds import Rounds


def test_a_failed_round_is_counted_and_the_next_runs_when_woken() -> None:
    calls: list[int] = []
    second = threading.Event()

    def tick() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise OSError("disk gone")
        second.set()

    stats: Counter[str] = Counter()
    errors = ErrorLog("test", logger="stockade.test")
    rounds = Rounds("stockade-test-rounds", tick, lambda: 3600.0, stats, errors)
    rounds.start()
    try:
        assert wait_until(lambda: stats["failed_rounds"] == 1, timeout=10)
        assert not second.is_set()  # the interval is an hour: nothing more without a wake
        rounds.wake()
        assert second.wait(10)
        assert "OSError: disk gone" in str(errors.errors)
    finally:
        rounds.close(timeout_s=10)
    assert not any(t.name == "stockade-test-rounds" for t in threading.enumerate())
