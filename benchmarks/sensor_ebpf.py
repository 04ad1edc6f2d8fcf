"""eBPF sensor throughput: events/s without loss and agent CPU per 1,000 events/s, against the machine's
own open/exec rate measured in the same run (root; the program must be built: scripts/build-bpf.sh).

    .venv/bin/python benchmarks/sensor_ebpf.py [--opens N] [--execs N] [--json]

For each workload (open(2) of files in a temporary tree by one process; `/bin/true` spawned in a shell
loop):

1. **baseline**: the workload alone, no sensor: its rate (ops/s), the machine's ceiling;
2. **traced, idle syscalls**: the sensor running but following only an unrelated syscall (ptrace):
   the cost of the attached raw_syscalls tracepoints on the workload (adaptive selection);
3. **sensor**: the sensor following the workload's event type, reading and decoding every event
   in this process while the workload runs: events received, events lost (counted in the kernel),
   workload rate (ratio to baseline), and the reader's CPU time per 1,000 events/s (CPU seconds
   per second of wall time, divided by thousands of events per second).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from stockade.sensor.ebpf.backend import EbpfBackend


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def open_cmd(tree: Path, n: int) -> list[str]:
    prog = (
        "import os\n"
        f"root={str(tree)!r}\n"
        "paths=[os.path.join(root,f'd{i}',f'f{j}') for i in range(100) for j in range(10)]\n"
        f"for k in range({n}):\n"
        "    os.close(os.open(paths[k % 1000], os.O_RDONLY))\n"
    )
    return [sys.executable, "-c", prog]


def exec_cmd(n: int, marker: str) -> list[str]:
    return ["sh", "-c", f"i=0; while [ $i -lt {n} ]; do /bin/true {marker}; i=$((i+1)); done"]


def run_alone(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def run_traced(cmd: list[str], evttypes: set[str], match: Any) -> dict[str, Any]:
    b = EbpfBackend()
    b.start(evttypes)
    try:
        n = 0
        c0, t0 = _cpu(), time.perf_counter()
        p = subprocess.Popen(cmd)
        while p.poll() is None:
            n += sum(1 for e in b.poll(0.05) if match(e))
        wall_workload = time.perf_counter() - t0
        quiet = 0
        while quiet < 3:
            batch = b.poll(0.05)
            quiet = 0 if batch else quiet + 1
            n += sum(1 for e in batch if match(e))
        wall, cpu = time.perf_counter() - t0, _cpu() - c0
        lost = sum(b.refresh_stats().lost.values())
        total = b.stats.events
    finally:
        b.close()
    rate = total / wall
    return {
        "received": n,
        "lost": lost,
        "events_total": total,
        "workload_s": wall_workload,
        "events_per_s": rate,
        "reader_cpu_per_s": cpu / wall,
        "cpu_per_1k_eps": (cpu / wall) / (rate / 1000) if rate else None,
        "cpu_us_per_event": cpu / total * 1e6 if total else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--opens", type=int, default=300_000)
    ap.add_argument("--execs", type=int, default=5_000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    caps = EbpfBackend.probe()
    if not caps.available:
        sys.exit(f"eBPF backend unavailable: {caps.reason}")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as td:
        tree = Path(td) / "tree"
        for i in range(100):
            (tree / f"d{i}").mkdir(parents=True)
            for j in range(10):
                (tree / f"d{i}" / f"f{j}").write_text("x")
        prefix = str(tree) + "/"
        marker = str(Path(td) / "marker")
        for name, cmd, types, n, match in (
            (
                "open",
                open_cmd(tree, args.opens),
                {"openat"},
                args.opens,
                lambda e: str(e.get("fd.name", "")).startswith(prefix),
            ),
            (
                "exec",
                exec_cmd(args.execs, marker),
                {"execve"},
                args.execs,
                lambda e: e.get("proc.args") == marker,
            ),
        ):
            base = run_alone(cmd)
            idle_b = EbpfBackend()
            idle_b.start({"ptrace"})
            try:
                idle = run_alone(cmd)
            finally:
                idle_b.close()
            traced = run_traced(cmd, types, match)
            results[name] = {
                "ops": n,
                "baseline_ops_per_s": n / base,
                "idle_tracepoints_ops_per_s": n / idle,
                "idle_ratio": base / idle,
                "traced_ops_per_s": n / traced["workload_s"],
                "traced_ratio": base / traced["workload_s"],
                **traced,
            }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(
        f"{'workload':8} {'baseline/s':>11} {'idle-tp/s':>10} {'traced/s':>10} {'ratio':>6} "
        f"{'received':>9} {'lost':>6} {'ev/s':>9} {'cpu/1k ev/s':>12} {'us/ev':>6}"
    )
    for name, r in results.items():
        print(
            f"{name:8} {r['baseline_ops_per_s']:11.0f} {r['idle_tracepoints_ops_per_s']:10.0f} "
            f"{r['traced_ops_per_s']:10.0f} {r['traced_ratio']:6.2f} {r['received']:9d} {r['lost']:6d} "
            f"{r['events_per_s']:9.0f} {r['cpu_per_1k_eps'] or 0:12.4f} {r['cpu_us_per_event'] or 0:6.1f}"
        )
    print(
        "ratio = traced workload time / baseline time (1.00 = no slowdown); cpu/1k ev/s = reader CPU "
        "seconds per second per 1,000 events/s; lost = counted in the kernel (ring buffer full)"
    )


if __name__ == "__main__":
    main()
