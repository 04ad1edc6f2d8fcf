"""Online anomaly scoring's cost: zero trust's per-event path with the anomaly models, against the
same path without them, in the same run.

One command::

    .venv/bin/python benchmarks/anomaly_online.py [--count N] [--seed S] [--repeat R] [--cpu N | --no-pin] [--json]

What it does: generates the realistic event mix of ``benchmarks/gen_events.py`` (100,000 events by
default) and decodes it, pins itself to one CPU, then, best of ``--repeat`` rounds (CPU time), for
``anomaly.enabled`` off and on, each on a fresh :class:`~stockade.runtime.zerotrust.ZeroTrust` (no
store, no enforcers: what is measured is the Python path):

* **Discover**: every event observed once by workloads that are learning (the profile learns
  it, and with the models on, its token is learned too);
* **Monitor**: every workload moved to Monitor (its policy generated, its model frozen and
  calibrated: timed apart as **freeze**), then the same events again: each is decided by the
  policy and, with the models on, scored.

It prints ns per event and the ratio on/off. Every event reaches Python here, as with the fallback
sensors; with the eBPF sensor only a container's new operations do (repeats are counted in the
kernel), so the cost per event the node makes is this times the share of new operations.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import gen_events
import harness
import orjson

from stockade.config import load_config
from stockade.model.clock import FakeClock
from stockade.runtime.zerotrust import ZeroTrust


@dataclass
class Result:
    events: int
    workloads: int
    cpu: int | None
    #: (phase, "off"/"on") -> ns per event (best round)
    figures: dict[str, float] = field(default_factory=dict)
    spread: dict[str, float] = field(default_factory=dict)
    freeze_ms: float = 0.0
    anomaly_alerts: int = 0
    machine: dict[str, Any] = field(default_factory=harness.machine_info)


def _zero_trust(on: bool, data_dir: str) -> ZeroTrust:
    cfg = load_config(
        None,
        {"data_dir": data_dir, "anomaly": {"enabled": on}, "zero_trust": {"promotion": {"to": "off"}}},
        environ={},
    )
    zt = ZeroTrust(cfg, None, lambda _a: None, clock=FakeClock(), enforce=False, discover=list)
    zt.start()
    return zt


def _feed(zt: ZeroTrust, events: list[dict[str, Any]]) -> tuple[float, int]:
    gc.collect()
    observe = zt.observe
    n = 0
    c0 = time.process_time()
    for e in events:
        n += len(observe(e))
    return time.process_time() - c0, n


def _monitor(zt: ZeroTrust) -> float:
    c0 = time.process_time()
    for w in list(zt.workloads):
        zt.set_mode(w, "monitor", who="benchmark", why="benchmark", force=True)
    return time.process_time() - c0


def _round(on: bool, events: list[dict[str, Any]], rounds: dict[str, harness.BestOf]) -> tuple[float, int]:
    tag = "on" if on else "off"
    with tempfile.TemporaryDirectory(prefix="stk-anomaly-bench-") as d:
        zt = _zero_trust(on, d)
        try:
            cpu, _ = _feed(zt, events)
            rounds[f"Discover, anomaly {tag}"].cpu.append(cpu)
            freeze = _monitor(zt)
            cpu, alerts = _feed(zt, events)
            rounds[f"Monitor, anomaly {tag}"].cpu.append(cpu)
            anomalies = zt.anomaly.stats["alerts"] if zt.anomaly is not None else 0
            return (freeze if on else 0.0), (anomalies if on else alerts * 0)
        finally:
            zt.close()


def measure(args: argparse.Namespace) -> Result:
    cpu = None if args.no_pin else harness.pin_cpu(args.cpu)
    chunks = gen_events.generate(args.count, args.seed)
    events = [orjson.loads(line) for chunk in chunks for line in chunk.splitlines()]
    names = [f"{phase}, anomaly {tag}" for phase in ("Discover", "Monitor") for tag in ("off", "on")]
    rounds = {n: harness.BestOf(n) for n in names}
    freeze, alerts, workloads = [], 0, 0
    for _ in range(args.repeat):
        _round(False, events, rounds)
        f, alerts = _round(True, events, rounds)
        freeze.append(f)
    with tempfile.TemporaryDirectory() as d:
        zt = _zero_trust(False, d)
        _feed(zt, events[:10_000])
        workloads = len(zt.workloads)
        zt.close()
    n = len(events)
    return Result(
        events=n,
        workloads=workloads,
        cpu=cpu,
        figures={k: b.best / n * 1e9 for k, b in rounds.items()},
        spread={k: b.spread for k, b in rounds.items()},
        freeze_ms=min(freeze) * 1e3,
        anomaly_alerts=alerts,
    )


def print_table(r: Result) -> None:
    print(f"{r.events:,} events, about {r.workloads} workloads; cpu {r.cpu}, {r.machine['cpu_model']}")
    print(f"load {r.machine['loadavg']}")
    print(f"{'phase':<10}{'off ns/event':>14}{'on ns/event':>14}{'on / off':>10}{'spread on':>11}")
    for phase in ("Discover", "Monitor"):
        off, on = r.figures[f"{phase}, anomaly off"], r.figures[f"{phase}, anomaly on"]
        print(f"{phase:<10}{off:>14.0f}{on:>14.0f}{on / off:>10.2f}{r.spread[f'{phase}, anomaly on']:>11.0%}")
    print(f"freeze and calibrate every workload's model (with the policies): {r.freeze_ms:.0f} ms")
    print(f"anomaly alerts in Monitor (the same events again): {r.anomaly_alerts}")


parse = harness.mix_parser(__doc__, 100_000)


if __name__ == "__main__":
    raise SystemExit(harness.main(None, parse, measure, print_table))
