"""The one bounded record of problems: what sinks and sensors count, keep and (sinks) log."""

from __future__ import annotations

import logging

import pytest

from stockade.model import errorlog
from stockade.sensor.interface import BackendStats
from stockade.sinks.spool import ErrorLog as SinkErrorLog


def test_a_sink_logs_each_new_message_and_a_repeated_one_once_a_minute(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(errorlog.time, "monotonic", lambda: clock[0])
    log = SinkErrorLog("hook", keep=2)
    with caplog.at_level(logging.WARNING, logger="stockade.sinks.hook"):
        for msg in ["refused", "refused", "refused", "timeout", "refused"]:
            log.report(msg)
            clock[0] += 1
        clock[0] += errorlog.LOG_EVERY_S
        log.report("refused")
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("stockade.sinks.hook", "sink hook: refused"),
        ("stockade.sinks.hook", "sink hook: timeout"),
        ("stockade.sinks.hook", "sink hook: refused"),
        ("stockade.sinks.hook", "sink hook: refused"),
    ]
    assert log.total == 6
    assert log.errors == ["refused", "refused"]


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
