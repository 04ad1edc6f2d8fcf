"""What learning costs: the eBPF sensor under a repeated-open workload whose cgroup is watched for
learning, against the same workload not watched and against the kernel filters off, in the same
run (root; the eBPF program must be built: scripts/build-bpf.sh).

    sudo .venv/bin/python benchmarks/sensor_learning.py [--quick] [--opens N] [--rounds R]
        [--micro-rounds R] [--json]

The workload is benchmarks/loadgen.py's ``open`` (open(2) + close(2) of the 100 files of a fresh
directory, again and again), run in a cgroup2 directory of the benchmark's own (it moves itself in
before it starts Python). The sensor is the agent as ``stockade up`` runs it (benchmarks/
sensor_ebpf.py's ``AgentSensor``: the eBPF backend, enrichment, the engine with the default rules,
the pipeline and its SQLite store), in these settings, one after the other:

* **off**: the kernel's filters off (``sensor.kernel_prefilter`` and ``kernel_interest_filter``):
  every open reaches Python, as before issue 12;
* **on**: the filters on, nothing watched: the default rules read none of these files, so the
  interest filter drops every open in the kernel;
* **on + other watched**: the same, while another cgroup is watched for learning (the kernel's
  learning switch is on: every open of every other process also looks its cgroup up);
* **on + parent watched**: the same, while another cgroup is watched as a parent
  (``set_watched_parents``: the cgroups below it are learned): every open of every other process
  also looks its ancestors up (the workload's cgroup is a child of the root: one helper call);
* **watched**: the workload's own cgroup watched (``set_watched({id: WATCH_LEARN |
  WATCH_SYSCALLS})``): each of its 100 files (and each file Python opens as it starts) reaches
  Python once, flagged ``_novel``; every repeat is dropped in the kernel and counted as
  ``learned_repeat``, and every syscall it makes sets its bit in the cgroup's syscall set.

For each: the highest sustained rate without loss (sensor_ebpf.py's step search: a step holds when
nothing was lost, every offered open was received or counted by a kernel filter, and the sensor had
it all within 0.1 x the step after the load), the events delivered to Python per second there, the
agent's CPU, and the workload's own CPU per open (the in-kernel cost lands there). Then bursts at
full speed (``--opens`` opens, ``--rounds`` per setting, the settings of one agent in turn so that
the machine's noise lands on each alike): the workload's rate against the machine alone (its
slowdown), its CPU and the agent's per open, the events delivered. The machine alone (the workload
in its cgroup, no sensor) is measured twice before and once after; the best run is the baseline.

Last, what each setting costs per call, where the machine's noise matters least: tight loops in C
(benchmarks time their CPU, not the wall clock) run in the workload's cgroup, ``--micro-rounds``
rounds of every setting of one agent in turn, best and median of the rounds: **open** (open(2) +
close(2) of one file no rule reads: the interest filter's, the learning lookup's and the syscall
set's cost per open) and **getppid** (a syscall the sensor does not follow: what the syscall set
costs every syscall), with no sensor too.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import harness
import sensor_ebpf

from stockade.sensor.containers.discover import cgroup2_mount
from stockade.sensor.interface import WATCH_LEARN, WATCH_SYSCALLS

NAME = "sensor_learning"
WATCH_ALL = WATCH_LEARN | WATCH_SYSCALLS
#: the settings, in the order they run (the agent is rebuilt for "off")
SETTINGS = ("on", "on + other watched", "on + parent watched", "watched", "off")
#: a setting's watches: (set_watched's, set_watched_parents')
Watches = tuple[dict[int, int], dict[int, int]]
LEGEND = (
    "sustained = highest rate without loss (>=: the generator's ceiling); deliv ev/s = events the agent "
    "decoded per second there (the whole machine's); agent cpu = its CPU seconds per second; us/offered = "
    "that per offered open; gen us/op = the workload's own CPU per open (paced steps also pay their "
    "sleeps); bursts = --opens opens at full speed, --rounds times per setting in turn: the load's rate "
    "(x mach: the median's), its CPU per open, the agent's per open, events delivered per burst, lost or "
    "missing; tight loops: their own CPU per call, the settings in turn"
)
#: the tight loop: ns of CPU per getppid(2), or per open(2) + close(2) of argv[2]
LOOP_C = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
static double cpu(void) { struct timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
    double secs = atof(argv[1]);
    const char *path = argc > 2 ? argv[2] : NULL;
    getchar();
    long n = 0;
    double t0 = cpu(), t;
    do {
        for (int i = 0; i < 1000; i++) {
            if (path) close(open(path, O_RDONLY)); else syscall(SYS_getppid);
        }
        n += 1000;
        t = cpu();
    } while (t - t0 < secs);
    printf("%.3f\n", (t - t0) / n * 1e9);
    return 0;
}
"""


