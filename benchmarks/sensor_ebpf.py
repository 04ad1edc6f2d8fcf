"""eBPF sensor under load: the highest sustained rate without loss and the sensor's CPU per 1,000
events/s, for plain opens and for a realistic mix, against this machine's own rate for the same
load measured in the same run (root; the eBPF program must be built: scripts/build-bpf.sh).

    .venv/bin/python benchmarks/sensor_ebpf.py --sustained [--quick] [--compare-filters] [--json]
        [--kernel-filters on|off] [--loads open,mix,absent,exec] [--exec-max E] [--mix-threads N]
    .venv/bin/python benchmarks/sensor_ebpf.py [--opens N] [--execs N] [--json]   # bursts only

The load comes from benchmarks/loadgen.py, a separate process, so that the sensor's CPU (this
process's user + sys time, all threads) is measured apart from the load's:

* **open**: open(2) + close(2) of 100 files in a fresh directory per step;
* **mix**: the engine benchmark's event mix made of real syscalls (loadgen.py's docstring): mostly
  read-only opens of shared libraries, ``/etc`` basics, ``/proc/self/...`` and application files,
  write opens, ``socket`` + ``connect`` + ``accept`` on loopback, ``renameat2``, ``unlinkat``,
  ``dup2``, and execs of ``/bin/true MARKER`` (10 % of the operations up to ``--exec-max`` per second:
  this machine spawns about 1,400/s with a whole core). The generator counts every operation by kind
  and the report says what share each kind really had. It runs in one thread (and one for the
  execs): the load on the core the sensor does not use; ``--mix-threads N`` shares the rate among N
  (a higher ceiling where the sensor needs little of its core: with the kernel's filters on);
* **absent** (``--loads ...,absent``): opens of files that do not exist (they fail), for the kernel's
  failed-call prefilter (``sensor.kernel_prefilter``: dropped when no loaded rule reads failed opens);
* **exec** (``--loads ...,exec``; always in the bursts): ``/bin/true MARKER`` spawned and reaped one at
  a time; each exec is also a fork, an exit and the opens of the dynamic loader.

The rate is in **operations** per second: for the mix, every syscall of its kinds (open, exec,
socket, connect, accept, dup2, unlinkat, renameat2); the close after each open or socket is counted
apart, not as an operation. **Offered events** are the operations whose event type the sensor follows
(with the default rules: not accept, not close): each of them is an event the sensor must deliver
or count. The side events of an exec (the child's fork, loader opens, exit) are not in it.

1. **baseline**: the load generator at full speed with no sensor, twice before the sensors run and
   once after, per load; the best run is the machine's own rate for that load (the mix: with its
   execs at ``--exec-max``), which is also the generator's ceiling.
2. **sustained** (``--sustained``), with the kernel's filters on (``--kernel-filters``, default on;
   ``--compare-filters``: on, then off), for two sensors in turn:
   * ``agent``: what ``stockade up`` runs (:class:`stockade.runtime.service.Runtime` with the sensor:
     eBPF backend, enrichment with the process table and containers, the engine with the default
     rules, the pipeline with its SQLite store);
   * ``backend``: the bare :class:`EbpfBackend` built as the agent builds it (same event types, same
     kernel filters), polled and decoded in a thread of this process.
   Filters off = ``sensor.kernel_prefilter: false`` and, where the configuration has it,
   ``sensor.kernel_interest_filter: false``. The generator offers a fixed rate for a few seconds per
   step (4 s; ``--quick``: 1.5 s), doubling from 10,000/s (if the first step fails, down by 4,
   twice) until a step fails, then bisecting twice (``--refine``; none with ``--quick``). A step
   **holds** when
   * the loss counters did not move (ring buffer full and in-flight table full, counted in the kernel
     per CPU; the agent's queue), and
   * every offered event of the step is accounted for, per kind: received (an event of the
     generator's process, by ``proc.pid``, since the step started, or the ``execve`` of the step's
     marker) or dropped on purpose by a kernel filter (``stats.filtered[<type>]``: its increase over
     the step, machine-wide, so other processes' filtered calls count too): received + filtered >=
     offered for each kind, and
   * the sensor had all of it at most 0.1 x the step's length after the load ended: a rate the
     sensor only absorbs by queueing does not hold (a step whose sensor falls more than
     max(1 s, 0.1 x the step) of load behind is cut short).
   After each step the benchmark waits until the sensor has every offered event or has caught up
   with the load's end (it handled an event stamped 50 ms after it: what has not arrived then is
   lost or missing), at most 60 s, so that no step inherits the previous one's backlog and
   "missing" means missing. The highest step that holds is the **highest sustained rate without
   loss**; if the generator itself could not reach the rate offered, the figure is a lower bound.
3. **bursts**: ``--opens`` opens and ``--execs`` execs at full speed through the agent (100,000 and
   10,000; ``--quick``: 20,000 and 1,000), first filter setting only: received, filtered, lost per
   cause, missing (neither received, filtered nor counted lost: must be 0).

**CPU per 1,000 events/s**: the sensor's CPU seconds per second (cores) divided by thousands of
events per second, which is the same as its CPU seconds per 1,000 events (x 1,000: us per event);
given per 1,000 events/s **offered** (the load's offered events: the cost of keeping up with the
workload, filtered events included) and per 1,000 events/s **delivered** (every event the sensor
decoded in user space, the load's and the rest of the machine's).

Progress goes to stderr; the table and the summary to stdout at the end (``--json``: everything).
``--quick`` finishes in under a minute; the full run in about 2-3 minutes (``--compare-filters``: 4-5).
"""

