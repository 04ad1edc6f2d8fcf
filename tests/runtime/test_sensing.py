"""The sensor inside the runtime: backend choice and report, causal order, container paths, loss
alerts, failures. Backends are the registry's own (root) or the recorded test double (no root)."""

from __future__ import annotations

import os
import subprocess
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import Collector, wait_until
from stockade.config import StockadeConfig, load_config
from stockade.engine.build import build_engine
from stockade.model.alert import Alert
from stockade.model.event import Event
from stockade.plugins import Registry
from stockade.runtime.pipeline import Pipeline
from stockade.runtime.sensing import LOSS_RULE, SensorRunner, plan
from stockade.sensor.containers.info import ContainerInfo
from stockade.sensor.containers.podman import PodmanClient
from stockade.sensor.containers.resolver import ContainerResolver
from stockade.sensor.enrich import Enricher
from stockade.sensor.interface import Backend, Capabilities, RawEvent, Role, SensorError
from stockade.sensor.proctable import ProcessTable
from stockade.sensor.recorded import RecordedBackend

RECORDING = Path(__file__).resolve().parents[1] / "data" / "recordings" / "shell_in_container.jsonl"
CID = "cd" * 32


# -- plans, over a registry of stand-ins ----------------------------------------------------------

#: name -> why it cannot run ("" : it can), read by the stand-ins' probe()
UNAVAILABLE: dict[str, str] = {}


def _caps(name: str, evttypes: set[str], missing: set[str]) -> Capabilities:
    why = UNAVAILABLE.get(name, "")
    if why == "raise":
        raise RuntimeError("probe exploded")
    return Capabilities(name, not why, why, frozenset(evttypes), frozenset(missing))


def _stand_in(name: str, title: str, role: Role, evttypes: set[str], missing: set[str]) -> type[Backend]:
    """A backend class that plans like a real one: its probe says what UNAVAILABLE says of it."""

    class StandIn(RecordedBackend):
        @staticmethod
        def probe() -> Capabilities:
            return _caps(name, evttypes, missing)

    StandIn.name, StandIn.title, StandIn.role = name, title, role
    return StandIn


Kernel = _stand_in("kernel", "kernel", "primary", {"execve", "openat", "ptrace", "connect"}, {"fd.uid"})
Kernel2 = _stand_in("kernel2", "second kernel", "primary", {"execve", "openat", "ptrace", "connect"}, set())
Procs = _stand_in("procs", "procs", "fallback", {"execve", "clone", "procexit"}, {"fd.uid", "proc.tty"})
Files = _stand_in("files", "files", "fallback", {"openat"}, {"fd.uid", "thread.tid"})

REGISTRY = Registry[Backend](
    "sensor backend",
    {
        "kernel": f"{__name__}:Kernel",
        "procs": f"{__name__}:Procs",
        "replay": "stockade.sensor.recorded:RecordedBackend",
        "files": f"{__name__}:Files",
        "kernel2": f"{__name__}:Kernel2",
        "broken": "no_such_module_of_stockade:Backend",
    },
)


@pytest.fixture(autouse=True)
def _all_available() -> Iterator[None]:
    UNAVAILABLE.clear()
    yield
    UNAVAILABLE.clear()


def test_auto_runs_the_first_primary_that_can_run_alone() -> None:
    p = plan("auto", {"execve", "ptrace"}, REGISTRY)
    d = p.describe()
    assert d["backend"] == "kernel"
    # the other primary and the fallbacks are not even probed; an unimportable backend is said
    assert list(d["probed"]) == ["broken", "kernel"]
    assert "not built or not installed" in d["probed"]["broken"]["reason"]
    assert d["missing_evttypes"] == [] and d["missing_fields"] == ["fd.uid"]
    UNAVAILABLE["kernel"] = "needs a kernel"
    assert plan("auto", None, REGISTRY).backends == ["kernel2"]


