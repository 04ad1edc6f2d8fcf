"""eBPF sensor under load: the highest sustained rate without loss and the sensor's CPU per 1,000
events/s, against this machine's own open and spawn rates measured in the same run (root; the eBPF
program must be built: scripts/build-bpf.sh).

    .venv/bin/python benchmarks/sensor_ebpf.py --sustained [--quick] [--json]
    .venv/bin/python benchmarks/sensor_ebpf.py [--opens N] [--execs N] [--json]   # bursts only

The load comes from benchmarks/loadgen.py, a separate process, so that the sensor's CPU (this
process's user + sys time, all threads) is measured apart from the load's:

* **opens**: open(2) + close(2) of 100 files in a fresh directory per step;
* **execs**: ``/bin/true MARKER`` spawned (clone + execve) and reaped one at a time; each exec is also
  a fork, an exit and the opens of the dynamic loader, so the sensor sees several events per exec.

1. **baseline**: the load generator at full speed with no sensor, twice before the sensors run and
   once after; the best run is the machine's own opens/s and execs/s (and the generator's CPU per
   operation).
2. **sustained** (``--sustained``), for two sensors in turn:
   * ``agent``: what ``stockade up`` runs (:class:`stockade.runtime.service.Runtime` with the sensor:
     eBPF backend, enrichment with the process table and containers, the engine with the default
     rules, the pipeline with its SQLite store);
   * ``backend``: the bare :class:`EbpfBackend`, polled and decoded in a thread of this process;
   both following the event types the default rules need plus the process events. The generator
   offers a fixed rate for a few seconds per step (4 s; ``--quick``: 1.5 s), stepping up (opens 5k,
   10k, 20k, ... /s; execs 200, 500, 1,000, ... /s) until a step fails, then bisecting twice
   between the last good and the first bad rate (``--refine``; none with ``--quick``). A step
   **holds** when the lost counters did not move (ring buffer full and in-flight table full,
   counted in the kernel per CPU; the agent's queue), every operation of the step arrived (matched
   by its file prefix or exec marker), and the sensor had all of it at most 0.1 x the step's length
   after the load ended: a rate the sensor only absorbs by queueing does not hold (a step whose
   sensor falls more than max(1 s, 0.1 x the step) of load behind is cut short). The highest step that holds is the **highest
   sustained rate without loss**; if the generator itself could not reach the rate offered, the
   figure is a lower bound. CPU per 1,000 events/s = the sensor's CPU seconds per second of the
   step divided by thousands of events per second it handled (every event it decoded, the load's
   and the rest of the machine's).
3. **bursts**: ``--opens`` opens and ``--execs`` execs at full speed through the agent (100,000 and
   10,000; ``--quick``: 20,000 and 1,000): received, lost (counted), missing (neither received nor
   counted: must be 0).

Progress goes to stderr; the table and the summary to stdout at the end (``--json``: everything).
``--quick`` finishes in about 30 s; the full run in about 2 minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import mmap
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import harness

from stockade.config import load_config
from stockade.model.event import Event
from stockade.runtime.service import Runtime
from stockade.sensor.ebpf.backend import EbpfBackend

NAME = "sensor_ebpf"

LOADGEN = Path(__file__).resolve().parent / "loadgen.py"
OPEN_TYPES = frozenset({"open", "openat", "openat2"})
OPEN_RATES = (5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 640_000)
EXEC_RATES = (200, 500, 1_000, 2_000, 4_000)
#: a step holds if the sensor had every event at most this share of the step's length after the load
MAX_LAG_SHARE = 0.1
#: the generator reached less than this share of the offered rate: its ceiling here (the machine's,
#: or the machine's with the sensor running), not the sensor's
CEILING_SHARE = 0.9
_U64 = struct.Struct("<Q")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Matcher:
    """Counts the events of the current step's load: opens of files below the directory `key`, or
    execs whose arguments are the marker `key`."""

    def __init__(self) -> None:
        self.kind = "open"
        self.key = "\0"
        self.n = 0

    def set(self, kind: str, key: str) -> None:
        self.kind, self.key = kind, key

    def __call__(self, data: dict[str, Any]) -> None:
        if self.kind == "open":
            name = data.get("fd.name")
            if name.__class__ is str and name.startswith(self.key) and data["evt.type"] in OPEN_TYPES:
                self.n += 1
        elif data.get("proc.args") == self.key and data["evt.type"] == "execve":
            self.n += 1


class BareSensor:
    """The eBPF backend alone, decoded in a reader thread."""

    name = "backend"

    def __init__(self, evttypes: set[str]) -> None:
        self.match = Matcher()
        self.backend = EbpfBackend()
        self.backend.start(evttypes)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._read, name="bench-reader", daemon=True)
        self._t.start()

    def _read(self) -> None:
        b, match = self.backend, self.match
        while not self._stop.is_set():
            for e in b.poll(0.2):
                match(e)

    @property
    def events(self) -> int:
        return int(self.backend.stats.events)

    def lost(self) -> int:
        return sum(self.backend.refresh_stats().lost.values())

    def close(self) -> None:
        self._stop.set()
        self._t.join(5)
        self.backend.close()


class _CountingPipeline:
    """The runtime's pipeline, counting the load's events on their way in."""

    def __init__(self, inner: Any, match: Matcher) -> None:
        self._inner = inner
        self._match = match

    def handle(self, event: Event) -> Any:
        self._match(event.data)
        return self._inner.handle(event)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class AgentSensor:
    """What `stockade up` runs: Runtime with its sensor (eBPF), default rules, SQLite store."""

    name = "agent"

    def __init__(self, data_dir: str) -> None:
        self.match = Matcher()
        cfg = load_config(None, {"data_dir": data_dir, "sensor": {"backend": "ebpf"}}, environ={})
        self.runtime = Runtime(cfg, role="up", sensor=True)
        runner = self.runtime.sensor
        assert runner is not None
        self.runner = runner
        runner.pipeline = _CountingPipeline(runner.pipeline, self.match)
        self.runtime.start()
        backend = runner.backends["ebpf"]
        assert isinstance(backend, EbpfBackend)
        self.backend = backend

    @property
    def events(self) -> int:
        return int(self.runner.events)

    def lost(self) -> int:
        self.backend.refresh_stats()
        return int(self.runner.status()["lost_total"])

    def rules(self) -> int:
        return int(self.runtime.engine.active_rules)

    def close(self) -> None:
        self.runtime.close()


Sensor = BareSensor | AgentSensor


# -- the load ------------------------------------------------------------------------------------


class Workdir:
    """The benchmark's temporary directory: the file trees, the SQLite store, the progress counter."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="stockade-bench-ebpf-"))
        self.progress = self.root / "progress"
        self.progress.write_bytes(b"\0" * 8)
        fd = os.open(self.progress, os.O_RDWR)
        try:
            self._mm = mmap.mmap(fd, 8)
        finally:
            os.close(fd)
        self._seq = 0

    def done_so_far(self) -> int:
        return int(_U64.unpack_from(self._mm, 0)[0])

    def fresh_key(self, kind: str) -> str:
        """A new file tree (opens) or marker (execs), so each step counts only its own events."""
        self._seq += 1
        if kind == "exec":
            return f"stockade-bench-{os.getpid()}-{self._seq}"
        d = self.root / f"t{self._seq}"
        d.mkdir()
        for i in range(100):
            (d / f"f{i}").write_bytes(b"x")
        return str(d) + "/"

    def command(self, kind: str, key: str, rate: float, seconds: float, count: int | None) -> list[str]:
        self._mm[:8] = b"\0" * 8
        cmd = [sys.executable, str(LOADGEN), kind, "--rate", str(rate), "--progress", str(self.progress)]
        cmd += ["--dir", key.rstrip("/")] if kind == "open" else ["--marker", key]
        cmd += ["--count", str(count)] if count is not None else ["--seconds", str(seconds)]
        return cmd

    def close(self) -> None:
        self._mm.close()
        shutil.rmtree(self.root, ignore_errors=True)