class Cgroup:
    """A cgroup2 directory of the benchmark's own."""

    def __init__(self, tag: str) -> None:
        mount = cgroup2_mount()
        if mount is None:
            raise SystemExit(f"{NAME}: the cgroup2 hierarchy is not mounted")
        self.path = Path(mount) / f"stockade-bench-{tag}-{secrets.token_hex(4)}"
        self.path.mkdir()
        self.id = os.stat(self.path).st_ino

    def wrap(self, cmd: list[str]) -> list[str]:
        """`cmd`, run by a shell that first moves itself into this cgroup (exec keeps the pid)."""
        return ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(self.path), *cmd]

    def close(self) -> None:
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)


class CgroupWorkdir(sensor_ebpf.Workdir):
    """sensor_ebpf.py's work directory whose load generator runs in `cgroup`."""

    def __init__(self, cgroup: Cgroup) -> None:
        super().__init__(sensor_ebpf.loadgen.DEFAULT_EXEC_MAX)
        self.cgroup = cgroup

    def command(self, load: sensor_ebpf.Load, rate: float, seconds: float, count: int | None) -> list[str]:
        return self.cgroup.wrap(super().command(load, rate, seconds, count))


@dataclass
class Setting:
    """What one setting measured: its step search, its full-speed bursts, the learning counters."""

    name: str
    steps: list[sensor_ebpf.Step] = field(default_factory=list)
    best: sensor_ebpf.Step | None = None
    bursts: list[sensor_ebpf.Step] = field(default_factory=list)
    #: the kernel's learning counters' increase over the setting's steps and bursts
    learning: dict[str, int] = field(default_factory=dict)

    def burst_figures(self) -> dict[str, float]:
        """The bursts' load rate (best and median), the load's CPU per open and the agent's CPU per
        open (median): the cost of the setting to the workload and to the agent."""
        if not self.bursts:
            return {}
        rates = [b.achieved_per_s for b in self.bursts]
        return {
            "best_per_s": max(rates),
            "median_per_s": statistics.median(rates),
            "gen_us_per_op": statistics.median(b.gen_cpu_us_per_op for b in self.bursts),
            "agent_us_per_op": statistics.median(b.cpu_per_1k_offered * 1000 for b in self.bursts),
            "delivered": statistics.median(b.events for b in self.bursts),
            "lost": sum(b.lost + b.missing for b in self.bursts),
        }


class _Counted:
    """The learning counters' increase over what a setting ran (its steps and its bursts)."""

    def __init__(self, agent: sensor_ebpf.AgentSensor, st: Setting) -> None:
        self.backend, self.st = agent.backend, st

    def __enter__(self) -> None:
        self.before = self.backend.learning_stats(count_seen=False)

    def __exit__(self, *exc: object) -> None:
        after = self.backend.learning_stats(count_seen=False)
        for k, v in after.items():
            if k not in ("seen_capacity", "watched", "watched_parents"):
                self.st.learning[k] = self.st.learning.get(k, 0) + v - self.before.get(k, 0)


def _search(agent: sensor_ebpf.AgentSensor, wd: CgroupWorkdir, st: Setting, args: argparse.Namespace) -> None:
    """The step search of one setting of a running agent."""
    rates = sensor_ebpf.RATES["open"][1::2] if args.quick else sensor_ebpf.RATES["open"]
    seconds = 1.5 if args.quick else 4.0
    with _Counted(agent, st):
        st.steps, st.best = sensor_ebpf.search(
            agent, wd, "open", rates, seconds, 0 if args.quick else 2, sensor_ebpf._progress, st.name
        )


def _burst(agent: sensor_ebpf.AgentSensor, wd: CgroupWorkdir, st: Setting, n: int) -> None:
    with _Counted(agent, st):
        st.bursts.append(sensor_ebpf.run_step(agent, wd, "open", 0, 0, count=n, filters=st.name))
    sensor_ebpf._progress(st.bursts[-1])


