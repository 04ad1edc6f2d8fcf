"""Protect mode's cost on allowed operations: open(), exec and connect latency under enforcement
against no enforcement, in the same run (issue 13: at most 1.3x after warm-up). Root, podman, clang
and the NetGuard object (scripts/build-bpf.sh).

    .venv/bin/python benchmarks/protect_latency.py [--samples S] [--opens N] [--execs M]
                                                  [--connects C] [--rounds R] [--json]

One command for the three figures; the measurements are those of ``enforce_latency.py`` (open and
exec in a podman container under FileGuard: fanotify permission events with the allow cache) and
``enforce_connect.py`` (TCP connects in a network namespace and cgroup2 directory under NetGuard's
cgroup programs, 50 egress rules), whose docstrings say how each loop is timed. Each ratio is the
median over pairs of (enforced loop / the no-enforcement loop next to it), on wall time.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import enforce_connect
import enforce_latency
import harness

TARGET = 1.3


@dataclass
class Result:
    """Per operation: none and enforced (best loop, ns per operation) and the paired ratio."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=11, help="pairs of open/exec loops (default 11)")
    ap.add_argument("--opens", type=int, default=20_000, help="opens per loop (default 20,000)")
    ap.add_argument("--execs", type=int, default=200, help="execs per loop (default 200)")
    ap.add_argument("--connects", type=int, default=5_000, help="connects per round (default 5,000)")
    ap.add_argument("--rounds", type=int, default=8, help="rounds of connects (default 8)")
    ap.add_argument("--json", action="store_true", help="print machine-readable results")
    return ap.parse_args(argv)


def measure(args: argparse.Namespace) -> Result:
    if os.geteuid() != 0:
        raise SystemExit("protect_latency: needs root")
    files = enforce_latency.measure(
        argparse.Namespace(only=["open", "exec"], opens=args.opens, execs=args.execs, samples=args.samples)
    )
    res = Result(machine=files.machine)
    for f in files.ops:
        w = f["wall"]
        res.rows.append(
            {
                "operation": f["what"],
                "none_ns": w["baseline_ns"],
                "protect_ns": w["enforced_ns"],
                "ratio": w["ratio_paired_median"],
                "cpu_ratio": f["cpu"]["ratio_paired_median"],
            }
        )
    net = enforce_connect.measure_connect(args.connects, args.rounds)
    res.rows.append(
        {
            "operation": "TCP connect + close (loopback, 50 rules)",
            "none_ns": min(net.baseline_ns),
            "protect_ns": min(net.netguard_ns),
            "ratio": round(net.pair_ratio, 3),
            "cpu_ratio": None,
        }
    )
    return res


def print_table(res: Result) -> None:
    m = res.machine
    print(f"CPU: {m['cpu_model']} x {m['nproc']}, load {m['loadavg']}; ratio = median over pairs, wall time")
    print("| operation | none (best) | Protect (best) | ratio | cpu ratio | target | met? |")
    print("|---|---:|---:|---:|---:|---|---|")
    for r in res.rows:
        cpu = "-" if r["cpu_ratio"] is None else f"{r['cpu_ratio']:.2f}x"
        met = "yes" if r["ratio"] <= TARGET else "**no**"
        print(
            f"| {r['operation']} | {r['none_ns'] / 1000:,.2f} us | {r['protect_ns'] / 1000:,.2f} us "
            f"| {r['ratio']:.2f}x | {cpu} | <= {TARGET}x | {met} |"
        )


def main(argv: Sequence[str] | None = None) -> int:
    return harness.main(argv, parse_args, measure, print_table)


if __name__ == "__main__":
    raise SystemExit(main())