def test_auto_without_a_primary_runs_every_fallback_that_can_run() -> None:
    UNAVAILABLE.update({"kernel": "needs root", "kernel2": "raise"})
    d = plan("auto", {"execve", "openat", "ptrace"}, REGISTRY).describe()
    assert d["backend"] == "procs+files"  # registry order; the replay double is never planned
    assert d["probed"]["kernel"] == {"available": False, "reason": "needs root"}
    assert d["probed"]["kernel2"]["reason"] == "probe failed: RuntimeError: probe exploded"
    assert "replay" not in d["probed"]
    assert d["missing_evttypes"] == ["ptrace"]
    assert d["missing_fields"] == ["fd.uid"]  # what every chosen backend lacks, not what one does
    UNAVAILABLE["files"] = "no fanotify"
    d = plan("fallback", {"openat"}, REGISTRY).describe()
    assert d["backend"] == "procs" and d["missing_evttypes"] == ["openat"]
    assert "kernel" not in d["probed"] and d["probed"]["files"]["available"] is False


def test_ebpf_requires_a_primary_and_says_why_not() -> None:
    assert plan("ebpf", None, REGISTRY).backends == ["kernel"]
    UNAVAILABLE.update({"kernel": "needs root", "kernel2": "no BTF"})
    with pytest.raises(SensorError) as e:
        plan("ebpf", None, REGISTRY)
    assert str(e.value).endswith(
        "the broken backend cannot run here: not built or not installed: sensor backend 'broken' is not "
        "available in this build: No module named 'no_such_module_of_stockade'; the kernel backend cannot run "
        "here: needs root; the second kernel backend cannot run here: no BTF"
    )
    assert plan("none", {"execve"}, REGISTRY).backends == []


@pytest.mark.root
def test_plan_reports_what_is_missing() -> None:
    """The real registry: the fallbacks say what they cannot see."""
    p = plan("fallback", {"execve", "openat", "ptrace"})
    assert p.backends, p.describe()
    d = p.describe()
    assert "procconn" in d["backend"]
    assert "ptrace" in d["missing_evttypes"]  # no fallback backend sees ptrace
    assert plan("none", None).backends == []


# -- the runner, on recorded events ---------------------------------------------------------------


class FakePodman(PodmanClient):
    """A podman that knows one container (CID) and its overlay root, as `podman inspect` says."""

    def __init__(self, root: Path) -> None:
        super().__init__("podman-is-not-run")
        self.root = root

    def inspect(self, cid: str) -> dict[str, Any] | None:
        if cid != CID:
            return None
        data = {"MergedDir": str(self.root / "merged"), "UpperDir": str(self.root / "diff")}
        return {
            "Id": CID,
            "Name": "web",
            "ImageName": "docker.io/library/nginx:1.27",
            "GraphDriver": {"Data": data},
        }


def _enricher(tmp_path: Path) -> Enricher:
    """The real enricher without /proc or a container runtime (FakePodman answers)."""
    resolver = ContainerResolver(
        runc_roots=(str(tmp_path),), podman=FakePodman(tmp_path), docker_root=str(tmp_path)
    )
    return Enricher(ProcessTable(read_proc=False), resolver, read_proc=False, drift=False)


def _config(**sensor: Any) -> StockadeConfig:
    return load_config(None, {"sensor": {"backend": "none", **sensor}}, environ={})


