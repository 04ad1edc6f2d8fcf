"""Process churn: the agent as `stockade up` builds it (the eBPF sensor, enrichment, the default
rules, the pipeline and its SQLite store) while tools/stk_churn.c makes short-lived processes,
offered at RATE per second for CHURN_S seconds (the last LOADED_S of them with a busy loop on every
core: users' nodes are busy).

Every process is a fork whose child exits at once, one in EXEC_EVERY after executing /bin/true:
two events each (fork, exit), a dozen for those that execute. With pid_max at 32,768 (as here) the
pids wrap every few seconds, so every exited process's pid is soon another's (which also keeps the
process table below its cap here: tests/sensor/test_proctable.py churns a wider pid space).

* **Memory stays bounded**: sampled through the run, the process table (``max_entries``), the
  decoder's per-process table, the container and user-name caches, the agent's queue and the
  process's RSS stay under explicit bounds, far below what keeping every process would take (an
  entry per process: several hundred thousand).
* **Survivors keep their ancestry**: two chains of long-lived shells (copies of /bin/sh named
  chain-top, chain-mid and chain-leaf) live through the churn: one whole, started before it, and one
  whose top and middle exit at once, started during it (their pids are reused by the churn). After
  the churn each leaf runs ``/bin/true <marker>``: that exec's proc.pname, proc.aname[N] and
  proc.apid[N] name the leaf, the middle, the top and this process (the one that started the
  chain), in order.
* **Nothing is lost silently**: every churn process's exit arrives or is counted as lost (the
  kernel's ring-buffer and in-flight counters, the agent's queue, events that failed); the
  figures are printed.

The machine makes fewer than RATE processes per second while the agent runs (two cores): the rate
reached is printed, not asserted (timing belongs to benchmarks/sensor_churn.py).
"""

from __future__ import annotations

import errno
import mmap
import os
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from helpers import need, wait_until
from stockade.config import load_config
from stockade.model.alert import Alert
from stockade.model.event import Event
from stockade.runtime.sensing import MAX_CONTAINERS, SensorPipeline, SensorRunner
from stockade.runtime.service import Runtime
from stockade.sensor.ebpf.backend import EbpfBackend
from stockade.sensor.enrich import Enricher
from stockade.sensor.proctable import ProcessTable

pytestmark = [pytest.mark.root, pytest.mark.ebpf, pytest.mark.slow]

#: how long the churn lasts, and the last part of it with every core busy
CHURN_S = 20.0
LOADED_S = 8.0
#: processes offered per second; one in EXEC_EVERY executes /bin/true; children alive at once
RATE = 10_000
EXEC_EVERY = 50
INFLIGHT = 4
#: how often the memory figures are sampled
SAMPLE_S = 0.5
TOOL = Path(__file__).parent / "tools" / "stk_churn.c"
#: the chains' execs: `/bin/true <MARKER><chain>-<pid>`
MARKER = "stk-churn-chain-"

# -- the bounds (each far below keeping every process: RATE x CHURN_S = 200,000) ------------------
#: the decoder remembers the programs of live processes only (exits drop theirs)
MAX_DECODER_PROCS = 8192
#: the process's RSS may grow by this much: the table full (65,536 entries, about 1 KB each), the
#: agent's queue full (sensor.queue_events, 65,536 decoded events, about 1 KB each) and the rest of
#: the agent; an entry per process alone would take 400 MB
MAX_RSS_GROWTH_KB = 256 * 1024
#: and over the second half of the run, once the table is as full as the pids allow: the agent's
#: queue filling (about 64 MB) and some slack
MAX_LATE_RSS_GROWTH_KB = 96 * 1024


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


