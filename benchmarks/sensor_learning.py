"""What learning costs: the eBPF sensor under a repeated-open workload whose cgroup is watched for
learning, against the same workload not watched and against the kernel filters off, in the same
run (root; the eBPF program must be built: scripts/build-bpf.sh).

    sudo .venv/bin/python benchmarks/sensor_learning.py [--quick] [--json] [--rounds N]

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
* **watched**: the workload's own cgroup watched (``set_watched({id: WATCH_LEARN |
  WATCH_SYSCALLS})``): each of its 100 files (and each file Python opens as it starts) reaches
  Python once, flagged ``_novel``; every repeat is dropped in the kernel and counted as
  ``learned_repeat``, and every syscall it makes sets its bit in the cgroup's syscall set.

For each: the highest sustained rate without loss (sensor_ebpf.py's step search: a step holds when
nothing was lost, every offered open was received or counted by a kernel filter, and the sensor had
it all within 0.1 x the step after the load), the events delivered to Python per second there, the
agent's CPU, and the workload's own CPU per open (the in-kernel cost lands there); then a burst at
full speed (``--opens``), whose rate against the machine alone is the workload's slowdown. The
machine alone (the workload in its cgroup, no sensor) is measured twice before and once after; the
best run is the baseline.

Then the per-syscall cost of the syscall sets (``--syscall-rounds``): a tight getppid(2) loop in C
(its CPU time per call), with no sensor, with the sensor but no cgroup watched for its syscalls, with
some other cgroup watched for them (every syscall of every process looks its cgroup up), and with
the loop's own cgroup watched (its bit is set, or found set), interleaved, best of the rounds.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import harness
import sensor_ebpf

from stockade.runtime.sensing import PROCESS_EVTTYPES
from stockade.sensor.containers.cgroup import cgroup2_mount
from stockade.sensor.ebpf.backend import EbpfBackend
from stockade.sensor.interface import WATCH_LEARN, WATCH_SYSCALLS

NAME = "sensor_learning"
WATCH_ALL = WATCH_LEARN | WATCH_SYSCALLS
#: the settings, in the order they run (the agent is rebuilt for "off")
SETTINGS = ("on", "on + other watched", "watched", "off")
#: the getppid loop: CPU seconds per call over a given number of CPU seconds
PPID_C = r"""
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
static double cpu(void) { struct timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 0.3;
    getchar();
    long n = 0;
    double t0 = cpu(), t;
    do { for (int i = 0; i < 10000; i++) syscall(SYS_getppid); n += 10000; t = cpu(); } while (t - t0 < secs);
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
        self.path = Path(mount[0]) / f"stockade-bench-{tag}-{secrets.token_hex(4)}"
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
    """What one setting measured."""

    name: str
    steps: list[sensor_ebpf.Step] = field(default_factory=list)
    best: sensor_ebpf.Step | None = None
    burst: sensor_ebpf.Step | None = None
    #: the kernel's learning counters' increase over the setting (watched settings)
    learning: dict[str, int] = field(default_factory=dict)


def _learning_delta(b: EbpfBackend, before: dict[str, int]) -> dict[str, int]:
    after = b.learning_stats(count_seen=False)
    return {k: v - before.get(k, 0) for k, v in after.items() if k not in ("seen_capacity", "watched")}


def _run_setting(
    agent: sensor_ebpf.AgentSensor, wd: CgroupWorkdir, name: str, args: argparse.Namespace
) -> Setting:
    """The step search and the burst for one setting of a running agent."""
    st = Setting(name)
    before = agent.backend.learning_stats(count_seen=False)
    rates = sensor_ebpf.RATES["open"][1::2] if args.quick else sensor_ebpf.RATES["open"]
    seconds = 1.5 if args.quick else 4.0
    st.steps, st.best = sensor_ebpf.search(
        agent, wd, "open", rates, seconds, 0 if args.quick else 2, sensor_ebpf._progress, name
    )
    st.burst = sensor_ebpf.run_step(agent, wd, "open", 0, 0, count=args.opens, filters=name)
    sensor_ebpf._progress(st.burst)
    st.learning = _learning_delta(agent.backend, before)
    return st


def measure_settings(
    args: argparse.Namespace, load: Cgroup, other: Cgroup
) -> tuple[list[Setting], dict[str, Any]]:
    """Every setting, and the machine alone (best run) around them."""
    wd = CgroupWorkdir(load)
    runs: list[dict[str, Any]] = []
    out: list[Setting] = []
    base_s = 1.0 if args.quick else 2.0
    try:
        runs += [sensor_ebpf.baseline(wd, "open", base_s) for _ in range(2)]
        agent = sensor_ebpf.AgentSensor(str(wd.root / "data-on"), True)
        try:
            for name, watched in (
                ("on", {}),
                ("on + other watched", {other.id: WATCH_ALL}),
                ("watched", {load.id: WATCH_ALL}),
            ):
                agent.backend.set_watched(watched)
                out.append(_run_setting(agent, wd, name, args))
        finally:
            agent.close()
        agent = sensor_ebpf.AgentSensor(str(wd.root / "data-off"), False)
        try:
            out.append(_run_setting(agent, wd, "off", args))
        finally:
            agent.close()
        runs.append(sensor_ebpf.baseline(wd, "open", base_s))
    finally:
        wd.close()
    base = max(runs, key=lambda r: r["ops_per_s"])
    return out, {"best": base, "runs": runs}


# -- the syscall sets: per-syscall cost ----------------------------------------------------------


def _ppid_binary(where: Path) -> Path:
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise SystemExit(f"{NAME}: needs gcc (or cc) for the getppid loop")
    src, out = where / "ppid.c", where / "ppid"
    src.write_text(PPID_C)
    subprocess.run([cc, "-O2", "-o", str(out), str(src)], check=True)
    return out


def _ppid(binary: Path, cgroup: Cgroup | None, seconds: float) -> float:
    """ns of CPU per getppid call of one run (on the last CPU), in `cgroup` if given."""
    cpu = str(sorted(os.sched_getaffinity(0))[-1])
    cmd = ["taskset", "-c", cpu, str(binary), str(seconds)]
    if cgroup is not None:
        cmd = cgroup.wrap(cmd)
    r = subprocess.run(cmd, input="\n", capture_output=True, text=True, check=True)
    return float(r.stdout)


def measure_marking(rounds: int, load: Cgroup, other: Cgroup) -> dict[str, Any]:
    """ns per getppid call: no sensor, sensor, marking on for another cgroup, for the loop's own."""
    tmp = Path(tempfile.mkdtemp(prefix="stockade-bench-learning-"))
    res: dict[str, list[float]] = {k: [] for k in ("no sensor", "sensor", "other watched", "own watched")}
    try:
        binary = _ppid_binary(tmp)
        for _ in range(rounds):
            res["no sensor"].append(_ppid(binary, load, 0.3))
        b = EbpfBackend()
        b.start({"openat"} | PROCESS_EVTTYPES)
        try:
            for _ in range(rounds):
                b.set_watched({})
                res["sensor"].append(_ppid(binary, load, 0.3))
                b.set_watched({other.id: WATCH_SYSCALLS})
                res["other watched"].append(_ppid(binary, load, 0.3))
                b.set_watched({load.id: WATCH_SYSCALLS})
                res["own watched"].append(_ppid(binary, load, 0.3))
            used = sorted(b.syscalls_used(load.id))
        finally:
            b.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    best = {k: min(v) for k, v in res.items()}
    return {
        "best_ns": best,
        "median_ns": {k: statistics.median(v) for k, v in res.items()},
        "runs": res,
        "used": used,
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


def _print(
    settings: list[Setting], base: dict[str, Any], marking: dict[str, Any] | None, out: dict[str, Any]
) -> None:
    machine = base["best"]["ops_per_s"]
    print(
        f"machine alone (the workload in its cgroup, no sensor, best of {len(base['runs'])}): "
        f"{machine:,.0f} opens/s, {base['best']['gen_cpu_us_per_op']:.2f} us CPU each"
    )
    print(
        f"{'setting':20} {'sustained':>13} {'x mach':>6} {'deliv ev/s':>10} {'agent cpu':>9} "
        f"{'us/offered':>10} {'gen us/op':>9} {'full speed/s':>12} {'x mach':>6} {'gen us/op':>9}  filtered by cause (burst)"
    )
    for st in settings:
        b, u = st.best, st.burst
        row = f"{st.name:20} {_bound(st):>13} "
        row += (
            f"{b.achieved_per_s / machine:6.3f} {b.events_per_s:10,.0f} {b.sensor_cpu_share:9.2f} "
            f"{b.cpu_per_1k_offered * 1000:10.2f} {b.gen_cpu_us_per_op:9.2f} "
            if b is not None
            else f"{'':6} {'':10} {'':9} {'':10} {'':9} "
        )
        if u is not None:
            causes = ", ".join(f"{c} {n:,}" for c, n in u.filtered_by_cause.items()) or "none"
            row += f"{u.achieved_per_s:12,.0f} {u.achieved_per_s / machine:6.3f} {u.gen_cpu_us_per_op:9.2f}  {causes}"
            row += f"; received {u.received:,}, lost {u.lost:,}, missing {u.missing:,}"
        print(row)
        if st.learning:
            print(f"{'':20} learning: " + ", ".join(f"{k} {v:,}" for k, v in st.learning.items()))
    if marking is not None:
        best = marking["best_ns"]
        print("\ngetppid(2) in a tight loop, ns of CPU per call (best of the rounds; median in brackets):")
        for k, v in best.items():
            extra = (
                f" ({v - best['sensor']:+.1f} against the sensor alone)"
                if k not in ("no sensor", "sensor")
                else ""
            )
            print(f"  {k:14} {v:7.1f} [{marking['median_ns'][k]:7.1f}]{extra}")
        print(f"  the loop's syscall set: {', '.join(marking['used'])}")
    print(
        f"({out['cpus']} CPUs; {out['seconds']} s) sustained = highest rate without loss (>=: the generator's "
        "ceiling); deliv ev/s = events the agent decoded per second there (the whole machine's); agent cpu = "
        "its CPU seconds per second; us/offered = that per offered open; gen us/op = the workload's own CPU "
        "per open (paced steps also pay their sleeps); full speed = a burst of --opens opens at full speed"
    )


def main() -> int:
    """Measure and print (module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter steps, fewer rates")
    ap.add_argument(
        "--opens", type=int, default=None, help="the full-speed burst (default 200,000; quick 50,000)"
    )
    ap.add_argument("--syscall-rounds", type=int, default=None, help="rounds of the getppid loop (0: none)")
    got = harness.sensor_args(ap, NAME, ebpf=True)
    if got is None:
        return 2
    args = got[0]
    args.opens = args.opens or (50_000 if args.quick else 200_000)
    rounds = args.syscall_rounds if args.syscall_rounds is not None else (5 if args.quick else 15)
    t0 = time.monotonic()
    load, other = Cgroup("load"), Cgroup("other")
    try:
        settings, base = measure_settings(args, load, other)
        marking = measure_marking(rounds, load, other) if rounds else None
    finally:
        load.close()
        other.close()
    out: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": os.cpu_count(),
        "machine": harness.machine_info(),
        "baseline": base,
        "settings": [asdict(s) for s in settings],
        "syscall_marking": marking,
        "seconds": round(time.monotonic() - t0, 1),
    }
    if args.json:
        harness.print_json(out)
    else:
        _print(settings, base, marking, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