from __future__ import annotations

import argparse
import json
import math
import mmap
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import harness
import loadgen

from stockade.config import SensorConfig, load_config
from stockade.model.event import Event
from stockade.runtime.sensing import SensorRunner
from stockade.runtime.service import Runtime
from stockade.sensor.ebpf.backend import EbpfBackend

NAME = "sensor_ebpf"

LOADGEN = Path(loadgen.__file__).resolve()
OPEN_TYPES = frozenset({"open", "openat", "openat2"})
#: the event types each kind of operation makes (loadgen.KINDS)
KIND_TYPES: dict[str, frozenset[str]] = {
    "open": OPEN_TYPES,
    "exec": frozenset({"execve"}),
    "socket": frozenset({"socket"}),
    "connect": frozenset({"connect"}),
    "accept": frozenset({"accept", "accept4"}),
    "dup2": frozenset({"dup2"}),
    "unlinkat": frozenset({"unlinkat"}),
    "renameat2": frozenset({"renameat2"}),
}
RATES = {
    "open": (10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 640_000, 1_280_000),
    "mix": (10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 640_000, 1_280_000),
    "exec": (200, 500, 1_000, 2_000, 4_000),
}
RATES["absent"] = RATES["open"]
#: a step holds if the sensor had every event at most this share of the step's length after the load
MAX_LAG_SHARE = 0.1
#: the generator reached less than this share of the offered rate: its ceiling here (the machine's,
#: or the machine's with the sensor running), not the sensor's
CEILING_SHARE = 0.9
#: the sensor handled an event stamped this long after the load's end: it has caught up (the ring
#: buffer is about in time order), what has not arrived will not
CAUGHT_UP_NS = 50_000_000
#: fewer events delivered in a step than this: no CPU per delivered event in the table
FEW_EVENTS = 1000
#: how long after the load a step waits for the sensor to have it all, or catch up
SETTLE_S = 60.0


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _boot_epoch_ns() -> int:
    """Wall-clock time of boot, as the eBPF decoder stamps evt.time (taken right after it started)."""
    return time.time_ns() - time.clock_gettime_ns(time.CLOCK_BOOTTIME)


class Matcher:
    """Counts the events of the current step's load by event type: those of the generator's
    process (`pid`) from `since_ns` on, and the execve of the exec marker (its children)."""

    def __init__(self) -> None:
        self.by_type: dict[str, int] = {}
        #: evt.time of the latest event handled (of any process)
        self.latest = 0
        self.pid = -1
        self.since = 1 << 63
        self.marker = "\0"

    def set(self, pid: int, since_ns: int, marker: str) -> None:
        self.by_type = {}
        self.since, self.marker, self.pid = since_ns, marker, pid

    def __call__(self, data: dict[str, Any]) -> None:
        self.latest = ts = data["evt.time"]
        if data.get("proc.pid") == self.pid:
            if ts >= self.since:
                t = data["evt.type"]
                by = self.by_type
                by[t] = by.get(t, 0) + 1
        elif data.get("proc.args") == self.marker and data["evt.type"] == "execve":
            by = self.by_type
            by["execve"] = by.get("execve", 0) + 1

    def counts(self) -> dict[str, int]:
        """Events per type so far (a copy)."""
        return dict(self.by_type)


class _Counted:
    """What both sensors share: the matcher, the backend's counters, the boot time for evt.time."""

    name: str
    backend: EbpfBackend
    match: Matcher
    boot_ns: int

    @property
    def evttypes(self) -> frozenset[str]:
        return self.backend.evttypes

    def counters(self) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
        """Events lost so far, per cause (the kernel's counters, the agent's queue), and records the
        kernel's filters dropped on purpose, per event type and per cause (failed_call, no_interest)."""
        st = self.backend.refresh_stats()
        return dict(st.lost), dict(st.filtered), dict(getattr(st, "filtered_by_cause", {}))

    def alerts(self) -> dict[str, int]:
        """Alerts raised so far, per rule (none without an engine)."""
        return {}

    def now_ns(self) -> int:
        """Now, on the clock of the events' evt.time."""
        return self.boot_ns + time.clock_gettime_ns(time.CLOCK_BOOTTIME)


class BareSensor(_Counted):
    """The eBPF backend alone, decoded in a reader thread."""

    name = "backend"

    def __init__(self, backend: EbpfBackend, evttypes: set[str]) -> None:
        self.match = Matcher()
        self.backend = backend
        self.backend.start(evttypes)
        self.boot_ns = _boot_epoch_ns()
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


