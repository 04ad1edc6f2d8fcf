"""The native sensor under load: the agent's CPU per 1,000 events/s and the highest sustained rate it
keeps up with without loss, against this machine's own spawn and open rates measured in the same run.

    sudo .venv/bin/python benchmarks/sensor_throughput.py [--backend fallback|auto] [--execs N] [--opens N]

Runs the real agent path: the sensor backends, enrichment (process table, containers), the engine with
the default rules, a pipeline that counts alerts. Root is needed (the sensor's kernel interfaces).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness

from stockade.config import load_config
from stockade.engine.build import build_engine
from stockade.rules.defaults import builtin_rule_files
from stockade.runtime.pipeline import Pipeline
from stockade.runtime.sensing import SensorRunner

NAME = "sensor_throughput"

REPO = Path(__file__).resolve().parents[1]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def spawn_burst(n: int, rate: float | None) -> float:
    """n execs of /bin/true from a shell loop (throttled to `rate`/s if given); wall seconds."""
    if rate is None:
        script = f"i=0; while [ $i -lt {n} ]; do /bin/true; i=$((i+1)); done"
    else:
        per = max(1, int(rate / 50))  # in slices of 20 ms
        script = (
            f"i=0; while [ $i -lt {n} ]; do j=0; while [ $j -lt {per} ]; do /bin/true; j=$((j+1)); done; "
            f"i=$((i+{per})); sleep 0.02; done"
        )
    t = time.monotonic()
    subprocess.run(["/bin/sh", "-c", script], check=True)
    return time.monotonic() - t


def open_burst(root: Path, n: int) -> float:
    code = (
        "import os,sys\n"
        "r=sys.argv[1]; n=int(sys.argv[2])\n"
        "for i in range(n):\n"
        "    fd=os.open(os.path.join(r, 'f%d' % i), os.O_RDONLY); os.close(fd)\n"
    )
    t = time.monotonic()
    subprocess.run([sys.executable, "-c", code, str(root), str(n)], check=True)
    return time.monotonic() - t


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self, _alert: Any) -> None:
        self.n += 1


def measure(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="stockade-sensor-bench-"))
    for i in range(args.opens):  # distinct files: fanotify merges repeated identical events
        (tmp / f"f{i}").write_bytes(b"x")
    out: dict[str, Any] = {}
    # baselines: the machine alone
    base_exec = spawn_burst(args.execs, None)
    base_open = open_burst(tmp, args.opens)
    out["baseline"] = {
        "execs_per_s": round(args.execs / base_exec),
        "opens_per_s": round(args.opens / base_open),
    }

    cfg = load_config(None, {"sensor": {"backend": args.backend, "watch_paths": [str(tmp)]}}, environ={})
    engine, _ = build_engine(cfg, [str(p) for p in builtin_rule_files()])
    alerts = Counter()
    pipe = Pipeline(engine, [alerts])
    runner = SensorRunner(cfg, pipe, engine.evttypes("syscall"))
    runner.start()
    time.sleep(0.5)
    out["backend"] = runner.plan.describe()["backend"]
    runs = []
    try:
        bursts: list[tuple[str, Callable[[], float], int]] = [
            ("execs", lambda: spawn_burst(args.execs, None), args.execs),
            ("opens", lambda: open_burst(tmp, args.opens), args.opens),
        ]
        for label, work, n in bursts:
            before_ev, before_cpu, before_lost = runner.events, _cpu(), runner.status()["lost_total"]
            t0 = time.monotonic()
            wall = work()
            # let the agent drain what is queued
            deadline = time.monotonic() + 30
            last = -1
            while time.monotonic() < deadline and runner.events != last:
                last = runner.events
                time.sleep(0.5)
            busy = time.monotonic() - t0
            got = runner.events - before_ev
            cpu = _cpu() - before_cpu
            lost = runner.status()["lost_total"] - before_lost
            rate = n / wall
            runs.append(
                {
                    "burst": label,
                    "count": n,
                    "offered_per_s": round(rate),
                    "events_received": got,
                    "lost_counted": lost,
                    "agent_cpu_s": round(cpu, 2),
                    # CPU share (1.0 = one core) the agent needs per 1,000 events/s it handles
                    "cpu_per_1000_events_per_s": round((cpu / busy) / max(got / busy / 1000, 1e-9), 3),
                }
            )
    finally:
        runner.close()
    out["runs"] = runs
    out["alerts"] = alerts.n
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="fallback", choices=["fallback", "auto", "ebpf"])
    ap.add_argument("--execs", type=int, default=5000)
    ap.add_argument("--opens", type=int, default=100000)
    got = harness.sensor_args(ap, NAME)
    if got is None:
        return 2
    args = got[0]
    res = measure(args)
    if args.json:
        harness.print_json(res)
        return 0
    b = res["baseline"]
    print(f"backend: {res['backend']}")
    print(f"machine alone: {b['execs_per_s']:,} execs/s, {b['opens_per_s']:,} opens/s")
    print(
        f"{'burst':8s} {'offered/s':>10s} {'x machine':>9s} {'received':>9s} {'lost':>6s} {'cpu/1k ev/s':>12s}"
    )
    for r in res["runs"]:
        ref = b["execs_per_s"] if r["burst"] == "execs" else b["opens_per_s"]
        print(
            f"{r['burst']:8s} {r['offered_per_s']:>10,} {r['offered_per_s'] / ref:>9.2f} {r['events_received']:>9,} "
            f"{r['lost_counted']:>6,} {r['cpu_per_1000_events_per_s']:>12.3f}"
        )
    print(f"alerts raised: {res['alerts']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
