"""The recorded backend (the sensor's test double): a recording's raw events through the interface."""

from __future__ import annotations

import gzip
import select
import threading
import time
from pathlib import Path

import pytest

from stockade.sensor.interface import SensorError
from stockade.sensor.recorded import RecordedBackend

RECORDING = Path(__file__).resolve().parents[1] / "data" / "recordings" / "shell_in_container.jsonl"


def _drain(b: RecordedBackend) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    while batch := b.poll(0):
        out.extend(batch)
    return out


def test_a_recording_s_events_in_order_without_its_header() -> None:
    b = RecordedBackend(RECORDING, max_batch=4)
    b.start()
    try:
        first = b.poll(0)
        assert len(first) == 4  # a batch at most max_batch
        events = first + _drain(b)
    finally:
        b.close()
    assert [e["evt.type"] for e in events] == [
        "execve",
        "execve",
        "execve",
        "execve",
        "openat",
        "procexit",
        "execve",
        "connect",
        "openat",
        "procexit",
    ]
    assert b.stats.events == 10 and b.stats.errors == 0


def test_only_the_event_types_asked_for(tmp_path: Path) -> None:
    rec = tmp_path / "r.jsonl.gz"
    rec.write_bytes(gzip.compress(RECORDING.read_bytes()))
    b = RecordedBackend(rec)
    b.start({"openat", "connect"})
    try:
        assert [e["fd.name"] for e in _drain(b)] == [
            "/etc/shadow",
            "10.244.1.17:43210->203.0.113.7:8080",
            "/tmp/x.sh",
        ]
    finally:
        b.close()
    assert b.stats.events == 3


def test_a_line_that_is_not_an_event_is_counted_with_its_place(tmp_path: Path) -> None:
    rec = tmp_path / "bad.jsonl"
    rec.write_text(
        '{"stockade.schema": 1}\n\n{"evt.type": "execve", "proc.pid": 1}\nnot json\n[1]\n{"proc.pid": 2}\n'
    )
    b = RecordedBackend(rec)
    b.start()
    try:
        assert [e["proc.pid"] for e in _drain(b)] == [1]
    finally:
        b.close()
    assert b.stats.errors == 3
    assert [e.split(": ")[0:2] for e in b.stats.last_errors] == [
        [f"{rec}:4", "not JSON"],
        [f"{rec}:5", "not a JSON object"],
        [f"{rec}:6", "no evt.type"],
    ]


def test_a_missing_recording_fails_to_start(tmp_path: Path) -> None:
    with pytest.raises(SensorError, match=r"cannot open .*missing\.jsonl"):
        RecordedBackend(tmp_path / "missing.jsonl").start()


def test_events_fed_while_running_wake_a_waiting_poll() -> None:
    """Each event is a copy: what enrichment does to it never changes the source."""
    source = {"evt.type": "openat", "proc.pid": 3}
    b = RecordedBackend([source])
    b.start()
    try:
        assert select.select([b.fileno()], [], [], 0)[0]  # readable while events wait
        got = b.poll(0)
        got[0]["container.id"] = "host"
        assert source == {"evt.type": "openat", "proc.pid": 3}
        assert b.poll(0) == [] and not select.select([b.fileno()], [], [], 0)[0]
        threading.Timer(0.05, b.feed, args=([{"evt.type": "execve", "proc.pid": 4}],)).start()
        started = time.monotonic()
        assert [e["proc.pid"] for e in b.poll(5.0)] == [4]
        assert time.monotonic() - started < 4.0
    finally:
        b.close()
        b.close()  # twice is safe
    with pytest.raises(SensorError, match="not started"):
        b.poll(0)