def _run_gen(
    cmd: list[str], on_go: Callable[[], None] | None = None, during: Callable[[], bool] | None = None
) -> dict[str, Any] | None:
    """Run the generator: `on_go` when its loop starts; `during` every 50 ms, and it may stop the
    generator (returns False: None is returned)."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    p.stdout.readline()  # "go"
    if on_go is not None:
        on_go()
    while p.poll() is None:
        time.sleep(0.05)
        if during is not None and not during():
            p.kill()
            p.wait()
            return None
    out = p.stdout.read().strip().splitlines()
    if p.returncode != 0 or not out:
        raise SystemExit(f"load generator failed ({p.returncode}): {' '.join(cmd)}")
    res: dict[str, Any] = json.loads(out[-1])
    return res


def baseline(wd: Workdir, kind: str, seconds: float) -> dict[str, float]:
    key = wd.fresh_key(kind)
    r = _run_gen(wd.command(kind, key, 0, seconds, None))
    assert r is not None
    return {"ops_per_s": r["ops"] / r["wall_s"], "gen_cpu_us_per_op": r["cpu_s"] / r["ops"] * 1e6}


@dataclass(slots=True)
class Step:
    sensor: str
    kind: str
    offered_per_s: float
    achieved_per_s: float
    ops: int
    received: int
    lost: int
    missing: int
    lag_s: float
    events: int
    events_per_s: float
    sensor_cpu_share: float
    cpu_per_1k_eps: float
    gen_cpu_us_per_op: float
    aborted: bool
    holds: bool
    ceiling: bool


def run_step(
    s: Sensor, wd: Workdir, kind: str, rate: float, seconds: float, count: int | None = None
) -> Step:
    key = wd.fresh_key(kind)
    s.match.set(kind, key)
    time.sleep(0.2)  # let the sensor settle (the tree's creation, the previous step)
    m0, l0 = s.match.n, s.lost()
    mark: list[float] = []  # CPU, events and time when the load starts

    def go() -> None:
        mark.extend((_cpu(), float(s.events), time.perf_counter()))

    max_behind = (rate or 1e5) * max(1.0, MAX_LAG_SHARE * seconds)

    def keeping_up() -> bool:
        return wd.done_so_far() - (s.match.n - m0) <= max_behind or count is not None

    gen = _run_gen(wd.command(kind, key, rate, seconds, count), go, keeping_up)
    t_end = time.perf_counter()
    ops = gen["ops"] if gen is not None else wd.done_so_far()
    # wait until every operation arrived, or nothing more came for a second
    last, last_t, lag = -1, t_end, 0.0
    while True:
        got = s.match.n - m0
        now = time.perf_counter()
        if got >= ops:
            lag = now - t_end
            break
        if got != last:
            last, last_t = got, now
        elif now - last_t > 1.0 or now - t_end > 60:
            lag = last_t - t_end
            break
        time.sleep(0.01)
    c0, e0, w0 = mark
    wall, cpu, events = time.perf_counter() - w0, _cpu() - c0, s.events - int(e0)
    time.sleep(0.1)  # the kernel's loss counters, and the stragglers of the load
    received = s.match.n - m0
    lost = s.lost() - l0
    gen_wall = gen["wall_s"] if gen is not None else t_end - w0
    achieved = ops / gen_wall if gen_wall > 0 else 0.0
    aborted = gen is None
    missing = max(ops - received - lost, 0)
    holds = not aborted and lost == 0 and received >= ops and lag <= MAX_LAG_SHARE * gen_wall
    return Step(
        sensor=s.name,
        kind=kind,
        offered_per_s=rate,
        achieved_per_s=achieved,
        ops=ops,
        received=received,
        lost=lost,
        missing=missing,
        lag_s=lag,
        events=events,
        events_per_s=events / wall,
        sensor_cpu_share=cpu / wall,
        cpu_per_1k_eps=(cpu / wall) / (events / wall / 1000) if events else math.nan,
        gen_cpu_us_per_op=(gen["cpu_s"] / ops * 1e6) if gen is not None and ops else math.nan,
        aborted=aborted,
        holds=holds,
        ceiling=bool(rate) and achieved < CEILING_SHARE * rate,
    )


def search(
    s: Sensor, wd: Workdir, kind: str, rates: tuple[int, ...], seconds: float, refine: int, log: Any
) -> tuple[list[Step], Step | None]:
    """Step up through `rates` until a step fails, then bisect `refine` times: (steps, best step)."""
    steps: list[Step] = []
    best: Step | None = None
    bad: float | None = None
    for r in rates:
        st = run_step(s, wd, kind, r, seconds)
        steps.append(st)
        log(st)
        if not st.holds:
            bad = r
            break
        best = st
        if st.ceiling:
            break  # the machine cannot offer more
    for _ in range(refine):
        if best is None or bad is None or bad / best.offered_per_s < 1.15:
            break
        mid = round(math.sqrt(best.offered_per_s * bad), -2 if kind == "open" else 1)
        st = run_step(s, wd, kind, mid, seconds)
        steps.append(st)
        log(st)
        if st.holds:
            best = st
        else:
            bad = mid
    return steps, best


# -- reporting -----------------------------------------------------------------------------------

_HEAD = (
    f"{'sensor':8} {'load':5} {'offered/s':>10} {'reached/s':>10} {'x machine':>9} {'ops':>9} "
    f"{'received':>9} {'lost':>7} {'missing':>7} {'lag s':>6} {'events/s':>9} {'cpu':>5} "
    f"{'cpu/1k ev/s':>11} {'gen us/op':>9}  holds"
)


def _row(st: Step, machine: float) -> str:
    offered = f"{st.offered_per_s:10,.0f}" if st.offered_per_s else f"{'full':>10}"
    flag = "yes" if st.holds else ("aborted" if st.aborted else "no")
    if not st.offered_per_s:  # a burst: did everything arrive, or is the loss counted?
        flag = "burst: " + (
            "all arrived"
            if st.received >= st.ops
            else f"{st.missing:,} MISSING"
            if st.missing
            else "the rest lost, counted"
        )
    if st.ceiling:
        flag += " (generator ceiling)"
    return (
        f"{st.sensor:8} {st.kind:5} {offered} {st.achieved_per_s:10,.0f} "
        f"{st.achieved_per_s / machine:9.3f} {st.ops:9,} {st.received:9,} {st.lost:7,} "
        f"{st.missing:7,} {st.lag_s:6.2f} {st.events_per_s:9,.0f} {st.sensor_cpu_share:5.2f} "
        f"{st.cpu_per_1k_eps:11.4f} {st.gen_cpu_us_per_op:9.1f}  {flag}"
    )


def _summary(best: dict[str, Step | None], base: dict[str, dict[str, float]]) -> list[str]:
    lines = []
    for key, st in best.items():
        sensor, kind = key.split("/")
        machine = base[kind]["ops_per_s"]
        if st is None:
            lines.append(f"{sensor:8} {kind:5} no step held (the lowest rate already lost or lagged)")
            continue
        bound = ">= " if st.ceiling else ""
        lines.append(
            f"{sensor:8} {kind:5} highest sustained without loss: {bound}{st.achieved_per_s:,.0f} {kind}s/s "
            f"= {st.achieved_per_s / machine:.3f} x the machine's {machine:,.0f}/s; "
            f"{st.events_per_s:,.0f} events/s at {st.sensor_cpu_share:.2f} core, "
            f"{st.cpu_per_1k_eps:.4f} core per 1,000 events/s ({st.cpu_per_1k_eps * 1000:.1f} us/event)"
        )
    return lines


@dataclass
class _Plan:
    """What to run: the rate steps (their length, the bisection), the bursts, which sensors."""

    sustained: bool
    seconds: float
    refine: int
    n_opens: int
    n_execs: int
    sensors: list[str]
    open_rates: tuple[int, ...]
    exec_rates: tuple[int, ...]
    #: how long the machine alone runs each baseline
    base_s: float

    @classmethod
    def of(cls, args: argparse.Namespace) -> _Plan:
        """The plan the command line asks for (``--quick``: shorter steps, fewer rates, smaller bursts)."""
        quick = args.quick
        return cls(
            sustained=args.sustained,
            seconds=args.step_seconds or (1.5 if quick else 4.0),
            refine=args.refine if args.refine is not None else (0 if quick else 2),
            n_opens=args.opens if args.opens is not None else (20_000 if quick else 100_000),
            n_execs=args.execs if args.execs is not None else (1_000 if quick else 10_000),
            sensors=[x.strip() for x in args.sensors.split(",") if x.strip()],
            open_rates=OPEN_RATES[2::2] if quick else OPEN_RATES,
            exec_rates=EXEC_RATES[1::2] if quick else EXEC_RATES,
            base_s=1.0 if quick else 2.0,
        )


@dataclass
class _Findings:
    """What a run measured."""

    steps: list[Step]
    bursts: list[Step]
    best: dict[str, Step | None]
    #: the machine alone, per kind (open, exec), each run
    runs: dict[str, list[dict[str, float]]]
    evttypes: set[str]
    rules_active: int


def _progress(st: Step) -> None:
    verdict = "holds" if st.holds else "lost" if st.lost or st.missing else "lags"
    print(
        f"  {st.sensor} {st.kind} {st.offered_per_s or 'full'} /s: {verdict} "
        f"({st.achieved_per_s:,.0f}/s reached, {st.sensor_cpu_share:.2f} core)",
        file=sys.stderr,
        flush=True,
    )


def _sustained(sensor: Sensor, name: str, wd: Workdir, plan: _Plan, f: _Findings) -> None:
    """The highest sustained open and exec rates of one sensor."""
    for kind, rates in (("open", plan.open_rates), ("exec", plan.exec_rates)):
        ss, f.best[f"{name}/{kind}"] = search(sensor, wd, kind, rates, plan.seconds, plan.refine, _progress)
        f.steps += ss


def _agent(wd: Workdir, plan: _Plan, f: _Findings) -> None:
    """The agent: what it follows, its sustained rates and its bursts."""
    agent = AgentSensor(str(wd.root / "data"))
    f.evttypes = set(agent.backend.evttypes)
    f.rules_active = agent.rules()
    try:
        if "agent" in plan.sensors and plan.sustained:
            _sustained(agent, "agent", wd, plan, f)
        if "agent" in plan.sensors:
            for kind, n in (("open", plan.n_opens), ("exec", plan.n_execs)):
                if n:
                    f.bursts.append(run_step(agent, wd, kind, 0, 0, count=n))
                    _progress(f.bursts[-1])
    finally:
        agent.close()


def _measure(plan: _Plan) -> _Findings:
    f = _Findings([], [], {}, {"open": [], "exec": []}, set(), 0)
    wd = Workdir()
    try:
        for _ in range(2):  # the machine alone, before and (below) after: the best run counts
            for kind in f.runs:
                f.runs[kind].append(baseline(wd, kind, plan.base_s))
        # the agent first: it also says which event types the sensor follows (the bare backend's too)
        _agent(wd, plan, f)
        if "backend" in plan.sensors and plan.sustained:
            bare = BareSensor(f.evttypes)
            try:
                _sustained(bare, "backend", wd, plan, f)
            finally:
                bare.close()
        for kind in f.runs:
            f.runs[kind].append(baseline(wd, kind, plan.base_s))
    finally:
        wd.close()
    return f


def _print_report(out: dict[str, Any], f: _Findings, base: dict[str, dict[str, float]]) -> None:
    runs = f.runs
    print(
        f"machine alone (no sensor, best of {len(runs['open'])} runs): {base['open']['ops_per_s']:,.0f} opens/s "
        f"({base['open']['gen_cpu_us_per_op']:.2f} us CPU each; runs: "
        + ", ".join(f"{r['ops_per_s']:,.0f}" for r in runs["open"])
        + f"), {base['exec']['ops_per_s']:,.0f} execs/s (runs: "
        + ", ".join(f"{r['ops_per_s']:,.0f}" for r in runs["exec"])
        + ")"
    )
    print(_HEAD)
    for st in f.steps + f.bursts:
        print(_row(st, base[st.kind]["ops_per_s"]))
    print()
    for line in _summary(f.best, base):
        print(line)
    print(
        f"({out['rules_active']} rules active; sensor follows {len(f.evttypes)} event types; "
        f"{out['cpus']} CPUs; {out['seconds']} s)\n"
        "x machine = reached rate / the machine's own rate; cpu = sensor CPU seconds per second "
        "(1.0 = one core); cpu/1k ev/s = that per 1,000 events/s handled; lag s = how long after the "
        "load the sensor had all of it; gen us/op = the load generator's own CPU per operation (the "
        "in-kernel probe's cost lands there; paced steps also pay their sleeps)"
    )


def main() -> int:
    """Measure and print (module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sustained", action="store_true", help="find the highest sustained rate without loss")
    ap.add_argument("--quick", action="store_true", help="shorter steps, fewer rates: under a minute")
    ap.add_argument("--step-seconds", type=float, default=None, help="length of one rate step")
    ap.add_argument("--refine", type=int, default=None, help="bisection steps after the first failure")
    ap.add_argument("--sensors", default="backend,agent", help="which sensors: backend, agent")
    ap.add_argument("--opens", type=int, default=None, help="burst of opens at full speed (agent)")
    ap.add_argument("--execs", type=int, default=None, help="burst of execs at full speed (agent)")
    got = harness.sensor_args(ap, NAME, ebpf=True)
    if got is None or got[1] is None:
        return 2
    args = got[0]
    t_start = time.monotonic()
    out: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count()}
    f = _measure(_Plan.of(args))
    base = {k: max(r, key=lambda x: x["ops_per_s"]) for k, r in f.runs.items()}
    out["rules_active"] = f.rules_active
    out["evttypes"] = sorted(f.evttypes)
    out["baseline"] = base
    out["baseline_runs"] = f.runs
    out["steps"] = [asdict(s) for s in f.steps]
    out["bursts"] = [asdict(s) for s in f.bursts]
    out["best"] = {k: (asdict(v) if v is not None else None) for k, v in f.best.items()}
    out["seconds"] = round(time.monotonic() - t_start, 1)
    if args.json:
        harness.print_json(out)
    else:
        _print_report(out, f, base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
