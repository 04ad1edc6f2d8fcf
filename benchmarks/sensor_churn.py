"""Process churn through the agent: its memory and its losses under short-lived processes, against
this machine's own process rate measured in the same run (root; the eBPF program must be built:
scripts/build-bpf.sh; gcc builds the generator).

    sudo .venv/bin/python benchmarks/sensor_churn.py [--quick] [--json] [--rate R] [--seconds S]
                                                    [--exec-every K] [--inflight J] [--loaded]

The load is tests/sensor/tools/stk_churn.c (built with gcc -O2 -static into a temporary directory;
the churn test uses the same program): each operation is one process, a fork whose child exits at
once, one in `--exec-every` (50) after executing /bin/true; at most `--inflight` (4) children
alive at a time; paced in 1 ms slices as benchmarks/loadgen.py paces.

1. **machine alone** (no sensor), at full speed, twice before the agent runs and once after (the
   best run counts): fork + exit (no exec), the run's mix, and fork + exec of /bin/true for every
   process: the machine's own short-lived process rates.
2. **agent**: what ``stockade up`` runs (:class:`stockade.runtime.service.Runtime` with the eBPF
   sensor, enrichment, the default rules, the pipeline and its SQLite store) while the generator
   offers `--rate` (10,000) processes/s for `--seconds` (60; ``--quick``: 15). Every 0.5 s: this
   process's RSS, the process table's size (and the displaced ancestors it holds for their
   children), the decoder's per-process table, the agent's queue. After the load, the agent is
   given until every exit arrived (or none came for 2 s).
   ``--loaded``: a busy loop on every core while the generator runs.

Reported: the rate reached (x the machine alone), the agent's RSS (start, peak, end), the table's
peak, CPU per 1,000 events/s (the agent's CPU seconds per second over thousands of events per second
it handled: all of the machine's, not only the churn's), events received, the churn's exits
received against the processes made, lost per cause (the kernel's ring-buffer and in-flight
counters, the agent's queue, undecodable records, events that failed) and **missing** (neither
received nor counted: must be 0). With pid_max at 32,768 the pids wrap every few seconds, which
bounds the table below its cap (65,536) here; the table's own bound is tested with a wider pid space
in tests/sensor/test_proctable.py.

Progress goes to stderr; the table to stdout (``--json``: everything). About 80 s; ``--quick``
about 25 s.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import harness

from stockade.config import load_config
from stockade.model.alert import Alert
from stockade.model.event import Event
from stockade.runtime.sensing import SensorPipeline
from stockade.runtime.service import Runtime
from stockade.sensor.ebpf.backend import EbpfBackend

NAME = "sensor_churn"
TOOL = harness.REPO / "tests" / "sensor" / "tools" / "stk_churn.c"
FORKS = frozenset({"clone", "clone3", "fork", "vfork"})
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE_KB


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def build(workdir: Path) -> Path:
    """The generator, compiled for this machine."""
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise SystemExit(f"{NAME}: needs gcc to build {TOOL}")
    out = workdir / "stk-churn"
    subprocess.run([cc, "-O2", "-static", "-o", str(out), str(TOOL)], check=True)
    return out


class Generator:
    """stk-churn runs, one at a time, with a progress counter shared through a file."""

    def __init__(self, tool: Path, workdir: Path, inflight: int) -> None:
        self.tool, self.inflight = tool, inflight
        progress = workdir / "progress"
        progress.write_bytes(bytes(8))
        with progress.open("r+b") as f:
            self._mm = mmap.mmap(f.fileno(), 8)
        self._progress = progress

    def made(self) -> int:
        """Processes made so far by the running generator."""
        return int.from_bytes(self._mm[:8], "little")

    def start(self, rate: float, seconds: float, exec_every: int) -> subprocess.Popen[bytes]:
        self._mm[:8] = bytes(8)
        cmd = [
            str(self.tool),
            "--rate",
            str(rate),
            "--seconds",
            str(seconds),
            "--exec-every",
            str(exec_every),
        ]
        cmd += ["--inflight", str(self.inflight), "--progress", str(self._progress), "--marker", NAME]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
        assert p.stdout is not None
        if p.stdout.readline() != b"go\n":
            raise SystemExit(f"{NAME}: the generator did not start: {' '.join(cmd)}")
        return p

    @staticmethod
    def result(p: subprocess.Popen[bytes]) -> dict[str, Any]:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"{NAME}: the generator failed ({p.returncode})")
        res: dict[str, Any] = json.loads(out.splitlines()[-1])
        return res

    def alone(self, seconds: float, exec_every: int) -> float:
        """Processes per second at full speed, with nothing else of ours running."""
        r = self.result(self.start(0, seconds, exec_every))
        return float(r["ops"] / r["wall_s"])

    def close(self) -> None:
        self._mm.close()


class Counted:
    """The runtime's pipeline, counting the churn's forks and exits (its children's) on the way in."""

    def __init__(self, inner: SensorPipeline) -> None:
        self.inner = inner
        self.parent = -1
        self.forks = self.exits = 0

    def handle(self, event: Event) -> object:
        d = event.data
        if d.get("proc.ppid") == self.parent:
            if d["evt.type"] == "procexit":
                self.exits += 1
            elif d["evt.type"] in FORKS:
                self.forks += 1
        return self.inner.handle(event)

    def ingest_alerts(self, alerts: list[Alert]) -> int:
        return self.inner.ingest_alerts(alerts)


@dataclass
class Memory:
    """Samples of the agent's memory, every 0.5 s."""

    rss_kb: list[int] = field(default_factory=list)
    table: list[int] = field(default_factory=list)
    displaced: list[int] = field(default_factory=list)
    decoder: list[int] = field(default_factory=list)
    queued: list[int] = field(default_factory=list)


class Agent:
    """What `stockade up` runs, with the churn's events counted."""

    def __init__(self, data_dir: Path) -> None:
        cfg = load_config(None, {"data_dir": str(data_dir), "sensor": {"backend": "ebpf"}}, environ={})
        self.runtime = Runtime(cfg, role="up", sensor=True)
        runner = self.runtime.sensor
        assert runner is not None and runner.enricher is not None
        self.runner, self.enricher = runner, runner.enricher
        self.counted = Counted(runner.pipeline)
        runner.pipeline = self.counted
        self.runtime.start()
        backend = runner.backends["ebpf"]
        assert isinstance(backend, EbpfBackend)
        self.backend = backend

    def lost(self) -> dict[str, int]:
        """Events not evaluated, by cause, since start."""
        stats = self.backend.refresh_stats()
        out = dict(stats.lost)
        out["undecodable"] = self.backend.undecodable
        out["event_errors"] = self.runner.consume_errors.total
        return out

    def sample(self, m: Memory) -> None:
        m.rss_kb.append(_rss_kb())
        m.table.append(len(self.enricher.table))
        m.displaced.append(self.enricher.table.displaced)
        dec = self.backend._decoder
        m.decoder.append(len(dec.procs) if dec is not None else 0)
        m.queued.append(self.runner.queued_events)

    def close(self) -> None:
        self.runtime.close()


@dataclass
class Run:
    """The agent under churn."""

    offered_per_s: float
    seconds: float
    exec_every: int
    loaded: bool
    made: int = 0
    execs: int = 0
    reached_per_s: float = 0.0
    exits_received: int = 0
    forks_received: int = 0
    events: int = 0
    events_per_s: float = 0.0
    cpu_share: float = 0.0
    cpu_per_1k_eps: float = 0.0
    lost: dict[str, int] = field(default_factory=dict)
    missing: int = 0
    rss_start_mb: float = 0.0
    rss_peak_mb: float = 0.0
    rss_end_mb: float = 0.0
    table_peak: int = 0
    table_end: int = 0
    table_cap: int = 0
    displaced_peak: int = 0
    decoder_peak: int = 0
    queue_peak: int = 0
    table_stats: dict[str, int] = field(default_factory=dict)
    #: processes made per second, second by second
    per_second: list[int] = field(default_factory=list)


def _settle(a: Agent, made: int) -> None:
    seen, since, end = -1, time.monotonic(), time.monotonic() + 60
    while a.counted.exits < made and time.monotonic() - since < 2.0 and time.monotonic() < end:
        if a.counted.exits != seen:
            seen, since = a.counted.exits, time.monotonic()
        time.sleep(0.05)


def _sample_while(p: subprocess.Popen[bytes], a: Agent, gen: Generator, m: Memory, run: Run) -> None:
    """Sample memory every 0.5 s and the generator's progress every second until it ends."""
    last, next_s = 0, time.monotonic() + 1.0
    while p.poll() is None:
        time.sleep(0.5)
        a.sample(m)
        if time.monotonic() >= next_s:
            next_s += 1.0
            now = gen.made()
            run.per_second.append(now - last)
            last = now
            if len(run.per_second) % 5 == 0:
                print(f"  {now:,} processes, RSS {m.rss_kb[-1] / 1024:.0f} MB", file=sys.stderr, flush=True)


def churn(a: Agent, gen: Generator, run: Run) -> None:
    """The agent while the generator offers the run's rate."""
    m = Memory()
    a.sample(m)
    lost0, events0 = a.lost(), a.runner.events
    hogs: list[subprocess.Popen[bytes]] = []
    if run.loaded:
        hogs = [
            subprocess.Popen(["/bin/sh", "-c", "while :; do :; done"]) for _ in range(os.cpu_count() or 1)
        ]
    try:
        c0, t0 = _cpu(), time.perf_counter()
        p = gen.start(run.offered_per_s, run.seconds, run.exec_every)
        a.counted.parent = p.pid
        _sample_while(p, a, gen, m, run)
        r = gen.result(p)
        _settle(a, r["ops"])
        cpu, wall = _cpu() - c0, time.perf_counter() - t0
    finally:
        for h in hogs:
            h.kill()
            h.wait()
    a.sample(m)
    run.made, run.execs, run.reached_per_s = r["ops"], r["execs"], r["ops"] / r["wall_s"]
    run.exits_received, run.forks_received = a.counted.exits, a.counted.forks
    run.events = a.runner.events - events0
    run.events_per_s = run.events / wall
    run.cpu_share = cpu / wall
    run.cpu_per_1k_eps = run.cpu_share / (run.events_per_s / 1000) if run.events else 0.0
    run.lost = {k: v - lost0.get(k, 0) for k, v in a.lost().items() if v - lost0.get(k, 0)}
    run.missing = max(run.made - run.exits_received - sum(run.lost.values()), 0)
    run.rss_start_mb, run.rss_peak_mb, run.rss_end_mb = (
        x / 1024 for x in (m.rss_kb[0], max(m.rss_kb), m.rss_kb[-1])
    )
    run.table_peak, run.table_end, run.table_cap = max(m.table), m.table[-1], a.enricher.table.max_entries
    run.displaced_peak, run.decoder_peak, run.queue_peak = max(m.displaced), max(m.decoder), max(m.queued)
    run.table_stats = dict(a.enricher.table.stats)


@dataclass
class Findings:
    """What a run measured: the machine alone (each kind's runs, per second) and the agent."""

    machine: dict[str, list[float]]
    run: Run
    machine_info: dict[str, Any]
    seconds: float = 0.0

    def best(self, kind: str) -> float:
        return max(self.machine[kind])


def _alone(gen: Generator, f: dict[str, list[float]], seconds: float, exec_every: int) -> None:
    for kind, k in (("fork", 0), ("mix", exec_every), ("fork_exec", 1)):
        f[kind].append(gen.alone(seconds, k))
        print(f"  machine alone, {kind}: {f[kind][-1]:,.0f}/s", file=sys.stderr)


def measure(args: argparse.Namespace) -> Findings:
    t_start = time.monotonic()
    seconds = args.seconds or (15.0 if args.quick else 60.0)
    base_s = 1.0 if args.quick else 2.0
    work = Path(tempfile.mkdtemp(prefix="stockade-bench-churn-"))
    machine: dict[str, list[float]] = {"fork": [], "mix": [], "fork_exec": []}
    run = Run(args.rate, seconds, args.exec_every, args.loaded)
    try:
        gen = Generator(build(work), work, args.inflight)
        try:
            for _ in range(2):
                _alone(gen, machine, base_s, args.exec_every)
            agent = Agent(work / "data")
            try:
                time.sleep(1.0)  # the agent's start-up scan and the machine's own events settle
                churn(agent, gen, run)
            finally:
                agent.close()
            _alone(gen, machine, base_s, args.exec_every)
        finally:
            gen.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return Findings(machine, run, harness.machine_info(), round(time.monotonic() - t_start, 1))


def report(f: Findings) -> None:
    r = f.run
    mix = f.best("mix")
    print(
        f"machine alone (no sensor, best of {len(f.machine['fork'])}): {f.best('fork'):,.0f} fork+exit/s, "
        f"{mix:,.0f}/s of the mix (1 in {r.exec_every} execs /bin/true), {f.best('fork_exec'):,.0f} fork+exec/s"
    )
    load = " with a busy loop on every core" if r.loaded else ""
    print(
        f"agent under churn{load}: offered {r.offered_per_s:,.0f}/s for {r.seconds:.0f} s, reached "
        f"{r.reached_per_s:,.0f}/s ({r.reached_per_s / mix:.2f} x the machine's mix rate): {r.made:,} processes, "
        f"{r.execs:,} of them exec'd"
    )
    print(
        f"  RSS {r.rss_start_mb:.0f} MB at start, {r.rss_peak_mb:.0f} MB peak, {r.rss_end_mb:.0f} MB at the end; "
        f"process table peak {r.table_peak:,} (cap {r.table_cap:,}; {r.displaced_peak} displaced ancestors "
        f"held at most), {r.table_end:,} at the end; decoder's processes peak {r.decoder_peak:,}; "
        f"agent queue peak {r.queue_peak:,} events"
    )
    print(
        f"  events {r.events:,} ({r.events_per_s:,.0f}/s, the whole machine's) at {r.cpu_share:.2f} core: "
        f"{r.cpu_per_1k_eps:.4f} core per 1,000 events/s ({r.cpu_per_1k_eps * 1000:.1f} us/event)"
    )
    lost = ", ".join(f"{k} {v:,}" for k, v in r.lost.items()) or "none"
    print(
        f"  churn exits received {r.exits_received:,} of {r.made:,} (forks {r.forks_received:,}); lost: {lost}; "
        f"missing (neither received nor counted) {r.missing:,}"
    )
    print(f"  table: {r.table_stats}")
    print(f"  processes made per second: {r.per_second}")
    print(f"({f.seconds} s; {f.machine_info['nproc']} CPUs, load {f.machine_info['loadavg']})")


def main() -> int:
    """Measure and print (module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="15 s of churn instead of 60")
    ap.add_argument("--rate", type=float, default=10_000, help="processes offered per second (10,000)")
    ap.add_argument("--seconds", type=float, default=None, help="how long the churn lasts (60; --quick 15)")
    ap.add_argument("--exec-every", type=int, default=50, help="one process in K executes /bin/true (50)")
    ap.add_argument("--inflight", type=int, default=4, help="children alive at a time at most (4)")
    ap.add_argument("--loaded", action="store_true", help="a busy loop on every core during the churn")
    got = harness.sensor_args(ap, NAME, ebpf=True)
    if got is None:
        return 2
    f = measure(got[0])
    if got[0].json:
        harness.print_json({**asdict(f), "best": {k: f.best(k) for k in f.machine}})
    else:
        report(f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