class Micro:
    """The tight loops (LOOP_C), built once, run in `cgroup`: ns of CPU per call, per loop and setting."""

    LOOPS = ("open", "getppid")

    def __init__(self, where: Path, cgroup: Cgroup, seconds: float) -> None:
        cc = shutil.which("gcc") or shutil.which("cc")
        if cc is None:
            raise SystemExit(f"{NAME}: needs gcc (or cc) for the tight loops")
        src, self.binary = where / "loop.c", where / "loop"
        src.write_text(LOOP_C)
        subprocess.run([cc, "-O2", "-o", str(self.binary), str(src)], check=True)
        self.file = where / "opened"
        self.file.write_bytes(b"x")
        self.cgroup, self.seconds = cgroup, seconds
        self.ns: dict[str, dict[str, list[float]]] = {k: {} for k in self.LOOPS}

    def _one(self, loop: str) -> float:
        cpu = str(sorted(os.sched_getaffinity(0))[-1])
        cmd = ["taskset", "-c", cpu, str(self.binary), str(self.seconds)]
        cmd += [str(self.file)] if loop == "open" else []
        r = subprocess.run(self.cgroup.wrap(cmd), input="\n", capture_output=True, text=True, check=True)
        return float(r.stdout)

    def run(self, setting: str) -> None:
        """One round of each loop under `setting` (as it is set now)."""
        for loop in self.LOOPS:
            self.ns[loop].setdefault(setting, []).append(self._one(loop))

    def figures(self) -> dict[str, dict[str, dict[str, float]]]:
        """Per loop and setting: the best and the median ns per call."""
        return {
            loop: {k: {"best": min(v), "median": statistics.median(v)} for k, v in by.items()}
            for loop, by in self.ns.items()
        }


def _watch(agent: sensor_ebpf.AgentSensor, watches: Watches) -> None:
    agent.backend.set_watched(watches[0])
    agent.backend.set_watched_parents(watches[1])


def _phase(
    agent: sensor_ebpf.AgentSensor,
    wd: CgroupWorkdir,
    settings: dict[str, Setting],
    watches: dict[str, Watches],
    args: argparse.Namespace,
    micro: Micro,
) -> None:
    """Every measurement of the settings of one running agent: the step searches, then the bursts
    and the tight loops, the settings taking turns round after round."""
    try:
        for name, watched in watches.items():
            _watch(agent, watched)
            _search(agent, wd, settings[name], args)
        for _ in range(args.rounds):
            for name, watched in watches.items():
                _watch(agent, watched)
                _burst(agent, wd, settings[name], args.opens)
        for _ in range(args.micro_rounds):
            for name, watched in watches.items():
                _watch(agent, watched)
                micro.run(name)
    finally:
        agent.close()


def measure(args: argparse.Namespace, load: Cgroup, other: Cgroup) -> dict[str, Any]:
    """Every setting, the machine alone (best run) around them, the tight loops."""
    wd = CgroupWorkdir(load)
    runs: list[dict[str, Any]] = []
    settings = {name: Setting(name) for name in SETTINGS}
    base_s = 1.0 if args.quick else 2.0
    try:
        micro = Micro(wd.root, load, 0.3)
        runs += [sensor_ebpf.baseline(wd, "open", base_s) for _ in range(2)]
        for _ in range(args.micro_rounds):
            micro.run("no sensor")
        watches: dict[str, Watches] = {
            "on": ({}, {}),
            "on + other watched": ({other.id: WATCH_ALL}, {}),
            "on + parent watched": ({}, {other.id: WATCH_ALL}),
            "watched": ({load.id: WATCH_ALL}, {}),
        }
        agent = sensor_ebpf.AgentSensor(str(wd.root / "data-on"), True)
        _phase(agent, wd, settings, watches, args, micro)
        agent = sensor_ebpf.AgentSensor(str(wd.root / "data-off"), False)
        _phase(agent, wd, settings, {"off": ({}, {})}, args, micro)
        runs.append(sensor_ebpf.baseline(wd, "open", base_s))
    finally:
        wd.close()
    return {
        "settings": list(settings.values()),
        "baseline": {"best": max(runs, key=lambda r: r["ops_per_s"]), "runs": runs},
        "micro": micro.figures(),
    }


# -- reporting -----------------------------------------------------------------------------------


def _bound(st: Setting) -> str:
    """The highest sustained rate, as a lower bound where the generator's ceiling ended the search."""
    if st.best is None:
        return "no step held"
    best = st.best
    above = [x for x in st.steps if not x.holds and x.offered_per_s > best.offered_per_s]
    ge = ">= " if not above and any(x.ceiling for x in st.steps) else ""
    return f"{ge}{best.achieved_per_s:,.0f}/s"