def _wait(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    assert wait_until(cond, timeout, step=0.01), "timed out"


def _run(runner: SensorRunner, until: Callable[[], bool]) -> None:
    runner.start()
    try:
        _wait(until)
    finally:
        runner.close()


def test_recorded_events_reach_the_pipeline_enriched(tmp_path: Path) -> None:
    sink = Collector()
    rec = RecordedBackend(RECORDING)
    runner = SensorRunner(_config(), sink, {"openat"}, backends=[rec], enricher=_enricher(tmp_path))
    assert runner.plan.describe()["backend"] == "recorded"
    _run(runner, lambda: len(sink.events) == 9)
    types = [e.data["evt.type"] for e in sink.events]
    # what the rules need and the process events; connect is not needed, so not delivered
    assert (types.count("execve"), types.count("openat"), types.count("procexit")) == (5, 2, 2)
    assert all(e.source == "syscall" and e.origin == "sensor" for e in sink.events)
    # fields the backend gave are never overwritten by enrichment
    cat = next(e.data for e in sink.events if e.data.get("proc.name") == "cat")
    assert cat["proc.pname"] == "bash" and cat["container.id"] == "3ad7b26ded6d"
    st = runner.status()
    assert st["events"] == 9 and st["backends"]["recorded"]["events"] == 9 and st["lost_total"] == 0
    assert st["enrichment"]["events"] == 9 and st["event_errors"]["total"] == 0


def test_a_recording_raises_its_alerts_through_the_pipeline(tmp_path: Path) -> None:
    """The whole path an agent runs, without root: backend, runner, enrichment, engine, sinks."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        textwrap.dedent(
            """
            - rule: Shadow read
              desc: d
              condition: evt.type = openat and fd.name = /etc/shadow
              output: "%proc.name read the shadow file (parent %proc.pname, container %container.id)"
              priority: WARNING
            """
        )
    )
    cfg = load_config(None, {"engine": {"falco_rules_paths": [], "builtin_rules": False}}, environ={})
    engine, _ = build_engine(cfg, [str(rules)], rule_matching="all")
    alerts = Collector()
    pipeline = Pipeline(engine, [alerts.sink])
    rec = RecordedBackend(RECORDING)
    runner = SensorRunner(
        cfg, pipeline, engine.evttypes("syscall"), backends=[rec], enricher=_enricher(tmp_path)
    )
    _run(runner, lambda: rec.stats.events == 9 and runner.events == 9)
    assert [a.rule for a in alerts.alerts] == ["Shadow read"]
    assert "cat read the shadow file (parent bash, container 3ad7b26ded6d)" in alerts.alerts[0].output


def test_private_keys_are_consumed_and_container_paths_made_the_container_s(tmp_path: Path) -> None:
    """fanotify names a container's files by their host path under its root: the runner asks the
    watching backends to watch a new container and gives its events the container's own paths."""
    watched: list[str] = []

    class Watcher(RecordedBackend):
        name = "watcher"
        watches_containers = True

        def watch_container(self, info: ContainerInfo) -> list[str]:
            watched.append(info.full_id)
            return [f"{info.rootfs}/", f"{info.upperdir}/"]

    merged = f"{tmp_path}/merged"
    cg = f"/machine.slice/libpod-{CID}.scope"
    events: list[RawEvent] = [
        {
            "evt.type": "execve",
            "proc.pid": 7,
            "proc.ppid": 1,
            "proc.name": "sh",
            "_cgroup_path": cg,
            "_mntns": 1,
        },
        {"evt.type": "openat", "proc.pid": 7, "fd.name": f"{merged}/etc/shadow", "_cgroup_path": cg},
        {"evt.type": "unlinkat", "proc.pid": 7, "evt.arg.name": f"{tmp_path}/diff/tmp/x", "_cgroup_path": cg},
        {"evt.type": "openat", "proc.pid": 7, "fd.name": "/etc/hosts", "_cgroup_path": cg},
    ]
    sink = Collector()
    runner = SensorRunner(_config(), sink, None, backends=[Watcher(events)], enricher=_enricher(tmp_path))
    _run(runner, lambda: len(sink.events) == 4)
    assert watched == [CID]  # once, for the container's first event
    got = [
        (e.data["container.id"], e.data.get("fd.name") or e.data.get("evt.arg.name")) for e in sink.events[1:]
    ]
    assert got == [(CID[:12], "/etc/shadow"), (CID[:12], "/tmp/x"), (CID[:12], "/etc/hosts")]
    assert not any(k.startswith("_") for e in sink.events for k in e.data)
    assert runner.status()["containers_seen"] == 1


class StalledProcs(RecordedBackend):
    """A causal-first backend whose reader never wakes: its events arrive only because the other
    backend's reader drains it before queueing a batch of its own."""

    name = "procs"
    causal_first = True

    def __init__(self) -> None:
        super().__init__()
        self._never: tuple[int, ...] = os.pipe()

    def fileno(self) -> int:
        return self._never[0]

    def close(self) -> None:
        super().close()
        for fd in self._never:
            os.close(fd)
        self._never = (-1,)


def _count(sink: Collector, n: int) -> Callable[[], bool]:
    return lambda: len(sink.events) == n


def test_process_events_are_queued_before_the_batch_that_follows_them(tmp_path: Path) -> None:
    procs = StalledProcs()
    files = RecordedBackend()
    sink = Collector()
    runner = SensorRunner(_config(), sink, None, backends=[procs, files], enricher=_enricher(tmp_path))
    runner.start()
    try:
        for i in range(3):
            procs.feed([{"evt.type": "execve", "proc.pid": 100 + i, "proc.ppid": 1, "proc.name": f"p{i}"}])
            files.feed([{"evt.type": "openat", "proc.pid": 100 + i, "fd.name": f"/f{i}"}])
            _wait(_count(sink, 2 * (i + 1)))
    finally:
        runner.close()
    order = [(e.data["evt.type"], e.data["proc.pid"]) for e in sink.events]
    assert order == [(t, 100 + i) for i in range(3) for t in ("execve", "openat")]
    # each open is enriched with the program its process had just exec'd
    assert [e.data["proc.name"] for e in sink.events if e.data["evt.type"] == "openat"] == ["p0", "p1", "p2"]


def test_lost_events_become_an_alert() -> None:
    rec = RecordedBackend()
    sink = Collector()
    runner = SensorRunner(_config(), sink, {"execve"}, backends=[rec])
    runner.start()
    try:
        rec.stats.lost["netlink_enobufs"] += 7  # what a backend does when the kernel drops
        runner.check_loss()
        runner.check_loss()  # reported once, not again
        rec.stats.lost["netlink_enobufs"] += 2
    finally:
        runner.close()  # raises the last losses
    losses = [a for a in sink.alerts if a.rule == LOSS_RULE]
    assert [(a.output_fields["sensor.lost"], a.output_fields["sensor.lost_total"]) for a in losses] == [
        (7, 7),
        (2, 9),
    ]
    assert losses[0].priority == "Critical" and losses[0].output_fields["sensor.backend"] == "recorded"
    assert runner.status()["lost_total"] == 9


def test_an_event_that_fails_is_counted_and_the_sensor_goes_on(tmp_path: Path) -> None:
    """Enrichment or the pipeline failing on one event must not stop the consumer thread: the
    failure is counted in status()["event_errors"] and the next events still arrive."""

    class Failing(Collector):
        def handle(self, ev: Event) -> list[Alert]:
            if ev.data.get("boom"):
                raise ValueError("bad event")
            return super().handle(ev)

    events: list[RawEvent] = [
        {"evt.type": "execve", "proc.pid": 5, "boom": True},
        {"evt.type": "execve", "proc.pid": 5, "n": 1},
        {"evt.type": "execve", "proc.pid": 5, "n": 2},
    ]
    sink = Failing()
    runner = SensorRunner(
        _config(), sink, {"execve"}, backends=[RecordedBackend(events)], enricher=_enricher(tmp_path)
    )
    _run(runner, lambda: len(sink.events) == 2)
    assert [e.data.get("n") for e in sink.events] == [1, 2]
    st = runner.status()["event_errors"]
    assert st["total"] == 1 and "ValueError: bad event" in st["last"][0]


def test_a_backend_that_fails_to_read_is_counted_and_read_again(tmp_path: Path) -> None:
    class Flaky(RecordedBackend):
        failures = 2

        def poll(self, timeout_s: float = 0.1) -> list[RawEvent]:
            if Flaky.failures:
                Flaky.failures -= 1
                raise OSError("device busy")
            return super().poll(timeout_s)

    sink = Collector()
    flaky = Flaky([{"evt.type": "execve", "proc.pid": 9}])
    _run(
        SensorRunner(_config(), sink, None, backends=[flaky], enricher=_enricher(tmp_path)),
        lambda: bool(sink.events),
    )
    assert flaky.stats.errors == 2 and flaky.stats.last_errors[0] == "poll: OSError: device busy"


def test_failed_calls_no_rule_reads_are_dropped_by_a_prefiltering_backend(tmp_path: Path) -> None:
    class Prefiltering(RecordedBackend):
        name = "prefiltering"
        prefilters_failed = True

        @staticmethod
        def probe() -> Capabilities:
            return Capabilities("prefiltering", True, "", frozenset({"openat", "execve", "connect"}))

    rules = tmp_path / "rules.yaml"
    rules.write_text(
        textwrap.dedent(
            """
            - rule: Read
              desc: d
              condition: evt.type = openat and fd.num >= 0 and fd.name = /etc/shadow
              output: "%fd.name"
              priority: WARNING
            """
        )
    )
    cfg = load_config(None, {"engine": {"falco_rules_paths": [], "builtin_rules": False}}, environ={})
    engine, _ = build_engine(cfg, [str(rules)], rule_matching="all")

    class WithEngine(Collector):
        def __init__(self) -> None:
            super().__init__()
            self.engine = engine

    runner = SensorRunner(cfg, WithEngine(), engine.evttypes("syscall"), backends=[Prefiltering()])
    # only successful opens can match; connect is followed by no rule, execve by the process table
    assert runner.drop_failed == frozenset({"openat", "execve"})
    off = load_config(None, {"sensor": {"kernel_prefilter": False}}, environ={})
    assert SensorRunner(off, WithEngine(), None, backends=[Prefiltering()]).drop_failed == frozenset()
    assert SensorRunner(cfg, WithEngine(), None, backends=[RecordedBackend()]).drop_failed == frozenset()


def test_backends_given_twice_under_one_name_are_refused() -> None:
    with pytest.raises(SensorError, match="two backends given under one name"):
        SensorRunner(_config(), Collector(), None, backends=[RecordedBackend(), RecordedBackend()])


# -- the real fallback backends (root) --------------------------------------------------------------


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


class _Gated(Collector):
    """A pipeline that holds every event until its gate opens (a consumer that cannot keep up)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def handle(self, event: Event) -> list[Alert]:
        self.gate.wait(30)
        return super().handle(event)


def test_the_queue_is_bounded_by_events_and_what_overflows_is_counted_and_alerted() -> None:
    """A consumer that cannot keep up: the readers' queue holds at most sensor.queue_events events
    (memory stays bounded), a batch that finds no room within a second is lost, counted exactly
    (received + lost = sent) and raised as a loss alert."""
    rec = RecordedBackend()
    rec.max_batch = 1000
    sink = _Gated()
    runner = SensorRunner(_config(queue_events=2048), sink, {"openat"}, backends=[rec])
    runner.start()
    peak = 0
    try:
        sent = 0
        for b in range(6):
            rec.feed([{"evt.type": "openat", "proc.pid": 7, "fd.name": f"/f{b}.{i}"} for i in range(1000)])
            sent += 1000
            deadline = time.monotonic() + 5
            while rec.stats.events < sent and time.monotonic() < deadline:  # the reader took it
                peak = max(peak, runner.queued_events)
                time.sleep(0.01)
        _wait(lambda: runner.queue_drops > 0, timeout=10)
        peak = max(peak, runner.queued_events)
        assert peak <= 2048
        sink.gate.set()
        _wait(lambda: len(sink.events) + runner.queue_drops == sent)
        runner.check_loss()
    finally:
        sink.gate.set()
        runner.close()
    lost = rec.stats.lost["agent_queue_full"]
    assert lost == runner.queue_drops > 0 and len(sink.events) + lost == sent
    losses = [a for a in sink.alerts if a.rule == LOSS_RULE]
    assert sum(a.output_fields["sensor.lost"] for a in losses) == lost
    assert {a.output_fields["sensor.cause"] for a in losses} == {"agent_queue_full"}
