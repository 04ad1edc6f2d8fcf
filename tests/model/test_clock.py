"""The shipped clock double moves only when told, and records sleeps."""

import time

import pytest

from stockade.model.clock import SYSTEM, FakeClock


def test_fake_clock_moves_only_when_told() -> None:
    c = FakeClock(start=100.0)
    assert (c.time(), c.monotonic()) == (100.0, 0.0)
    c.sleep(2.5)
    c.advance(0.5)
    assert (c.time(), c.monotonic(), c.sleeps) == (103.0, 3.0, [2.5])
    with pytest.raises(ValueError):
        c.advance(-1)


def test_system_clock_is_the_machine_clock() -> None:
    assert abs(SYSTEM.time() - time.time()) < 5
    before = SYSTEM.monotonic()
    SYSTEM.sleep(0.01)
    assert SYSTEM.monotonic() - before >= 0.009
