"""How much a WorkloadPolicy costs per event in Monitor mode: ``CompiledPolicy.evaluate`` against
baselines measured in the same run.

::

    .venv/bin/python benchmarks/policy_eval.py [--count N] [--repeat R] [--json]

Generates ``benchmarks/gen_events.py``'s event mix (200,000 events by default), learns a policy of
the shape ``stockade policy generate`` writes from it (an allow rule per executable, file path,
egress peer, listening and served port and privileged operation seen; path components with digits
generalised to ``*``, as a profile generalises ``/proc/<pid>/...``), adds block rules for the
mix's attack-like programs and files, and times, pinned to one CPU, best of R rounds (CPU time):

* **dict floor**: one dict lookup of the event's ``fd.name`` per event: the least any per-event
  decision in Python costs;
* **operation floor**: :func:`stockade.behavior.ops.operation_of` alone: the one mapping from events
  to operations that ``evaluate`` starts with;
* **evaluate**: ``CompiledPolicy.evaluate(data)``, what Monitor mode runs per event;
* **decide only**: ``CompiledPolicy.decide(op)`` on the operations mapped beforehand: the policy's
  own share of ``evaluate``;
* **first sight**: ``decide`` once on each distinct operation with a freshly compiled policy, so
  nothing is remembered: the cost of the dict and regex lookups themselves (reported apart: it is
  per distinct operation, not per event);
* **engine, equivalent rules**: the Falco-compatible engine evaluating the same policy written as
  three rules (``not proc.exepath in (...)``, ``not fd.name in (...) and not fd.name glob ...``,
  ``not fd.sip in (...)``) on the same events wrapped in ``Event``: the cost of expressing the
  policy as detection rules instead (Falco's ``glob`` lets ``*`` cross ``/``, so the alert counts
  differ slightly from the denials; both are printed).
"""

from __future__ import annotations

import argparse
import gc
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gen_events
import harness
import orjson

DEFAULT_COUNT = 200_000
_DIGITS = re.compile(r"\d+")
#: attack-like programs and files of gen_events' mix the policy blocks explicitly
BLOCKED_EXES = ["/usr/bin/nc", "/dev/shm/**", "/tmp/**", "/usr/bin/shred"]
BLOCKED_FILES = ["/etc/shadow"]


@dataclass
class Figure:
    name: str
    us_per_event: float
    rate: float
    x_dict: float
    x_operation: float
    spread: float
    result: str = ""


@dataclass
class Result:
    events: int
    rules: dict[str, int]
    figures: list[Figure] = field(default_factory=list)
    #: decide() on each distinct operation once, on a freshly compiled policy (nothing remembered)
    uncached_us: float = 0.0
    uncached_result: str = ""
    machine: dict[str, Any] = field(default_factory=harness.machine_info)
    cpu: int | None = None


def _events(count: int, seed: int) -> list[dict[str, Any]]:
    return [orjson.loads(line) for chunk in gen_events.generate(count, seed) for line in chunk.splitlines()]


def _generalise(path: str) -> str:
    return "/".join(_DIGITS.sub("*", c) if any(ch.isdigit() for ch in c) else c for c in path.split("/"))


def learned_policy(datas: list[dict[str, Any]]) -> Any:
    """A generated-like policy of what `datas` did (module docstring)."""
    from stockade.behavior.ops import FileOp, NetOp, PrivOp, ProcessOp, operation_of
    from stockade.policy.load import parse_policy

    exes: set[str] = set()
    files: dict[str, set[str]] = {}
    net: set[tuple[str, str, int]] = set()
    priv: set[str] = set()
    for d in datas:
        op = operation_of(d)
        if isinstance(op, ProcessOp):
            exes.add(op.exe)
        elif isinstance(op, FileOp):
            files.setdefault(_generalise(op.path), set()).update(op.access)
        elif isinstance(op, NetOp):
            net.add((op.direction, op.ip if op.direction == "egress" else "", op.port))
        elif isinstance(op, PrivOp):
            priv.add(op.operation)
    lines = [
        "apiVersion: stockade.dev/v1alpha1",
        "kind: WorkloadPolicy",
        "metadata: {name: bench}",
        "spec:",
        "  workload: host",
        "  process:",
        *(f"    - {{path: '{p}', action: block}}" for p in BLOCKED_EXES),
        *(f"    - {{path: '{e}'}}" for e in sorted(exes) if e.startswith("/")),
        "  file:",
        *(f"    - {{path: '{p}', action: block}}" for p in BLOCKED_FILES),
        *(f"    - {{path: '{p}', access: [{', '.join(sorted(a))}]}}" for p, a in sorted(files.items())),
        "  network:",
        *(
            f"    - {{direction: {d}, ports: [{port}]" + (f", peer: {{cidr: {ip}/32}}}}" if ip else "}")
            for d, ip, port in sorted(net)
        ),
        "  privileged:",
        *(f"    - {{operation: {op}}}" for op in sorted(priv)),
    ]
    return parse_policy("\n".join(lines) + "\n", "bench-policy.yaml")


def _list(items: Sequence[str]) -> str:
    return ", ".join(f'"{i}"' for i in items)


def _matches(field: str, patterns: Sequence[str]) -> str:
    exact = [p for p in patterns if "*" not in p]
    globs = [f'{field} glob "{p}"' for p in patterns if "*" in p]
    return " or ".join(([f"{field} in ({_list(exact)})"] if exact else []) + globs) or "never_true"