def sensor_overrides(data_dir: str, filters: bool) -> dict[str, Any]:
    """The configuration of the agent: eBPF, and with `filters` off every kernel filter off
    (``kernel_prefilter``, and ``kernel_interest_filter`` where the configuration has it)."""
    sensor: dict[str, Any] = {"backend": "ebpf"}
    if not filters:
        sensor["kernel_prefilter"] = False
        if "kernel_interest_filter" in SensorConfig.model_fields:
            sensor["kernel_interest_filter"] = False
    return {"data_dir": data_dir, "sensor": sensor}


class AgentSensor(_Counted):
    """What `stockade up` runs: Runtime with its sensor (eBPF), default rules, SQLite store."""

    name = "agent"

    def __init__(self, data_dir: str, filters: bool) -> None:
        self.match = Matcher()
        cfg = load_config(None, sensor_overrides(data_dir, filters), environ={})
        self.runtime = Runtime(cfg, role="up", sensor=True)
        runner = self.runtime.sensor
        assert runner is not None
        self.runner: SensorRunner = runner
        runner.pipeline = _CountingPipeline(runner.pipeline, self.match)
        self.runtime.start()
        self.boot_ns = _boot_epoch_ns()
        backend = runner.backends["ebpf"]
        assert isinstance(backend, EbpfBackend)
        self.backend = backend

    @property
    def events(self) -> int:
        return int(self.runner.events)

    def rules(self) -> int:
        return int(self.runtime.engine.active_rules)

    def alerts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (rule, _prio), n in list(self.runtime.pipeline.stats.alerts_by.items()):
            out[rule] = out.get(rule, 0) + n
        return out

    def bare(self) -> BareSensor:
        """The bare backend, built as this agent's runner builds its own (the same kernel filters)."""
        built = [b for b in self.runner._build() if isinstance(b, EbpfBackend)]
        assert built, "the agent runs no eBPF backend"
        return BareSensor(built[0], set(self.backend.evttypes))

    def close(self) -> None:
        self.runtime.close()


Sensor = BareSensor | AgentSensor


# -- the load ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Load:
    """One step's load: its kind (open, exec, mix), its directory (open, mix) and exec marker."""

    kind: str
    directory: str
    marker: str


class Workdir:
    """The benchmark's temporary directory: the file trees, the SQLite store, the progress counters."""

    def __init__(self, exec_max: float, mix_threads: int = 1) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="stockade-bench-ebpf-"))
        self.exec_max = exec_max
        self.mix_threads = mix_threads
        self.progress = self.root / "progress"
        self.progress.write_bytes(b"\0" * loadgen.PROGRESS_BYTES)
        fd = os.open(self.progress, os.O_RDWR)
        try:
            self._mm = mmap.mmap(fd, loadgen.PROGRESS_BYTES)
        finally:
            os.close(fd)
        self._seq = 0

    def done_so_far(self) -> dict[str, int]:
        """The generator's count of each kind now."""
        mm = self._mm
        return {k: int.from_bytes(mm[8 * i : 8 * i + 8], "little") for i, k in enumerate(loadgen.KINDS)}

    def fresh(self, kind: str) -> Load:
        """A new file tree and exec marker, so each step counts only its own events."""
        self._seq += 1
        d = self.root / f"t{self._seq}"
        d.mkdir()
        if kind == "open":
            for i in range(100):
                (d / f"f{i}").write_bytes(b"x")
        return Load(kind, str(d), f"stockade-bench-{os.getpid()}-{self._seq}")

    def command(self, load: Load, rate: float, seconds: float, count: int | None) -> list[str]:
        self._mm[: loadgen.PROGRESS_BYTES] = b"\0" * loadgen.PROGRESS_BYTES
        gen_kind = "open" if load.kind == "absent" else load.kind
        cmd = [sys.executable, str(LOADGEN), gen_kind, "--rate", str(rate), "--progress", str(self.progress)]
        cmd += ["--dir", load.directory, "--marker", load.marker, "--wait"]
        if load.kind == "absent":
            cmd.append("--absent")
        if load.kind == "mix":
            cmd += ["--exec-max", str(self.exec_max), "--threads", str(self.mix_threads)]
        cmd += ["--count", str(count)] if count is not None else ["--seconds", str(seconds)]
        return cmd

    def close(self) -> None:
        self._mm.close()
        shutil.rmtree(self.root, ignore_errors=True)


def _run_gen(
    cmd: list[str], on_ready: Callable[[int], None] | None = None, during: Callable[[], bool] | None = None
) -> dict[str, Any] | None:
    """Run the generator: `on_ready(pid)` once it is ready (before its loop starts); `during` every
    50 ms, and it may stop the generator (returns False: None is returned)."""
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as p:
        assert p.stdin is not None and p.stdout is not None
        if p.stdout.readline().strip() != "ready":
            p.kill()
            raise SystemExit(f"load generator did not start: {' '.join(cmd)}")
        if on_ready is not None:
            on_ready(p.pid)
        p.stdin.write("\n")
        p.stdin.close()
        p.stdout.readline()  # "go"
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


def baseline(wd: Workdir, kind: str, seconds: float) -> dict[str, Any]:
    """The generator alone at full speed: the machine's own rate for this load (and its mix)."""
    r = _run_gen(wd.command(wd.fresh(kind), 0, seconds, None))
    assert r is not None
    return {
        "ops_per_s": r["ops"] / r["wall_s"],
        "gen_cpu_us_per_op": r["cpu_s"] / r["ops"] * 1e6,
        "kinds": r["kinds"],
    }


