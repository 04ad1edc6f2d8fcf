"""What grouping alerts into incidents costs, against storing the same alerts (issue 15).

    .venv/bin/python benchmarks/incidents.py [--count N] [--workloads W] [--repeat R] [--json]

``--count`` alerts (20,000) spread over ``--workloads`` workloads (200; a container each, tags of
several ATT&CK tactics, a process tree per workload) go, in each of ``--repeat`` rounds (3), to a
fresh SQLite store in a temporary directory, in batches of 500:

* **baseline**: ``Store.add_alerts`` (what the pipeline does with every alert already);
* **incidents**: :class:`stockade.runtime.incidents.IncidentService` grouping them (correlation,
  scores, the incident rows, their alert links and timeline entries, one transaction per batch).

The figures: alerts per second of CPU time (best round) for each, and the ratio incidents /
baseline (what grouping adds per alert, in units of storing it). A default run takes ~20 s.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import harness

from stockade.config import IncidentsConfig
from stockade.model.alert import Alert
from stockade.runtime.incidents import IncidentService
from stockade.storage.incidents import IncidentStore
from stockade.storage.store import Store

BATCH = 500
TAGS = (
    ["mitre_execution", "T1059"],
    ["mitre_discovery", "T1082"],
    ["mitre_credential_access", "T1552.001"],
    ["mitre_command_and_control", "T1071"],
    ["mitre_persistence", "T1053.003"],
)
PRIORITIES = ("Warning", "Notice", "Error", "Critical")


def alerts(count: int, workloads: int, seed: int = 1) -> list[Alert]:
    """`count` alerts over `workloads` workloads, a second apart per workload on average."""
    rnd = random.Random(seed)
    t0 = time.time_ns()
    out = []
    for i in range(count):
        w = rnd.randrange(workloads)
        tags = rnd.choice(TAGS)
        out.append(
            Alert(
                time_ns=t0 + i * 1_000_000,
                rule=f"Rule {rnd.randrange(40)}",
                priority=rnd.choice(PRIORITIES),
                output=f"something happened in workload {w}",
                output_fields={
                    "container.id": f"{w:012x}",
                    "proc.pid": 100_000 + 2 * w,
                    "proc.ppid": 100_001 + 2 * w,
                },
                source="syscall",
                tags=list(tags),
                hostname="bench",
                workload=f"container/localhost/w{w}",
            )
        )
    return out


def _cpu() -> float:
    return time.process_time()


def _round(batch: list[Alert], run: Callable[[Store, list[Alert]], None]) -> float:
    with tempfile.TemporaryDirectory() as d:
        store = Store(f"sqlite:///{Path(d) / 'b.db'}")
        try:
            t = _cpu()
            for i in range(0, len(batch), BATCH):
                run(store, batch[i : i + BATCH])
            return _cpu() - t
        finally:
            store.close()


def _baseline(store: Store, part: list[Alert]) -> None:
    store.add_alerts(part)


def _incidents() -> Callable[[Store, list[Alert]], None]:
    services: dict[int, IncidentService] = {}

    def run(store: Store, part: list[Alert]) -> None:
        svc = services.get(id(store))
        if svc is None:
            svc = services[id(store)] = IncidentService(IncidentsConfig(), IncidentStore(store))
        svc._process(part)  # the service's own step, without its thread

    return run


@dataclass
class Result:
    count: int
    workloads: int
    baseline_alerts_per_cpu_s: float
    incidents_alerts_per_cpu_s: float
    ratio: float
    incidents_opened: int
    machine: dict[str, object]


def measure(args: argparse.Namespace) -> Result:
    batch = alerts(args.count, args.workloads)
    base = min(_round(batch, _baseline) for _ in range(args.repeat))
    inc = min(_round(batch, _incidents()) for _ in range(args.repeat))
    with tempfile.TemporaryDirectory() as d:
        store = Store(f"sqlite:///{Path(d) / 'c.db'}")
        svc = IncidentService(IncidentsConfig(), IncidentStore(store))
        for i in range(0, len(batch), BATCH):
            svc._process(batch[i : i + BATCH])
        opened = svc.counts.opened
        store.close()
    return Result(
        args.count,
        args.workloads,
        round(args.count / base),
        round(args.count / inc),
        round(inc / base, 2),
        opened,
        harness.machine_info(),
    )


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=20_000)
    ap.add_argument("--workloads", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    return ap.parse_args(argv)


def print_table(r: Result) -> None:
    print(f"{r.count:,} alerts over {r.workloads} workloads ({r.incidents_opened} incidents opened)")
    print(f"  baseline  (store the alerts):        {r.baseline_alerts_per_cpu_s:>9,} alerts per CPU second")
    print(f"  incidents (group, score, store them): {r.incidents_alerts_per_cpu_s:>9,} alerts per CPU second")
    print(f"  ratio incidents / baseline: {r.ratio:.2f}x the CPU of storing each alert")


if __name__ == "__main__":
    raise SystemExit(harness.main(None, parse, measure, print_table))