def _print_micro(micro: dict[str, dict[str, dict[str, float]]]) -> None:
    for loop, by in micro.items():
        what = "open(2) + close(2) of a file no rule reads" if loop == "open" else "getppid(2)"
        print(f"\n{what} in a tight loop, ns of CPU per call, best of the rounds [median]:")
        ref = by.get("on", {}).get("best", 0.0)
        for name, f in by.items():
            extra = f" ({f['best'] - ref:+.1f} against `on`)" if name not in ("no sensor", "on") else ""
            print(f"  {name:20} {f['best']:8.1f} [{f['median']:8.1f}]{extra}")


def _print(out: dict[str, Any], settings: list[Setting]) -> None:
    base = out["baseline"]
    machine = base["best"]["ops_per_s"]
    print(
        f"machine alone (the workload in its cgroup, no sensor, best of {len(base['runs'])}): "
        f"{machine:,.0f} opens/s, {base['best']['gen_cpu_us_per_op']:.2f} us CPU each"
    )
    print(
        f"{'setting':20} {'sustained':>13} {'x mach':>6} {'deliv ev/s':>10} {'agent cpu':>9} "
        f"{'us/offered':>10} | bursts: {'best/s':>9} {'median/s':>9} {'x mach':>6} {'gen us/op':>9} "
        f"{'agent us/op':>11} {'delivered':>9} {'lost':>5}"
    )
    for st in settings:
        b = st.best
        row = f"{st.name:20} {_bound(st):>13} "
        row += (
            f"{b.achieved_per_s / machine:6.3f} {b.events_per_s:10,.0f} {b.sensor_cpu_share:9.2f} "
            f"{b.cpu_per_1k_offered * 1000:10.2f} | "
            if b is not None
            else f"{'':6} {'':10} {'':9} {'':10} | "
        )
        f = st.burst_figures()
        if f:
            row += (
                f"{'':8}{f['best_per_s']:9,.0f} {f['median_per_s']:9,.0f} {f['median_per_s'] / machine:6.3f} "
                f"{f['gen_us_per_op']:9.2f} {f['agent_us_per_op']:11.3f} {f['delivered']:9,.0f} {f['lost']:5,.0f}"
            )
        print(row)
        if st.bursts:
            causes = st.bursts[-1].filtered_by_cause
            print(
                f"{'':20} last burst filtered: "
                + (", ".join(f"{c} {n:,}" for c, n in causes.items()) or "none")
            )
        if any(st.learning.values()):
            print(f"{'':20} learning: " + ", ".join(f"{k} {v:,}" for k, v in st.learning.items()))
    _print_micro(out["micro"])
    print(f"({out['cpus']} CPUs; {out['seconds']} s) {LEGEND}")


def _options() -> argparse.Namespace | None:
    """The command line (module docstring), or None when this process cannot run it (said)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter steps, fewer rates and rounds")
    ap.add_argument("--opens", type=int, default=None, help="the full-speed burst (200,000; quick 50,000)")
    ap.add_argument("--rounds", type=int, default=None, help="full-speed bursts per setting (5; quick 2)")
    ap.add_argument("--micro-rounds", type=int, default=None, help="rounds of the tight loops (15; quick 5)")
    got = harness.sensor_args(ap, NAME, ebpf=True)
    if got is None:
        return None
    args = got[0]
    args.opens = args.opens or (50_000 if args.quick else 200_000)
    args.rounds = args.rounds or (2 if args.quick else 5)
    args.micro_rounds = args.micro_rounds or (5 if args.quick else 15)
    return args


def main() -> int:
    """Measure and print (module docstring)."""
    args = _options()
    if args is None:
        return 2
    t0 = time.monotonic()
    load, other = Cgroup("load"), Cgroup("other")
    try:
        got = measure(args, load, other)
    finally:
        load.close()
        other.close()
    settings: list[Setting] = got["settings"]
    out: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "machine": harness.machine_info(),
        "baseline": got["baseline"],
        "settings": [{**asdict(s), "burst_figures": s.burst_figures()} for s in settings],
        "micro": got["micro"],
        "seconds": round(time.monotonic() - t0, 1),
    }
    if args.json:
        harness.print_json(out)
    else:
        _print(out, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