@pytest.fixture(scope="module")
def churn_tool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tools/stk_churn.c, built statically (a small static binary forks fastest)."""
    cc = need(shutil.which("gcc") or shutil.which("cc"), f"needs gcc to build {TOOL}")
    out = tmp_path_factory.mktemp("churn") / "stk-churn"
    r = subprocess.run([cc, "-O2", "-static", "-o", str(out), str(TOOL)], capture_output=True, text=True)
    assert r.returncode == 0, f"building {TOOL} failed: {r.stderr}"
    return out


class Watch:
    """The runtime's pipeline, with the churn's processes counted and the chains' execs kept on the
    way in (the sensor's consumer thread calls handle)."""

    def __init__(self, inner: SensorPipeline) -> None:
        self.inner = inner
        #: the churn generator's pid: its children's forks and exits are counted
        self.gen_pid = -1
        self.forks = 0
        self.exits = 0
        #: the chains' execs
        self.marked: list[dict[str, Any]] = []

    def handle(self, event: Event) -> object:
        d = event.data
        if d.get("proc.ppid") == self.gen_pid:
            t = d["evt.type"]
            if t == "procexit":
                self.exits += 1
            elif t in ("clone", "clone3", "fork", "vfork"):
                self.forks += 1
        elif d["evt.type"] == "execve" and str(d.get("proc.args", "")).startswith(MARKER):
            self.marked.append(d)
        return self.inner.handle(event)

    def ingest_alerts(self, alerts: list[Alert]) -> int:
        return self.inner.ingest_alerts(alerts)


@dataclass
class Agent:
    runtime: Runtime
    runner: SensorRunner
    watch: Watch
    backend: EbpfBackend
    enricher: Enricher

    @property
    def table(self) -> ProcessTable:
        return self.enricher.table

    def lost(self) -> dict[str, int]:
        """Every event the agent did not evaluate, by cause (the kernel's counters read now)."""
        self.backend.refresh_stats()
        out = {f"{n}:{c}": v for n, b in self.runner.backends.items() for c, v in b.stats.lost.items()}
        out["undecodable"] = self.backend.undecodable
        out["event_errors"] = self.runner.consume_errors.total
        return out


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    """What `stockade up` runs (benchmarks/sensor_ebpf.py's AgentSensor builds it the same way)."""
    data = tmp_path_factory.mktemp("churn-data")
    cfg = load_config(None, {"data_dir": str(data), "sensor": {"backend": "ebpf"}}, environ={})
    rt = Runtime(cfg, role="up", sensor=True)
    runner = rt.sensor
    assert runner is not None and runner.enricher is not None
    watch = Watch(runner.pipeline)
    runner.pipeline = watch
    rt.start()
    try:
        backend = runner.backends["ebpf"]
        assert isinstance(backend, EbpfBackend)
        yield Agent(rt, runner, watch, backend, runner.enricher)
    finally:
        rt.close()


# -- the chains ---------------------------------------------------------------------------------


@dataclass
class Chain:
    """chain-top -> chain-mid -> chain-leaf; the leaf runs `/bin/true <marker>` for every line
    written to its FIFO. `orphan`: the top and the middle exit once the leaf runs."""

    name: str
    marker: str
    fifo: Path
    pids_file: Path
    proc: subprocess.Popen[bytes]
    pids: dict[str, int] = field(default_factory=dict)

    @classmethod
    def start(cls, name: str, bindir: Path, work: Path, *, orphan: bool) -> Chain:
        fifo, pids = work / f"{name}.fifo", work / f"{name}.pids"
        os.mkfifo(fifo)
        marker = f"{MARKER}{name}-{os.getpid()}"
        # every shell says its pid; `; exit 0` keeps each command a child (no exec in place)
        leaf = f"echo leaf $$ >> {pids}; while read x < {fifo}; do /bin/true {marker}; done; exit 0"
        mid = f"echo mid $$ >> {pids}; {bindir}/chain-leaf -c {shlex.quote(leaf)}"
        mid += " & exit 0" if orphan else "; exit 0"
        top = f"echo top $$ >> {pids}; {bindir}/chain-mid -c {shlex.quote(mid)}; exit 0"
        proc = subprocess.Popen([str(bindir / "chain-top"), "-c", top], stderr=subprocess.DEVNULL)
        return cls(name, marker, fifo, pids, proc)

    def wait_started(self) -> None:
        def read() -> bool:
            if self.pids_file.exists():
                self.pids = {
                    k: int(v) for k, v in (ln.split() for ln in self.pids_file.read_text().split("\n") if ln)
                }
            return len(self.pids) == 3

        assert wait_until(read, 10), f"chain {self.name} did not start: {self.pids}"

    def poke(self) -> None:
        """One `/bin/true <marker>` from the leaf, if it waits for a line (else nothing)."""
        try:
            fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno == errno.ENXIO:  # the leaf is running the previous one
                return
            raise
        try:
            os.write(fd, b"go\n")
        finally:
            os.close(fd)

    def stop(self) -> None:
        leaf = self.pids.get("leaf")
        if leaf is not None:
            try:
                os.kill(leaf, 9)
            except ProcessLookupError:
                pass
        self.proc.wait(10)


@pytest.fixture
def chain_bin(tmp_path: Path) -> Path:
    """chain-top, chain-mid, chain-leaf: copies of /bin/sh, so each link has its own name."""
    sh = os.path.realpath("/bin/sh")
    d = tmp_path / "bin"
    d.mkdir()
    for n in ("chain-top", "chain-mid", "chain-leaf"):
        shutil.copy2(sh, d / n)
    return d


# -- the churn ----------------------------------------------------------------------------------


@dataclass
class Samples:
    rss_kb: list[int] = field(default_factory=list)
    table: list[int] = field(default_factory=list)
    displaced: list[int] = field(default_factory=list)
    decoder: list[int] = field(default_factory=list)
    queued: list[int] = field(default_factory=list)
    caches: list[dict[str, int]] = field(default_factory=list)

    def take(self, a: Agent) -> None:
        self.rss_kb.append(_rss_kb())
        self.table.append(len(a.table))
        self.displaced.append(a.table.displaced)
        dec = a.backend._decoder
        self.decoder.append(len(dec.procs) if dec is not None else 0)
        self.queued.append(a.runner.queued_events)
        r = a.enricher.resolver
        self.caches.append(
            {
                "containers_by_id": len(r._by_id),
                "cgroup_paths": len(r._paths),
                "user_roots": len(a.enricher.users._cache),
                "runner_containers": len(a.runner._containers),
            }
        )


def _busy_cores() -> list[subprocess.Popen[bytes]]:
    """One busy loop per core (at the sensor's own priority)."""
    return [subprocess.Popen(["/bin/sh", "-c", "while :; do :; done"]) for _ in range(os.cpu_count() or 1)]


@dataclass
class Phase:
    """When every core became busy: seconds into the churn, processes made, exits received."""

    t: float = 0.0
    made: int = 0
    exits: int = 0


def _churn(
    a: Agent, tool: Path, s: Samples, work: Path, on_start: list[Any]
) -> tuple[dict[str, Any], float, Phase]:
    """Run the generator for CHURN_S (every core busy for the last LOADED_S), sampling memory;
    `on_start` runs once the generator's loop started. Its result, the agent's CPU seconds and
    where the loaded phase began."""
    progress = work / "progress"
    progress.write_bytes(bytes(8))
    cmd = [str(tool), "--rate", str(RATE), "--seconds", str(CHURN_S), "--exec-every", str(EXEC_EVERY)]
    cmd += ["--inflight", str(INFLIGHT), "--marker", "stk-churn-test", "--progress", str(progress)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    assert p.stdout is not None
    a.watch.gen_pid = p.pid
    assert p.stdout.readline() == b"go\n"
    t0, c0 = time.monotonic(), time.process_time()
    for f in on_start:
        f()
    hogs: list[subprocess.Popen[bytes]] = []
    loaded = Phase()
    try:
        with progress.open("rb") as f, mmap.mmap(f.fileno(), 8, access=mmap.ACCESS_READ) as counter:
            while p.poll() is None:
                time.sleep(SAMPLE_S)
                s.take(a)
                if not hogs and time.monotonic() - t0 >= CHURN_S - LOADED_S:
                    loaded = Phase(
                        time.monotonic() - t0, int.from_bytes(counter[:8], "little"), a.watch.exits
                    )
                    hogs = _busy_cores()
        out = p.stdout.read()
        # the agent catches up, cores still busy: until every exit arrived, or none for 2 s
        made = orjson.loads(out.splitlines()[-1])["ops"]
        _settle(a, made)
        s.take(a)
    finally:
        p.stdout.close()
        for h in hogs:
            h.kill()
            h.wait()
    result: dict[str, Any] = orjson.loads(out.splitlines()[-1])
    return result, time.process_time() - c0, loaded


def _settle(a: Agent, made: int) -> None:
    """Wait until the agent has every churn process's exit, or received none for 2 s (at most 60 s)."""
    seen, since, end = -1, time.monotonic(), time.monotonic() + 60
    while a.watch.exits < made and time.monotonic() - since < 2.0 and time.monotonic() < end:
        if a.watch.exits != seen:
            seen, since = a.watch.exits, time.monotonic()
        time.sleep(0.05)


def _ancestry(ev: dict[str, Any], depth: int) -> list[tuple[Any, Any]]:
    return [(ev.get(f"proc.aname[{i}]"), ev.get(f"proc.apid[{i}]")) for i in range(1, depth + 1)]


def _not_wrong(got: list[tuple[Any, Any]], want: list[tuple[str, int]]) -> None:
    """Each ancestor `got` names is the one wanted (the walk may stop early: missing, not wrong)."""
    for (name, pid), (want_name, want_pid) in zip(got, want, strict=True):
        if pid is None:
            break
        assert pid == want_pid and name in (None, want_name), (got, want)


def _exec_of(a: Agent, c: Chain) -> dict[str, Any]:
    """The leaf's `/bin/true <marker>`, asked for again every 2 s until the agent has it."""
    found: list[dict[str, Any]] = []

    def arrived() -> bool:
        found[:] = [d for d in a.watch.marked if d.get("proc.args") == c.marker]
        return bool(found)

    for _ in range(10):
        c.poke()
        if wait_until(arrived, 2.0):
            return found[0]
    raise AssertionError(f"no exec of the {c.name} chain's leaf arrived: lost {a.lost()}")


@dataclass
class Outcome:
    """What a churn run made and what the agent did meanwhile."""

    gen: dict[str, Any]
    cpu_s: float
    loaded: Phase
    events: int
    lost: dict[str, int]

    @property
    def made(self) -> int:
        return int(self.gen["ops"])

    def report(self, a: Agent, s: Samples) -> str:
        g, ld, wall = self.gen, self.loaded, self.gen["wall_s"]
        half = len(s.rss_kb) // 2
        return (
            f"\nchurn: {self.made:,} processes ({g['execs']:,} exec'd) in {wall:.1f} s = {self.made / wall:,.0f}/s "
            f"offered {RATE:,}/s: {ld.made / ld.t:,.0f}/s in the first {ld.t:.0f} s, "
            f"{(self.made - ld.made) / (wall - ld.t):,.0f}/s with every core busy; agent: {self.events:,} events, "
            f"{self.cpu_s:.1f} CPU s ({self.cpu_s / wall:.2f} core); exits received {a.watch.exits:,} "
            f"({ld.exits:,} before the cores were busy), forks {a.watch.forks:,}; lost {self.lost or 0}\n"
            f"memory: RSS {s.rss_kb[0] / 1024:.0f} MB at start, peak {max(s.rss_kb) / 1024:.0f} "
            f"(second half +{(max(s.rss_kb) - max(s.rss_kb[: half + 1])) / 1024:.0f}), end "
            f"{s.rss_kb[-1] / 1024:.0f}; table peak {max(s.table):,} (displaced ancestors held: peak "
            f"{max(s.displaced)}), decoder peak {max(s.decoder):,}, queue peak {max(s.queued):,} events; "
            f"table stats {dict(a.table.stats)}"
        )


def _run(a: Agent, tool: Path, s: Samples, work: Path, on_start: list[Any]) -> Outcome:
    """The churn (see _churn), with what the agent counted meanwhile."""
    lost0, events0 = a.lost(), a.runner.events
    gen, cpu_s, loaded = _churn(a, tool, s, work, on_start)
    lost = {k: v - lost0.get(k, 0) for k, v in a.lost().items() if v - lost0.get(k, 0)}
    return Outcome(gen, cpu_s, loaded, a.runner.events - events0, lost)


def test_churn_keeps_memory_bounded_and_survivors_ancestry(
    agent: Agent, churn_tool: Path, chain_bin: Path, tmp_path: Path
) -> None:
    a = agent
    whole = Chain.start("whole", chain_bin, tmp_path, orphan=False)
    orphan: list[Chain] = []
    try:
        whole.wait_started()
        time.sleep(0.5)  # the agent has the whole chain's events
        s = Samples()
        s.take(a)

        def start_orphan() -> None:
            # during the churn, its top and middle exit at once: their pids are reused within seconds
            time.sleep(2.0)
            orphan.append(Chain.start("orphan", chain_bin, tmp_path, orphan=True))
            orphan[0].wait_started()
            orphan[0].proc.wait(10)  # the top reaped: its pid too is free for the churn

        starter = threading.Thread(target=start_orphan)
        out = _run(a, churn_tool, s, tmp_path, [starter.start])
        starter.join()
        assert orphan and len(orphan[0].pids) == 3, "the orphan chain did not start"
        print(out.report(a, s))
        # (c) nothing lost silently: every exit arrived or its loss is counted
        made, n_lost = out.made, sum(out.lost.values())
        assert a.watch.exits <= made and a.watch.forks <= made
        if n_lost == 0:
            assert a.watch.exits == made and a.watch.forks == made, (made, a.watch.exits, a.watch.forks)
        else:
            assert a.watch.exits + n_lost >= made, (made, a.watch.exits, out.lost)
        _check_memory(a, s)
        _check_ancestry(a, whole, exact=True)
        # events of the orphan chain's start may be among those lost: then missing, never wrong
        _check_ancestry(a, orphan[0], exact=n_lost == 0)
        if made > 2 * int(Path("/proc/sys/kernel/pid_max").read_text()):
            # the orphan's middle and top are gone and the churn took their pids since: the
            # ancestry above came from their entries, held for their children
            o = orphan[0]
            assert not any(
                e is not None and e.name in ("chain-mid", "chain-top")
                for e in map(a.table.get, (o.pids["mid"], o.pids["top"]))
            )
            assert a.table.stats["displaced"] > 0
    finally:
        whole.stop()
        for c in orphan:
            c.stop()


def _check_ancestry(a: Agent, c: Chain, *, exact: bool) -> None:
    """(b) the leaf's exec names the leaf, the middle, the top and this process, in order."""
    ev = _exec_of(a, c)
    want = [("chain-leaf", c.pids["leaf"]), ("chain-mid", c.pids["mid"]), ("chain-top", c.pids["top"])]
    want.append((_comm(os.getpid()), os.getpid()))
    got = _ancestry(ev, 4)
    assert ev["proc.pname"] == "chain-leaf" and ev["proc.ppid"] == c.pids["leaf"], ev
    if exact:
        assert got == want, (c.name, ev.get("proc.aname"), ev.get("proc.apid"))
    else:
        _not_wrong(got, want)


def _check_memory(a: Agent, s: Samples) -> None:
    """(a) every structure that grows with processes stays under its bound."""
    t = a.table
    assert max(s.table) <= t.max_entries, max(s.table)
    assert max(s.decoder) <= MAX_DECODER_PROCS, max(s.decoder)
    assert max(s.queued) <= a.runner.cfg.sensor.queue_events + a.backend.max_batch, max(s.queued)
    r = a.enricher.resolver
    for c in s.caches:
        assert c["containers_by_id"] <= r.max_entries and c["cgroup_paths"] <= 2 * r.max_entries + 1, c
        assert c["user_roots"] <= a.enricher.users.max_roots, c
        assert c["runner_containers"] <= MAX_CONTAINERS, c
    growth = max(s.rss_kb) - s.rss_kb[0]
    assert growth <= MAX_RSS_GROWTH_KB, f"RSS grew by {growth / 1024:.0f} MB"
    half = len(s.rss_kb) // 2
    late = max(s.rss_kb) - max(s.rss_kb[: half + 1])
    assert late <= MAX_LATE_RSS_GROWTH_KB, f"RSS grew by {late / 1024:.0f} MB over the second half"
