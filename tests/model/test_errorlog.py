"""The one bounded record of problems: what sinks, sensors, sources and the engine count and keep."""

from __future__ import annotations

import logging

import pytest

from stockade.model import errorlog
from stockade.model.clock import FakeClock
from stockade.model.errorlog import ErrorLog
from stockade.sensor.interface import BackendStats
from stockade.sinks.spool import ErrorLog as SinkErrorLog


def test_a_logged_record_logs_each_new_message_and_a_repeated_one_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    log = ErrorLog("sink hook", keep=2, logger="stockade.sinks.hook", clock=clock)
    with caplog.at_level(logging.WARNING, logger="stockade.sinks.hook"):
        for msg in ["refused", "refused", "refused", "timeout", "refused"]:
            log.report(msg)
            clock.advance(1)
        clock.advance(errorlog.LOG_EVERY_S)
        log.report("refused")
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("stockade.sinks.hook", "sink hook: refused"),
        ("stockade.sinks.hook", "sink hook: timeout"),
        ("stockade.sinks.hook", "sink hook: refused"),
        ("stockade.sinks.hook", "sink hook: refused"),
    ]
    assert log.total == 6
    assert log.errors == ["refused", "refused"]
    assert log.dropped == 4


def test_a_sink_record_is_named_after_the_sink_and_logs_on_its_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = SinkErrorLog("hook", keep=2)
    with caplog.at_level(logging.WARNING, logger="stockade.sinks.hook"):
        log.report("refused")
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("stockade.sinks.hook", "sink hook: refused")
    ]


def test_keep_last_keeps_the_latest_problems_in_order() -> None:
    log = ErrorLog("x", keep=3)
    for i in range(7):
        log.report(f"p{i}")
    assert log.errors == ["p4", "p5", "p6"]
    assert (log.total, log.dropped) == (7, 4)


def test_keep_first_keeps_the_first_problems_and_counts_the_rest() -> None:
    log = ErrorLog("x", keep=3, policy="first")
    for i in range(7):
        log.report(f"p{i}")
    assert log.errors == ["p0", "p1", "p2"]
    assert (log.total, log.dropped) == (7, 4)


def test_a_short_record_keeps_everything_whatever_the_policy() -> None:
    first, last = ErrorLog("x", policy="first"), ErrorLog("x", policy="last")
    for log in (first, last):
        log.report("a")
        log.report("b")
    assert first.errors == last.errors == ["a", "b"]
    assert first.keep == errorlog.DEFAULT_KEEP


def test_errors_is_a_copy() -> None:
    log = ErrorLog("x")
    log.report("a")
    log.errors.append("b")
    assert log.errors == ["a"]


def test_a_sensor_counts_and_keeps_its_latest_problems_without_logging(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stats = BackendStats()
    with caplog.at_level(logging.DEBUG):
        for i in range(25):
            stats.error(f"decode: ValueError: record {i}")
    assert caplog.records == []
    assert stats.errors == 25
    assert stats.last_errors == [f"decode: ValueError: record {i}" for i in range(5, 25)]
    assert stats.to_dict()["errors"] == 25
    assert stats.to_dict()["last_errors"] == stats.last_errors
