"""The sensor inside the runtime: backend choice and report, real processes, loss alerts."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from stockade.config import load_config
from stockade.model.alert import Alert
from stockade.runtime.sensing import LOSS_RULE, SensorRunner, plan


def test_plan_reports_what_is_missing() -> None:
    p = plan("fallback", {"execve", "openat", "ptrace"})
    if not p.backends:
        pytest.skip("no fallback backend can run here (needs root)")
    d = p.describe()
    assert "procconn" in d["backend"]
    assert "ptrace" in d["missing_evttypes"]  # no fallback backend sees ptrace
    assert plan("none", None).backends == []


class _Collect:
    def __init__(self) -> None:
        self.events: list[Any] = []
        self.alerts: list[Alert] = []

    def handle(self, ev: Any) -> list[Alert]:
        self.events.append(ev)
        return []

    def ingest_alerts(self, alerts: list[Alert]) -> int:
        self.alerts.extend(alerts)
        return len(alerts)


@pytest.mark.root
def test_fallback_sensor_sees_a_real_exec_and_open(tmp_path: Path) -> None:
    watched = tmp_path / "watched"
    watched.mkdir()
    secret = watched / "secret"
    secret.write_text("s")
    cfg = load_config(None, {"sensor": {"backend": "fallback", "watch_paths": [str(watched)]}}, environ={})
    sink = _Collect()
    runner = SensorRunner(cfg, sink, {"execve", "openat"})
    runner.start()
    try:
        time.sleep(0.5)
        # cat stays alive until its stdin closes: the proc connector names only the pid, and a process
        # gone before /proc is read has no command line (counted in exec_unread, tested elsewhere)
        p = subprocess.Popen(["/bin/cat", str(secret), "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        time.sleep(0.5)
        out, _ = p.communicate(b"", timeout=10)
        assert out == b"s"
        deadline = time.monotonic() + 10
        seen_exec = seen_open = False
        while time.monotonic() < deadline and not (seen_exec and seen_open):
            time.sleep(0.2)
            for ev in list(sink.events):
                d = ev.data
                if (
                    d.get("evt.type") == "execve"
                    and d.get("proc.exepath") == "/usr/bin/cat"
                    and str(secret) in str(d.get("proc.cmdline"))
                ):
                    seen_exec = True
                    assert d.get("proc.ppid") == os.getpid()
                if d.get("evt.type") == "openat" and d.get("fd.name") == str(secret):
                    seen_open = True
        assert seen_exec and seen_open
        assert not any(k.startswith("_") for ev in sink.events for k in ev.data)  # private keys consumed
        st = runner.status()
        assert st["events"] >= 2 and "procconn" in st["backend"]
    finally:
        runner.close()


@pytest.mark.root
def test_lost_events_become_an_alert() -> None:
    cfg = load_config(None, {"sensor": {"backend": "fallback", "watch_paths": []}}, environ={})
    sink = _Collect()
    runner = SensorRunner(cfg, sink, {"execve"})
    runner.start()
    try:
        b = next(iter(runner.backends.values()))
        b.stats.lost["netlink_enobufs"] += 7  # what the backend does when the kernel drops
        runner.check_loss()
        runner.check_loss()  # reported once, not again
    finally:
        runner.close()
    losses = [a for a in sink.alerts if a.rule == LOSS_RULE]
    assert (
        len(losses) == 1 and losses[0].output_fields["sensor.lost"] == 7 and losses[0].priority == "Critical"
    )


def test_an_event_that_fails_is_counted_and_the_sensor_goes_on() -> None:
    """Enrichment or the pipeline failing on one event must not stop the consumer thread: the
    failure is counted in status()["event_errors"] and the next events still arrive."""

    class Failing(_Collect):
        def handle(self, ev: Any) -> list[Alert]:
            if ev.data.get("boom"):
                raise ValueError("bad event")
            return super().handle(ev)

    cfg = load_config(None, {"sensor": {"backend": "none"}}, environ={})
    sink = Failing()
    runner = SensorRunner(cfg, sink, {"execve"})
    runner.start()
    try:
        runner._q.put(("test", [{"evt.type": "execve", "boom": True}, {"evt.type": "execve", "n": 1}]))
        runner._q.put(("test", [{"evt.type": "execve", "n": 2}]))
        deadline = time.monotonic() + 10
        while len(sink.events) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        runner.close()
    assert [e.data.get("n") for e in sink.events] == [1, 2]
    st = runner.status()["event_errors"]
    assert st["total"] == 1 and "ValueError: bad event" in st["last"][0]
