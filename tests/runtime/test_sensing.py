"""The sensor inside the runtime: backend choice and report, real processes, loss alerts."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from helpers import Collector, wait_until
from stockade.config import load_config
from stockade.model.alert import Alert
from stockade.runtime.sensing import LOSS_RULE, SensorRunner, plan


@pytest.mark.root
def test_plan_reports_what_is_missing() -> None:
    p = plan("fallback", {"execve", "openat", "ptrace"})
    assert p.backends, p.describe()
    d = p.describe()
    assert "procconn" in d["backend"]
    assert "ptrace" in d["missing_evttypes"]  # no fallback backend sees ptrace
    assert plan("none", None).backends == []


@pytest.mark.root
def test_fallback_sensor_sees_a_real_exec_and_open(tmp_path: Path) -> None:
    watched = tmp_path / "watched"
    watched.mkdir()
    secret = watched / "secret"
    secret.write_text("s")
    cfg = load_config(None, {"sensor": {"backend": "fallback", "watch_paths": [str(watched)]}}, environ={})
    sink = Collector()
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
        ex = sink.wait_for_event(
            lambda d: (
                d.get("evt.type") == "execve"
                and d.get("proc.exepath") == "/usr/bin/cat"
                and str(secret) in str(d.get("proc.cmdline"))
            )
        )
        assert ex.data.get("proc.ppid") == os.getpid()
        sink.wait_for_event(lambda d: d.get("evt.type") == "openat" and d.get("fd.name") == str(secret))
        assert not any(k.startswith("_") for ev in sink.events for k in ev.data)  # private keys consumed
        st = runner.status()
        assert st["events"] >= 2 and "procconn" in st["backend"]
    finally:
        runner.close()


@pytest.mark.root
def test_lost_events_become_an_alert() -> None:
    cfg = load_config(None, {"sensor": {"backend": "fallback", "watch_paths": []}}, environ={})
    sink = Collector()
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

    class Failing(Collector):
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
        wait_until(lambda: len(sink.events) >= 2, timeout=10)
    finally:
        runner.close()
    assert [e.data.get("n") for e in sink.events] == [1, 2]
    st = runner.status()["event_errors"]
    assert st["total"] == 1 and "ValueError: bad event" in st["last"][0]
