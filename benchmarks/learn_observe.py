"""Learning cost: ``Learner.observe`` per event, against ``operation_of`` (its floor) in the same run.

One command::

    .venv/bin/python benchmarks/learn_observe.py [--count N] [--seed S] [--repeat R] [--cpu N | --no-pin] [--json]

What it does: generates the realistic event mix of ``benchmarks/gen_events.py`` (200,000 events by
default), decodes it, splits it per workload (``stockade.behavior.workload``) as the runtime would,
and pins itself to one CPU. Then, best of ``--repeat`` rounds (CPU time):

* **call floor**: a no-op method per event (Python's own per-event cost);
* **operation_of**: the one mapping event -> operation, which every observe pays;
* **observe, learning**: a fresh learner per workload, every event observed once (what is new is
  learned: generalisation, bounds);
* **observe, repeats**: the same events again into the learned profiles: everything is a repeat,
  the steady state of a workload once learned.

It prints ns per event and the ratio to ``operation_of``.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gen_events
import harness
import orjson

from stockade.behavior.learn import Learner
from stockade.behavior.model import Profile
from stockade.behavior.ops import operation_of
from stockade.behavior.workload import workload_of_event
from stockade.model.clock import FakeClock


@dataclass
class Result:
    events: int
    workloads: int
    entries: int
    overflow: int
    cpu: int | None
    figures: dict[str, float] = field(default_factory=dict)  # name -> ns per event (best round)
    spread: dict[str, float] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=harness.machine_info)


class _Noop:
    def observe(self, _data: dict[str, Any]) -> None:
        return None


def _time(best: harness.BestOf, fn: Callable[..., None], *args: Any) -> None:
    gc.collect()
    c0, w0 = time.process_time(), time.perf_counter()
    fn(*args)
    best.cpu.append(time.process_time() - c0)
    best.wall.append(time.perf_counter() - w0)


def _calls(events: list[dict[str, Any]]) -> None:
    noop = _Noop()
    for e in events:
        noop.observe(e)


def _operations(events: list[dict[str, Any]]) -> None:
    for e in events:
        operation_of(e)


def _learn(learners: dict[str, Learner], groups: list[tuple[str, list[dict[str, Any]]]]) -> None:
    for w, evs in groups:
        observe = learners[w].observe
        for e in evs:
            observe(e)


def measure(args: argparse.Namespace) -> Result:
    cpu = None if args.no_pin else harness.pin_cpu(args.cpu)
    chunks = gen_events.generate(args.count, args.seed)
    events = [orjson.loads(line) for chunk in chunks for line in chunk.splitlines()]
    by_workload: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        by_workload.setdefault(workload_of_event(e).id, []).append(e)
    groups = list(by_workload.items())
    rounds = {
        n: harness.BestOf(n) for n in ("call floor", "operation_of", "observe, learning", "observe, repeats")
    }
    learners: dict[str, Learner] = {}
    for _ in range(args.repeat):
        _time(rounds["call floor"], _calls, events)
        _time(rounds["operation_of"], _operations, events)
        learners = {w: Learner(Profile(w), clock=FakeClock()) for w, _evs in groups}
        _time(rounds["observe, learning"], _learn, learners, groups)
        _time(rounds["observe, repeats"], _learn, learners, groups)
    n = len(events)
    profiles = [lr.profile for lr in learners.values()]
    return Result(
        events=n,
        workloads=len(groups),
        entries=sum(p.size() for p in profiles),
        overflow=sum(p.overflow for p in profiles),
        cpu=cpu,
        figures={k: b.best / n * 1e9 for k, b in rounds.items()},
        spread={k: b.spread for k, b in rounds.items()},
    )


def print_table(r: Result) -> None:
    print(
        f"{r.events:,} events, {r.workloads} workloads, {r.entries:,} profile entries, overflow {r.overflow}"
    )
    print(f"cpu {r.cpu}, {r.machine['cpu_model']}, load {r.machine['loadavg']}")
    floor = r.figures["operation_of"]
    print(f"{'figure':<22}{'ns/event':>10}{'x operation_of':>16}{'spread':>9}")
    for k, v in r.figures.items():
        print(f"{k:<22}{v:>10.0f}{v / floor:>16.2f}{r.spread[k]:>9.0%}")


parse = harness.mix_parser(__doc__, 200_000)


if __name__ == "__main__":
    raise SystemExit(harness.main(None, parse, measure, print_table))