def equivalent_rules(policy: Any) -> str:
    """The policy as three Falco rules (module docstring)."""
    spec = policy.spec

    def paths(rules: Any, action: str) -> list[str]:
        return [r.path for r in rules if r.action == action]

    sips = sorted({r.peer.cidr.split("/")[0] for r in spec.network if r.peer and r.peer.cidr})
    rules = [
        (
            "Policy process",
            "evt.type in (execve, execveat) and evt.res = SUCCESS",
            _matches("proc.exepath", paths(spec.process, "block")),
            _matches("proc.exepath", paths(spec.process, "allow")),
        ),
        (
            "Policy file",
            "evt.type in (open, openat, openat2, creat) and evt.res = SUCCESS and fd.typechar = f",
            _matches("fd.name", paths(spec.file, "block")),
            _matches("fd.name", paths(spec.file, "allow")),
        ),
        (
            "Policy egress",
            "evt.type = connect and evt.res = SUCCESS",
            "never_true",
            f"fd.sip in ({_list(sips)})",
        ),
    ]
    out = ["- macro: never_true\n  condition: (evt.num = 0)"]
    for name, when, blocked, allowed in rules:
        out.append(
            f"- rule: {name}\n  desc: d\n  condition: {when} and (({blocked}) or not ({allowed}))\n"
            f"  output: deviation %evt.type\n  priority: WARNING"
        )
    return "\n".join(out) + "\n"


def _time(name: str, rounds: int, fn: Callable[[], str]) -> tuple[harness.BestOf, str]:
    b = harness.BestOf(name)
    result = ""
    for _ in range(rounds):
        gc.collect()
        c0, w0 = time.process_time(), time.perf_counter()
        result = fn()
        b.cpu.append(time.process_time() - c0)
        b.wall.append(time.perf_counter() - w0)
    return b, result


def measure(args: argparse.Namespace) -> Result:
    from stockade.behavior.ops import operation_of
    from stockade.engine import Engine
    from stockade.model.event import Event
    from stockade.policy.compile import CompiledPolicy

    cpu = None if args.no_pin else harness.pin_cpu(args.cpu)
    datas = _events(args.count, args.seed)
    policy = learned_policy(datas)
    compiled = CompiledPolicy(policy)
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "policy_rules.yaml"
        rules.write_text(equivalent_rules(policy))
        engine = Engine.from_files([rules], hostname="bench")
    events = [Event("syscall", dict(d)) for d in datas]
    table = {r.path: r for r in policy.spec.file}

    def dict_floor() -> str:
        get = table.get
        n = sum(1 for d in datas if get(d.get("fd.name")) is not None)
        return f"{n} exact hits"

    def operations() -> str:
        n = sum(1 for d in datas if operation_of(d) is not None)
        return f"{n} operations"

    def evaluate() -> str:
        ev = compiled.evaluate
        verdicts = [ev(d) for d in datas]
        return f"{sum(1 for v in verdicts if v is not None and v.action == 'block')} denied"

    ops = [op for d in datas if (op := operation_of(d)) is not None]
    distinct = list(dict.fromkeys(ops))

    def decide() -> str:
        dec = compiled.decide
        return f"{sum(1 for op in ops if dec(op).action == 'block')} denied"

    def uncached() -> str:
        dec = CompiledPolicy(policy).decide
        return f"{sum(1 for op in distinct if dec(op).action == 'block')} of {len(distinct)} denied"

    def engine_run() -> str:
        process = engine.process
        return f"{sum(len(process(e)) for e in events)} alerts"

    timed = [
        _time("dict floor", args.repeat, dict_floor),
        _time("operation floor (operation_of)", args.repeat, operations),
        _time("evaluate (CompiledPolicy)", args.repeat, evaluate),
        _time("decide only (operations mapped)", args.repeat, decide),
        _time("engine, equivalent rules", args.repeat, engine_run),
    ]
    n = len(datas)
    base_dict, base_op = timed[0][0].best, timed[1][0].best
    res = Result(
        n, {s: len(getattr(policy.spec, s)) for s in ("process", "file", "network", "privileged")}, cpu=cpu
    )
    first_sight, out = _time("decide, first sight (fresh policy)", args.repeat, uncached)
    res.uncached_us = round(first_sight.best / len(distinct) * 1e6, 3)
    res.uncached_result = out
    for b, out in timed:
        res.figures.append(
            Figure(
                b.name,
                round(b.best / n * 1e6, 3),
                round(n / b.best),
                round(b.best / base_dict, 2),
                round(b.best / base_op, 2),
                round(b.spread, 3),
                out,
            )
        )
    return res


def print_table(res: Result) -> None:
    print(f"policy evaluation: {res.events:,} events, rules {res.rules}, cpu {res.cpu}")
    print(f"{'figure':34} {'us/event':>9} {'events/s':>11} {'x dict':>7} {'x op':>6} {'spread':>7}  result")
    for f in res.figures:
        print(
            f"{f.name:34} {f.us_per_event:9.3f} {f.rate:11,} {f.x_dict:7.2f} {f.x_operation:6.2f} "
            f"{f.spread:7.1%}  {f.result}"
        )
    print(
        f"decide, first sight of each operation (fresh policy): {res.uncached_us:.3f} us ({res.uncached_result})"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    harness.add_run_options(
        ap,
        count=DEFAULT_COUNT,
        seed=gen_events.DEFAULT_SEED,
        repeat=3,
        events_help="(not used: the mix is generated)",
        cpu_help="CPU to pin to (default: the last allowed one)",
    )
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return harness.main(argv, parse_args, measure, print_table)


if __name__ == "__main__":
    sys.exit(main())