# -- accounting ----------------------------------------------------------------------------------


def _delta(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def followed_kinds(evttypes: Iterable[str]) -> list[str]:
    """The kinds of operation whose events a sensor following `evttypes` must deliver or count."""
    follows = frozenset(evttypes)
    return [k for k, types in KIND_TYPES.items() if types & follows]


@dataclass(slots=True)
class Account:
    """The load's offered events against what the sensor received, filtered and lost, per kind."""

    #: operations of each followed kind the generator did (offered events)
    offered: dict[str, int]
    #: of those, events received (matched)
    received: dict[str, int]
    #: the kernel filters' counters' increase over the step for the kind's event types (machine-wide)
    filtered: dict[str, int]
    #: offered events neither received nor filtered
    short: dict[str, int]
    #: events lost per cause over the step
    lost: dict[str, int]

    @property
    def lost_total(self) -> int:
        return sum(self.lost.values())

    @property
    def missing(self) -> int:
        """Offered events neither received, filtered nor counted lost (must be 0)."""
        return max(sum(self.short.values()) - self.lost_total, 0)

    @property
    def complete(self) -> bool:
        """Nothing lost, and every offered event received or filtered."""
        return self.lost_total == 0 and not any(self.short.values())


def account(
    ops: Mapping[str, int],
    kinds: Iterable[str],
    received_by_type: Mapping[str, int],
    filtered_by_type: Mapping[str, int],
    lost_by_cause: Mapping[str, int],
) -> Account:
    """Each of `kinds`: `ops[kind]` offered, covered by the events received and the records the
    kernel filtered of the kind's event types (both deltas over the step)."""
    a = Account({}, {}, {}, {}, {k: v for k, v in lost_by_cause.items() if v})
    for k in kinds:
        types = KIND_TYPES[k]
        a.offered[k] = n = ops.get(k, 0)
        a.received[k] = got = sum(received_by_type.get(t, 0) for t in types)
        a.filtered[k] = dropped = sum(filtered_by_type.get(t, 0) for t in types)
        a.short[k] = max(n - got - dropped, 0)
    return a


@dataclass(slots=True)
class Step:
    sensor: str
    #: the kernel's filters: "on" (the defaults) or "off"
    filters: str
    kind: str
    offered_per_s: float
    achieved_per_s: float
    #: operations done (the rate's unit)
    ops: int
    #: the generator's count of each kind (close and failed calls included)
    kinds: dict[str, int]
    #: operations whose event type the sensor follows: the offered events
    offered_events: int
    received: int
    filtered: int
    lost: int
    missing: int
    lag_s: float
    #: events delivered to user space in the step (the sensor's, machine-wide)
    events: int
    events_per_s: float
    offered_events_per_s: float
    sensor_cpu_share: float
    #: the sensor's cores per 1,000 offered events/s (= CPU seconds per 1,000 offered events)
    cpu_per_1k_offered: float
    #: the sensor's cores per 1,000 delivered events/s
    cpu_per_1k_eps: float
    gen_cpu_us_per_op: float
    aborted: bool
    holds: bool
    ceiling: bool
    #: the sensor had every offered event, or caught up with the load's end, within SETTLE_S:
    #: else `missing` may still arrive
    settled: bool = True
    lost_by_cause: dict[str, int] = field(default_factory=dict)
    offered_by_kind: dict[str, int] = field(default_factory=dict)
    received_by_kind: dict[str, int] = field(default_factory=dict)
    filtered_by_kind: dict[str, int] = field(default_factory=dict)
    short_by_kind: dict[str, int] = field(default_factory=dict)
    #: the kernel filters' counters' increase over the step by cause, every event type (machine-wide)
    filtered_by_cause: dict[str, int] = field(default_factory=dict)
    #: alerts the agent raised in the step (the load's and the rest of the machine's), per rule
    alerts: int = 0
    alerts_by_rule: dict[str, int] = field(default_factory=dict)
    received_by_type: dict[str, int] = field(default_factory=dict)


class _Run:
    """One step in progress: the marks at its start and what the sensor has of it."""

    def __init__(self, s: Sensor, wd: Workdir, load: Load) -> None:
        self.s, self.wd, self.load = s, wd, load
        self.kinds = followed_kinds(s.evttypes)
        self.lost0, self.filtered0, self.causes0 = s.counters()
        self.alerts0 = s.alerts()
        self.cpu0 = self.wall0 = 0.0
        self.events0 = 0

    def ready(self, pid: int) -> None:
        """The generator `pid` is about to start: count its events from now on."""
        s = self.s
        s.match.set(pid, s.now_ns(), self.load.marker)
        self.cpu0, self.events0, self.wall0 = _cpu(), s.events, time.perf_counter()

    def account(self, ops: Mapping[str, int]) -> Account:
        """The step's accounting now, for `ops` (the generator's count of each kind)."""
        lost, filtered, _ = self.s.counters()
        received = self.s.match.counts()
        return account(ops, self.kinds, received, _delta(filtered, self.filtered0), _delta(lost, self.lost0))

    def behind(self) -> int:
        """Offered events so far neither received nor filtered."""
        return sum(self.account(self.wd.done_so_far()).short.values())

    def finish(
        self,
        gen: dict[str, Any] | None,
        done: dict[str, int],
        t_end: float,
        waited: tuple[float, bool],
        rate: float,
        filters: str,
    ) -> Step:
        """The step's figures: `gen` what the generator said (None: cut short), `done` its count of
        each kind, `t_end` when the load ended, `waited` how long after that the sensor had it all
        (or caught up) and whether it did (:meth:`wait_all`)."""
        lag, settled = waited
        s = self.s
        wall, cpu, events = time.perf_counter() - self.wall0, _cpu() - self.cpu0, s.events - self.events0
        time.sleep(0.1)  # the kernel's loss counters, and the stragglers of the load
        a = self.account(done)
        causes = _delta(s.counters()[2], self.causes0)
        alerts = _delta(s.alerts(), self.alerts0)
        ops = sum(done.get(k, 0) for k in loadgen.OP_KINDS)
        gen_wall = gen["wall_s"] if gen is not None else t_end - self.wall0
        achieved = ops / gen_wall if gen_wall > 0 else 0.0
        offered = sum(a.offered.values())
        return Step(
            sensor=s.name,
            filters=filters,
            kind=self.load.kind,
            offered_per_s=rate,
            achieved_per_s=achieved,
            ops=ops,
            kinds=dict(done),
            offered_events=offered,
            received=sum(a.received.values()),
            filtered=sum(a.filtered.values()),
            lost=a.lost_total,
            missing=a.missing,
            lag_s=lag,
            events=events,
            events_per_s=events / wall,
            offered_events_per_s=offered / gen_wall if gen_wall > 0 else 0.0,
            sensor_cpu_share=cpu / wall,
            cpu_per_1k_offered=cpu * 1000 / offered if offered else math.nan,
            cpu_per_1k_eps=cpu * 1000 / events if events else math.nan,
            gen_cpu_us_per_op=(gen["cpu_s"] / ops * 1e6) if gen is not None and ops else math.nan,
            aborted=gen is None,
            holds=gen is not None and settled and a.complete and lag <= MAX_LAG_SHARE * gen_wall,
            settled=settled,
            ceiling=bool(rate) and achieved < CEILING_SHARE * rate,
            lost_by_cause=a.lost,
            offered_by_kind=a.offered,
            received_by_kind=a.received,
            filtered_by_kind=a.filtered,
            short_by_kind=a.short,
            filtered_by_cause=causes,
            alerts=sum(alerts.values()),
            alerts_by_rule=alerts,
            received_by_type=s.match.counts(),
        )

    def wait_all(self, ops: Mapping[str, int], t_end: float, end_ns: int) -> tuple[float, bool]:
        """Wait until every offered event is received or filtered, or the sensor has caught up
        with the load's end (`end_ns`, on evt.time's clock: it handled an event stamped after it,
        so what has not arrived is lost or missing) or had nothing for a second: (how long after
        the load that was, whether it settled so within SETTLE_S)."""
        s = self.s
        events, idle_t = s.events, t_end
        while True:
            short = any(self.account(ops).short.values())
            now = time.perf_counter()
            if not short or s.match.latest >= end_ns + CAUGHT_UP_NS:
                return now - t_end, True
            if s.events != events:
                events, idle_t = s.events, now
            elif now - idle_t > 1.0:
                return idle_t - t_end, True
            if now - t_end > SETTLE_S:
                return now - t_end, False
            time.sleep(0.01)


def run_step(
    s: Sensor,
    wd: Workdir,
    kind: str,
    rate: float,
    seconds: float,
    count: int | None = None,
    filters: str = "on",
) -> Step:
    load = wd.fresh(kind)
    time.sleep(0.2)  # let the sensor settle (the tree's creation, the previous step)
    run = _Run(s, wd, load)
    max_behind = (rate or 1e5) * max(1.0, MAX_LAG_SHARE * seconds)

    def keeping_up() -> bool:
        return count is not None or run.behind() <= max_behind

    gen = _run_gen(wd.command(load, rate, seconds, count), run.ready, keeping_up)
    t_end = time.perf_counter()
    done = gen["kinds"] if gen is not None else wd.done_so_far()
    waited = run.wait_all(done, t_end, s.now_ns())
    return run.finish(gen, done, t_end, waited, rate, filters)


def _bisect(best: float, bad: float, kind: str) -> float:
    return float(round(math.sqrt(best * bad), -1 if kind == "exec" else -2))


def search(
    s: Sensor,
    wd: Workdir,
    kind: str,
    rates: tuple[int, ...],
    seconds: float,
    refine: int,
    log: Callable[[Step], None],
    filters: str = "on",
) -> tuple[list[Step], Step | None]:
    """Step up through `rates` until a step fails (if the first fails, down by 4 twice), then
    bisect `refine` times: (steps, best step)."""
    steps: list[Step] = []

    def step(rate: float) -> Step:
        st = run_step(s, wd, kind, rate, seconds, filters=filters)
        steps.append(st)
        log(st)
        return st

    good: Step | None = None  # the highest rate offered that held
    bad: float | None = None
    for r in rates:
        st = step(r)
        if not st.holds:
            bad = r
            break
        good = st
        if st.ceiling:
            break  # the machine cannot offer more
    for _ in range(2 if good is None and bad is not None else 0):
        bad = bad / 4 if bad is not None else 0
        st = step(bad)
        if st.holds:
            good, bad = st, bad * 4
            break
    for _ in range(refine):
        if good is None or bad is None or bad / good.offered_per_s < 1.15:
            break
        mid = _bisect(good.offered_per_s, bad, kind)
        st = step(mid)
        if st.holds:
            good = st
        else:
            bad = mid
    # the best: the highest rate reached without loss (at the generator's ceiling a higher rate
    # offered may reach less)
    return steps, max((x for x in steps if x.holds), key=lambda x: x.achieved_per_s, default=None)


# -- reporting -----------------------------------------------------------------------------------

_HEAD = (
    f"{'sensor':8} {'filt':4} {'load':5} {'offered/s':>10} {'reached/s':>10} {'x mach':>6} "
    f"{'offered ev':>10} {'received':>9} {'filtered':>9} {'lost':>7} {'missing':>7} {'lag s':>5} "
    f"{'deliv ev/s':>10} {'cpu':>4} {'us/off ev':>9} {'us/del ev':>9} {'gen us/op':>9}  holds"
)


def _verdict(st: Step) -> str:
    """Why a step holds or not: lost per cause, offered events short per kind, lag."""
    if st.holds:
        return "yes"
    if not st.settled:
        why = f"not caught up {st.lag_s:.0f} s after the load"
    elif st.aborted:
        why = "cut short: fell behind"
    elif st.lost:
        why = "lost " + ", ".join(f"{c} {n:,}" for c, n in st.lost_by_cause.items())
    elif any(st.short_by_kind.values()):
        why = "short " + ", ".join(f"{k} {n:,}" for k, n in st.short_by_kind.items() if n)
    else:
        why = f"lag {st.lag_s:.2f} s"
    return f"no ({why})"


def _burst_verdict(st: Step) -> str:
    if not st.settled:
        return f"burst: not caught up {st.lag_s:.0f} s after it"
    if st.missing:
        return f"burst: {st.missing:,} MISSING"
    if st.received + st.filtered >= st.offered_events and not st.lost:
        return "burst: all arrived or filtered"
    return (
        "burst: the rest lost, counted (" + ", ".join(f"{c} {n:,}" for c, n in st.lost_by_cause.items()) + ")"
    )


def _per_delivered(st: Step) -> str:
    """CPU us per delivered event, or n/a where too few were delivered for it to mean anything."""
    return f"{st.cpu_per_1k_eps * 1000:.2f}" if st.events >= FEW_EVENTS else "n/a"


def _row(st: Step, machine: float) -> str:
    offered = f"{st.offered_per_s:10,.0f}" if st.offered_per_s else f"{'full':>10}"
    flag = _verdict(st) if st.offered_per_s else _burst_verdict(st)
    if st.ceiling:
        flag += " (generator ceiling)"
    return (
        f"{st.sensor:8} {st.filters:4} {st.kind:5} {offered} {st.achieved_per_s:10,.0f} "
        f"{st.achieved_per_s / machine:6.3f} {st.offered_events:10,} {st.received:9,} {st.filtered:9,} "
        f"{st.lost:7,} {st.missing:7,} {st.lag_s:5.2f} {st.events_per_s:10,.0f} {st.sensor_cpu_share:4.2f} "
        f"{st.cpu_per_1k_offered * 1000:9.2f} {_per_delivered(st):>9} {st.gen_cpu_us_per_op:9.2f}  {flag}"
    )


def shares(kinds: Mapping[str, int]) -> str:
    """The share of each kind among the operations; close and failed calls apart."""
    ops = sum(kinds.get(k, 0) for k in loadgen.OP_KINDS) or 1
    parts = [f"{k} {kinds.get(k, 0) / ops:.1%}" for k in loadgen.OP_KINDS if kinds.get(k, 0)]
    return ", ".join(parts) + f" (+ close {kinds.get('close', 0):,}, failed {kinds.get('failed', 0):,})"


def _best_lines(key: str, st: Step, machine: float, steps: list[Step]) -> list[str]:
    """What the best step of one filter setting, sensor and load says, and the first failing step
    above it (none: the generator's ceiling ended the search, the figure is a lower bound)."""
    pad = " " * 26
    mine = [x for x in steps if f"{x.filters}/{x.sensor}/{x.kind}" == key]
    above = [x for x in mine if not x.holds and x.offered_per_s > st.offered_per_s]
    bound = ">= " if not above and any(x.ceiling for x in mine) else ""
    lines = [
        f"highest sustained without loss: {bound}{st.achieved_per_s:,.0f} ops/s "
        f"= {st.achieved_per_s / machine:.3f} x the machine's {machine:,.0f}/s; "
        f"offered {st.offered_events_per_s:,.0f} events/s, delivered {st.events_per_s:,.0f} events/s, "
        f"{st.sensor_cpu_share:.2f} core: {st.cpu_per_1k_offered:.4f} core per 1,000 offered events/s "
        f"({st.cpu_per_1k_offered * 1000:.2f} us), "
        + (
            f"{st.cpu_per_1k_eps:.4f} per 1,000 delivered ({st.cpu_per_1k_eps * 1000:.2f} us)"
            if st.events >= FEW_EVENTS
            else f"per 1,000 delivered: n/a (fewer than {FEW_EVENTS:,} events delivered)"
        ),
        f"{pad}offered events: {st.offered_events:,}, received {st.received:,}, filtered in the kernel "
        f"{st.filtered:,} (all types, machine-wide, by cause: "
        + (", ".join(f"{c} {n:,}" for c, n in st.filtered_by_cause.items()) or "none")
        + ")",
    ]
    if st.kind == "mix":
        lines.append(f"{pad}there the mix was: {shares(st.kinds)}")
    if st.alerts:
        top = sorted(st.alerts_by_rule.items(), key=lambda x: -x[1])[:3]
        lines.append(f"{pad}alerts raised: {st.alerts:,} (" + ", ".join(f"{r}: {n:,}" for r, n in top) + ")")
    if above:
        first = min(above, key=lambda x: x.offered_per_s)
        lines.append(f"{pad}above it, at {first.offered_per_s:,.0f}/s: {_verdict(first)}")
    return lines


def _summary(best: dict[str, Step | None], base: dict[str, dict[str, Any]], steps: list[Step]) -> list[str]:
    lines = []
    for key, st in best.items():
        filters, sensor, kind = key.split("/")
        head = f"{sensor:8} filters {filters:3} {kind:6}"
        if st is None:
            lines.append(f"{head} no step held (the lowest rates already lost or lagged)")
            continue
        first, *rest = _best_lines(key, st, base[kind]["ops_per_s"], steps)
        lines += [f"{head} {first}", *rest]
    return lines


@dataclass
class _Plan:
    """What to run: the loads, the rate steps (their length, the bisection), the bursts, which
    sensors, which filter settings."""

    sustained: bool
    seconds: float
    refine: int
    n_opens: int
    n_execs: int
    sensors: list[str]
    loads: list[str]
    rates: dict[str, tuple[int, ...]]
    #: the kernel filters' settings to run, in order ("on", "off")
    filters: list[str]
    exec_max: float
    mix_threads: int
    #: how long the machine alone runs each baseline
    base_s: float

    @classmethod
    def of(cls, args: argparse.Namespace) -> _Plan:
        """The plan the command line asks for (``--quick``: shorter steps, fewer rates, smaller bursts)."""
        quick = args.quick
        filters = [args.kernel_filters]
        if args.compare_filters:
            filters.append("off" if args.kernel_filters == "on" else "on")
        return cls(
            sustained=args.sustained,
            seconds=args.step_seconds or (1.5 if quick else 4.0),
            refine=args.refine if args.refine is not None else (0 if quick else 2),
            n_opens=args.opens if args.opens is not None else (20_000 if quick else 100_000),
            n_execs=args.execs if args.execs is not None else (1_000 if quick else 10_000),
            sensors=[x.strip() for x in args.sensors.split(",") if x.strip()],
            loads=[x.strip() for x in args.loads.split(",") if x.strip()],
            rates={k: v[1::2] if quick else v for k, v in RATES.items()},
            filters=filters,
            exec_max=args.exec_max,
            mix_threads=args.mix_threads,
            base_s=1.0 if quick else 2.0,
        )

    @property
    def base_kinds(self) -> list[str]:
        """The loads whose machine rate is measured: the sustained loads and the bursts'."""
        kinds = list(self.loads) if self.sustained else []
        kinds += [k for k, n in (("open", self.n_opens), ("exec", self.n_execs)) if n and k not in kinds]
        return kinds


@dataclass
class _Findings:
    """What a run measured."""

    steps: list[Step] = field(default_factory=list)
    bursts: list[Step] = field(default_factory=list)
    best: dict[str, Step | None] = field(default_factory=dict)
    #: the machine alone, per load, each run
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    evttypes: set[str] = field(default_factory=set)
    rules_active: int = 0


def _progress(st: Step) -> None:
    verdict = "holds" if st.holds else _verdict(st)
    print(
        f"  {st.sensor} filters {st.filters} {st.kind} {st.offered_per_s or 'full'} /s: {verdict} "
        f"({st.achieved_per_s:,.0f}/s reached, {st.offered_events_per_s:,.0f} offered events/s, "
        f"{st.received:,} received, {st.filtered:,} filtered, {st.sensor_cpu_share:.2f} core)",
        file=sys.stderr,
        flush=True,
    )


def _sustained(sensor: Sensor, wd: Workdir, plan: _Plan, f: _Findings, filters: str) -> None:
    """The highest sustained rate of each load for one sensor."""
    for kind in plan.loads:
        key = f"{filters}/{sensor.name}/{kind}"
        ss, f.best[key] = search(
            sensor, wd, kind, plan.rates[kind], plan.seconds, plan.refine, _progress, filters
        )
        f.steps += ss


def _agent(wd: Workdir, plan: _Plan, f: _Findings, filters: str, bursts: bool) -> AgentSensor:
    """The agent: what it follows, its sustained rates and (`bursts`) its bursts; closed."""
    agent = AgentSensor(str(wd.root / f"data-{filters}"), filters == "on")
    f.evttypes = set(agent.backend.evttypes)
    f.rules_active = agent.rules()
    try:
        if "agent" in plan.sensors and plan.sustained:
            _sustained(agent, wd, plan, f, filters)
        if "agent" in plan.sensors and bursts:
            for kind, n in (("open", plan.n_opens), ("exec", plan.n_execs)):
                if n:
                    f.bursts.append(run_step(agent, wd, kind, 0, 0, count=n, filters=filters))
                    _progress(f.bursts[-1])
    finally:
        agent.close()
    return agent


def _measure(plan: _Plan) -> _Findings:
    f = _Findings(runs={k: [] for k in plan.base_kinds})
    wd = Workdir(plan.exec_max, plan.mix_threads)
    try:
        for _ in range(2):  # the machine alone, before and (below) after: the best run counts
            for kind in f.runs:
                f.runs[kind].append(baseline(wd, kind, plan.base_s))
        for i, filters in enumerate(plan.filters):
            # the agent first: the bare backend is built as the agent built its own
            agent = _agent(wd, plan, f, filters, bursts=i == 0)
            if "backend" in plan.sensors and plan.sustained:
                bare = agent.bare()
                try:
                    _sustained(bare, wd, plan, f, filters)
                finally:
                    bare.close()
        for kind in f.runs:
            f.runs[kind].append(baseline(wd, kind, plan.base_s))
    finally:
        wd.close()
    return f


def _print_report(out: dict[str, Any], f: _Findings, base: dict[str, dict[str, Any]]) -> None:
    for kind, runs in f.runs.items():
        b = base[kind]
        print(
            f"machine alone, {kind} (no sensor, best of {len(runs)} runs = the generator's ceiling): "
            f"{b['ops_per_s']:,.0f} ops/s ({b['gen_cpu_us_per_op']:.2f} us CPU each; runs: "
            + ", ".join(f"{r['ops_per_s']:,.0f}" for r in runs)
            + ")"
            + (f"; its mix: {shares(b['kinds'])}" if kind == "mix" else "")
        )
    print(_HEAD)
    for st in f.steps + f.bursts:
        print(_row(st, base[st.kind]["ops_per_s"]))
    print()
    for line in _summary(f.best, base, f.steps):
        print(line)
    print(
        f"({out['rules_active']} rules active; sensor follows {len(f.evttypes)} event types; "
        f"{out['cpus']} CPUs; {out['seconds']} s)\n"
        "ops = the load's operations (mix: every syscall of its kinds but close); x mach = reached "
        "ops/s / the machine's own rate for that load; offered ev = operations whose event type the "
        "sensor follows; received = those that reached the sensor; filtered = the kernel filters' "
        "counters for those types over the step (machine-wide); deliv ev/s = every event the sensor "
        "decoded per second; cpu = sensor CPU seconds per second (1.0 = one core); us/off ev and "
        "us/del ev = CPU per offered and per delivered event (x 0.001: cores per 1,000 events/s); "
        "lag s = how long after the load the sensor had all of it; gen us/op = the load generator's "
        "own CPU per operation (the in-kernel probe's cost lands there; paced steps also pay their sleeps)"
    )


def main() -> int:
    """Measure and print (module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sustained", action="store_true", help="find the highest sustained rate without loss")
    ap.add_argument("--quick", action="store_true", help="shorter steps, fewer rates: under a minute")
    ap.add_argument("--step-seconds", type=float, default=None, help="length of one rate step")
    ap.add_argument("--refine", type=int, default=None, help="bisection steps after the first failure")
    ap.add_argument("--sensors", default="backend,agent", help="which sensors: backend, agent")
    ap.add_argument("--loads", default="open,mix", help="sustained loads: open, mix, exec")
    ap.add_argument("--kernel-filters", choices=["on", "off"], default="on", help="the kernel's filters")
    ap.add_argument("--compare-filters", action="store_true", help="then the other filter setting too")
    ap.add_argument(
        "--exec-max", type=float, default=loadgen.DEFAULT_EXEC_MAX, help="mix: execs per second at most"
    )
    ap.add_argument(
        "--mix-threads", type=int, default=1, help="mix: the generator's threads (besides the execs')"
    )
    ap.add_argument("--opens", type=int, default=None, help="burst of opens at full speed (agent)")
    ap.add_argument("--execs", type=int, default=None, help="burst of execs at full speed (agent)")
    got = harness.sensor_args(ap, NAME, ebpf=True)
    if got is None or got[1] is None:
        return 2
    args = got[0]
    t_start = time.monotonic()
    out: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count()}
    plan = _Plan.of(args)
    f = _measure(plan)
    base = {k: max(r, key=lambda x: x["ops_per_s"]) for k, r in f.runs.items()}
    out["rules_active"] = f.rules_active
    out["evttypes"] = sorted(f.evttypes)
    out["filters"] = plan.filters
    out["exec_max"] = plan.exec_max
    out["mix_threads"] = plan.mix_threads
    out["mix_shares_target"] = loadgen.mix_shares()
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
