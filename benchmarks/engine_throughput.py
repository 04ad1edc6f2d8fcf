"""Engine throughput: events per second per core, against the JSON decode floor measured in the same run.

One command (``make bench`` runs it)::

    .venv/bin/python benchmarks/engine_throughput.py [--count N] [--events FILE] [--rules FILE ...]
                                                     [--repeat R] [--matching first|all] [--batches]
                                                     [--interp N] [--json] [--profile N]

What it does:

1. Generates the event mix of ``benchmarks/gen_events.py`` (default 1,000,000 events) into a temporary
   directory, unless ``--events`` names a recording.
2. Loads Falco's stable rules (``../shared/data/falco-rules/falco_rules.yaml``) plus Stockade's own
   pack (``src/stockade/rules/builtin/*.yaml``, when present), or the ``--rules`` files.
3. Pins itself to one CPU and measures, ``--repeat`` rounds (best round reported, spread shown),
   each engine figure with a freshly loaded engine:

   * **decode floor**: read the file and ``orjson.loads`` every line into a dict; nothing else;
   * **call floor**: a no-op method per ``Event`` (Python's own per-event cost);
   * **engine in memory**: ``engine.process(Event)`` on events decoded beforehand, in chunks of
     100,000 so memory stays bounded; only the engine calls are timed (``--batches``: also on
     batches of 1,000 right after decoding them);
   * **reference interpreter** (first round, ``--interp`` events): every rule through
     ``stockade.rules.interp``, for context;
   * **end to end**: read + decode + wrap + evaluate, through a plain orjson loop and through
     Stockade's JSON Lines source when it exists (the targets are judged on the latter).

4. Prints a table (events/s on CPU time, ratio to the decode floor, target, met?), the alert count
   and the rules that fired most, so the hit share can be checked; ``--json`` prints the same as JSON.

Rates are computed on CPU time of this (single-threaded, pinned) process, which is what "per core"
means and which a shared, noisy machine disturbs less than wall time; wall-clock rates are shown too.
"""

from __future__ import annotations

import argparse
import gc
import glob
import importlib
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gen_events
import harness
import orjson

REPO = harness.REPO

FALCO_RULES = harness.SHARED_FALCO_RULES
BUILTIN_RULES = REPO / "src" / "stockade" / "rules" / "builtin"

TARGET_IN_MEMORY = 1_000_000
TARGET_END_TO_END = 300_000
#: "the engine adding at most the decode floor again": end-to-end time <= 2 x decode time
TARGET_E2E_RATIO = 0.5
CHUNK = 100_000
#: events decoded then evaluated together in the warm in-memory figure
BATCH = 1_000


@dataclass
class Timing(harness.BestOf):
    """Best-of-N measurement of one figure, over `events` events."""

    events: int = 0

    def add(self, events: int, cpu: float, wall: float) -> None:
        self.events = events
        self.cpu.append(cpu)
        self.wall.append(wall)

    @property
    def best_cpu(self) -> float:
        """The fewest CPU seconds of any round."""
        return self.best

    @property
    def rate(self) -> float:
        return self.events / self.best_cpu if self.cpu and self.best_cpu > 0 else 0.0

    @property
    def wall_rate(self) -> float:
        return self.events / min(self.wall) if self.wall and min(self.wall) > 0 else 0.0

    @property
    def us_per_event(self) -> float:
        return 1e6 * self.best_cpu / self.events if self.events else 0.0


class _Clock:
    """Accumulates CPU and wall time over several timed sections."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self.wall = 0.0
        self._c = 0.0
        self._w = 0.0

    def start(self) -> None:
        self._c = time.process_time()
        self._w = time.perf_counter()

    def stop(self) -> None:
        self.cpu += time.process_time() - self._c
        self.wall += time.perf_counter() - self._w


def default_rule_paths() -> list[Path]:
    paths = [FALCO_RULES]
    paths += sorted(Path(p) for p in glob.glob(str(BUILTIN_RULES / "*.yaml")))
    return paths


# --------------------------------------------------------------------------------------------------
# The measured loops


def decode_floor(path: Path) -> tuple[int, float, float]:
    """Read the file and decode every line; nothing else."""
    loads = orjson.loads
    n = 0
    gc.collect()
    c0, w0 = time.process_time(), time.perf_counter()
    with open(path, "rb") as f:
        for line in f:
            loads(line)
            n += 1
    return n, time.process_time() - c0, time.perf_counter() - w0


def _header_lines(path: Path) -> int:
    """1 if the recording starts with a schema header line (docs/events.md), else 0."""
    with open(path, "rb") as f:
        return 1 if b'"stockade.schema"' in f.readline() else 0


def read_chunks(path: Path, size: int) -> Iterator[list[bytes]]:
    with open(path, "rb") as f:
        chunk: list[bytes] = []
        for line in f:
            chunk.append(line)
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


@dataclass
class InMemory:
    """Result of one in-memory pass: CPU and wall seconds of each timed loop."""

    events: int = 0
    alerting_events: int = 0
    cold: _Clock = field(default_factory=lambda: _Clock())
    warm: _Clock = field(default_factory=lambda: _Clock())
    noop: _Clock = field(default_factory=lambda: _Clock())


class _Noop:
    def process(self, _ev: Any) -> list[Any]:
        return []


def engine_in_memory(
    path: Path, cold_engine: Any, warm_engine: Any | None, hits: Counter[str] | None
) -> InMemory:
    """Engine calls only, on events decoded and wrapped in ``Event`` beforehand; nothing else is timed.

    The file is read in chunks of CHUNK events (to bound memory). Each chunk is decoded in batches of
    BATCH events, and `warm_engine` runs on each batch right after it is decoded (the events are still
    in the CPU caches, as in a pipeline that decodes a batch and then evaluates it). When the whole
    chunk is decoded, a no-op method (Python's per-call floor) and then `cold_engine` run over it
    (events long out of the caches, as in a benchmark over a large pre-decoded list). Two engines, so
    that each sees every event once (sequence rules keep state).
    """
    from stockade.model.event import Event

    loads = orjson.loads
    cold, noop = cold_engine.process, _Noop().process
    warm = warm_engine.process if warm_engine is not None else None
    r = InMemory()
    for lines in read_chunks(path, CHUNK):
        events: list[Event] = []
        for i in range(0, len(lines), BATCH):
            batch = [Event("syscall", loads(line)) for line in lines[i : i + BATCH]]
            if warm is not None:
                # the engine may cache derived fields in the event: the cold run gets its own copies
                events.extend([Event("syscall", dict(ev.data)) for ev in batch])
                r.warm.start()
                for ev in batch:
                    warm(ev)
                r.warm.stop()
            else:
                events.extend(batch)
        del lines
        gc.collect()
        r.noop.start()
        for ev in events:
            noop(ev)
        r.noop.stop()
        r.cold.start()
        if hits is None:
            for ev in events:
                cold(ev)
        else:
            for ev in events:
                out = cold(ev)
                if out:
                    for a in out:
                        hits[a.rule] += 1
                    r.alerting_events += 1
        r.cold.stop()
        r.events += len(events)
        del events
    return r


def end_to_end_plain(path: Path, engine: Any) -> tuple[int, float, float, int]:
    """Read + orjson + wrap in Event + engine.process, in one loop."""
    from stockade.model.event import Event

    loads, process = orjson.loads, engine.process
    n = alerts = 0
    gc.collect()
    c0, w0 = time.process_time(), time.perf_counter()
    with open(path, "rb") as f:
        for line in f:
            if process(Event("syscall", loads(line))):
                alerts += 1
            n += 1
    return n, time.process_time() - c0, time.perf_counter() - w0, alerts


def reference_interpreter(path: Path, engine: Any, count: int) -> tuple[int, float, float] | None:
    """The reference interpreter on the first `count` events, every rule of the source on each event
    (the engine's fallback path), for context. None if the engine's internals do not allow it."""
    sources = getattr(engine, "_sources", None)
    fallback = getattr(engine, "_fallback", None)
    if not isinstance(sources, dict) or "syscall" not in sources or fallback is None:
        return None
    sr = sources["syscall"]
    datas = []
    for lines in read_chunks(path, count):
        datas = [d for d in map(orjson.loads, lines) if isinstance(d, dict) and "evt.type" in d]
        break
    gc.collect()
    c0, w0 = time.process_time(), time.perf_counter()
    for d in datas:
        fallback(sr, d)
    return len(datas), time.process_time() - c0, time.perf_counter() - w0


def jsonl_source_factory() -> Callable[[Path], Any] | None:
    """Stockade's JSON Lines source, if it exists (registry first, then the module)."""
    try:
        reg = importlib.import_module("stockade.sources.registry")
        open_source = reg.open_source
        return lambda p: open_source("syscall", p)
    except (ImportError, AttributeError):
        pass
    try:
        mod = importlib.import_module("stockade.sources.jsonl")
    except ImportError:
        return None
    for name in dir(mod):
        obj = getattr(mod, name)
        if isinstance(obj, type) and getattr(obj, "name", None) == "syscall" and hasattr(obj, "events"):
            return lambda p: obj(p)
    return None


def end_to_end_source(
    path: Path, engine: Any, factory: Callable[[Path], Any]
) -> tuple[int, float, float, int]:
    """Stockade's JSON Lines source feeding engine.process: what `stockade replay` does, minus sinks."""
    process = engine.process
    n = alerts = 0
    gc.collect()
    c0, w0 = time.process_time(), time.perf_counter()
    src = factory(path)
    for ev in src.events():
        if process(ev):
            alerts += 1
        n += 1
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    close = getattr(src, "close", None)
    if callable(close):
        close()
    return n, cpu, wall, alerts


# --------------------------------------------------------------------------------------------------


@dataclass
class Result:
    machine: dict[str, Any]
    date: str
    command: str
    events_file: str
    events: int
    bytes_per_event: float
    rounds: int
    cpu_pinned: int | None
    rule_files: list[str]
    rules_loaded: int | None = None
    engine_load_s: float | None = None
    engine_error: str | None = None
    figures: list[dict[str, Any]] = field(default_factory=list)
    alerts: int | None = None
    alerting_events: int | None = None
    top_rules: list[tuple[str, int]] = field(default_factory=list)
    targets: dict[str, Any] = field(default_factory=dict)


def figure(
    t: Timing, floor: Timing | None, target: int | None, ratio_target: float | None = None
) -> dict[str, Any]:
    ratio = t.rate / floor.rate if floor and floor.rate else None
    met: bool | None = None
    if target is not None:
        met = t.rate >= target
    if ratio_target is not None and ratio is not None:
        met = (met is not False) and ratio >= ratio_target
    return {
        "name": t.name,
        "events": t.events,
        "events_per_s": round(t.rate),
        "wall_events_per_s": round(t.wall_rate),
        "us_per_event": round(t.us_per_event, 3),
        "ratio_to_floor": round(ratio, 3) if ratio is not None else None,
        "spread": round(t.spread, 3),
        "rounds": len(t.cpu),
        "target": target,
        "ratio_target": ratio_target,
        "met": met,
    }


def run(args: argparse.Namespace) -> Result | None:
    cpu = None if args.no_pin else harness.pin_cpu(args.cpu)
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if args.events is None:
        tmp = tempfile.TemporaryDirectory(prefix="stockade-bench-")
        path = Path(tmp.name) / "events.jsonl"
        t0 = time.perf_counter()
        gen_events.write_events(path, args.count, args.seed)
        if not args.json:
            print(
                f"generated {args.count:,} events in {time.perf_counter() - t0:.1f}s -> {path}",
                file=sys.stderr,
            )
    else:
        path = args.events
    try:
        if args.profile:
            profile(args, path)
            return None
        return _measure(args, path, cpu)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _measure(args: argparse.Namespace, path: Path, cpu: int | None) -> Result:
    return _Measurement(args, path, cpu).run()


class _Measurement:
    """One run of every figure, `args.repeat` rounds (the module docstring says which)."""

    def __init__(self, args: argparse.Namespace, path: Path, cpu: int | None) -> None:
        self.args = args
        self.path = path
        rule_files = [Path(p) for p in args.rules] if args.rules else default_rule_paths()
        self.paths = [str(p) for p in rule_files]
        self.res = Result(
            machine=harness.machine_info(),
            date=time.strftime("%Y-%m-%d %H:%M:%S %z"),
            command=" ".join([Path(sys.executable).name, *sys.argv]),
            events_file=str(path),
            events=0,
            bytes_per_event=0.0,
            rounds=args.repeat,
            cpu_pinned=cpu,
            rule_files=self.paths,
        )
        self.floor = Timing("decode floor (read + orjson.loads)")
        self.noop = Timing("call floor (no-op method per Event)")
        self.cold = Timing(f"engine in memory, {CHUNK:,} pre-decoded")
        self.warm = Timing(f"engine in memory, batches of {BATCH:,}")
        self.e2e = Timing("end to end, JSONL (orjson loop)")
        self.e2e_src = Timing("end to end, JSONL (stockade source)")
        self.interp = Timing(f"reference interpreter ({args.interp:,} events)")
        self.hits: Counter[str] = Counter()
        self.factory: Callable[[Path], Any] | None = None

    def log(self, *a: object) -> None:
        """Progress, on standard error (not with --json)."""
        if not self.args.json:
            print(*a, file=sys.stderr)

    def make_engine(self) -> Any:
        """A freshly loaded engine (no state carried between figures or rounds)."""
        from stockade.engine import Engine

        return Engine.from_files(self.paths, rule_matching=self.args.matching, hostname="bench")

    def run(self) -> Result:
        """Every round, then the figures and the targets."""
        has_engine = self._load_engine()
        self.factory = jsonl_source_factory() if has_engine else None
        for r in range(self.args.repeat):
            n, c, w = decode_floor(self.path)
            self.floor.add(n, c, w)
            line = f"round {r + 1}/{self.args.repeat}: floor {n / c:,.0f}/s"
            if has_engine:
                line += self._engine_round(r)
            self.log(line)
        res = self.res
        res.events = self.floor.events - _header_lines(self.path)
        res.bytes_per_event = round(self.path.stat().st_size / max(self.floor.events, 1), 1)
        res.figures.append(figure(self.floor, self.floor, None))
        if has_engine:
            self._engine_figures()
        return res

    def _load_engine(self) -> bool:
        """Load the rules once (timed, rules counted); False if the engine cannot be had."""
        res = self.res
        try:
            t0 = time.perf_counter()
            engine = self.make_engine()
            res.engine_load_s = round(time.perf_counter() - t0, 3)
        except Exception as e:  # engine not there yet, or rules fail to load: still report the floor
            res.engine_error = f"{type(e).__name__}: {e}"
            self.log(f"engine unavailable: {res.engine_error}")
            return False
        try:
            res.rules_loaded = sum(1 for r in engine.rules_info() if r.get("enabled", True))
        except Exception:  # the count is informative only
            res.rules_loaded = None
        self.log(
            f"engine: {res.rules_loaded} enabled rules loaded in {res.engine_load_s}s from {len(self.paths)} file(s)"
        )
        return True

    def _engine_round(self, r: int) -> str:
        """One round of the engine's figures; what to print of it."""
        args, path = self.args, self.path
        m = engine_in_memory(
            path,
            self.make_engine(),
            self.make_engine() if args.batches else None,
            self.hits if r == 0 else None,
        )
        self.noop.add(m.events, m.noop.cpu, m.noop.wall)
        self.cold.add(m.events, m.cold.cpu, m.cold.wall)
        line = f", in memory {m.events / m.cold.cpu:,.0f}/s"
        if args.batches:
            self.warm.add(m.events, m.warm.cpu, m.warm.wall)
            line += f" (batches {m.events / m.warm.cpu:,.0f}/s)"
        if r == 0:
            self.res.alerting_events = m.alerting_events
            self.res.alerts = sum(self.hits.values())
        n, c, w, _ = end_to_end_plain(path, self.make_engine())
        self.e2e.add(n, c, w)
        line += f", e2e {n / c:,.0f}/s"
        line += self._source_round()
        if r == 0 and args.interp:
            line += self._interpreter_round()
        return line

    def _source_round(self) -> str:
        if self.factory is None:
            return ""
        try:
            n, c, w, _ = end_to_end_source(self.path, self.make_engine(), self.factory)
        except Exception as e:
            self.log(f"stockade JSONL source failed: {type(e).__name__}: {e}")
            self.factory = None
            return ""
        self.e2e_src.add(n, c, w)
        return f", e2e source {n / c:,.0f}/s"

    def _interpreter_round(self) -> str:
        try:
            ri = reference_interpreter(self.path, self.make_engine(), self.args.interp)
        except Exception as e:
            self.log(f"reference interpreter failed: {type(e).__name__}: {e}")
            return ""
        if ri is None:
            return ""
        self.interp.add(*ri)
        return f", interpreter {ri[0] / ri[1]:,.0f}/s"

    def _engine_figures(self) -> None:
        res, floor = self.res, self.floor
        res.figures.append(figure(self.noop, floor, None))
        res.figures.append(figure(self.cold, floor, TARGET_IN_MEMORY))
        for t in (self.warm, self.interp):
            if t.cpu:
                res.figures.append(figure(t, floor, None if t is self.interp else TARGET_IN_MEMORY))
        res.figures.append(figure(self.e2e, floor, TARGET_END_TO_END, TARGET_E2E_RATIO))
        if self.e2e_src.cpu:
            res.figures.append(figure(self.e2e_src, floor, TARGET_END_TO_END, TARGET_E2E_RATIO))
        res.top_rules = self.hits.most_common(self.args.top)
        res.targets = self._targets(res.figures[-1])

    def _targets(self, real_e2e: dict[str, Any]) -> dict[str, Any]:
        """The targets, judged on the paths the runtime takes: process(Event) on a large list of
        decoded events, and the Stockade JSON Lines source when it exists (`real_e2e`)."""
        floor, cold = self.floor, self.cold
        engine_us = real_e2e["us_per_event"] - floor.us_per_event
        return {
            "in_memory_events_per_s": {
                "target": TARGET_IN_MEMORY,
                "figure": cold.name,
                "measured": round(cold.rate),
                "met": cold.rate >= TARGET_IN_MEMORY,
            },
            "end_to_end_events_per_s": {
                "target": TARGET_END_TO_END,
                "figure": real_e2e["name"],
                "measured": real_e2e["events_per_s"],
                "met": real_e2e["events_per_s"] >= TARGET_END_TO_END,
            },
            "engine_cost_at_most_decode_floor": {
                "figure": real_e2e["name"],
                "decode_us": round(floor.us_per_event, 3),
                "engine_added_us": round(engine_us, 3),
                "multiple_of_floor": round(engine_us / floor.us_per_event, 2) if floor.us_per_event else None,
                "met": engine_us <= floor.us_per_event,
            },
        }


def print_table(res: Result) -> None:
    m = res.machine
    print(f"Stockade engine throughput  {res.date}")
    print(
        f"machine: {m['cpu_model']}, {m['nproc']} CPUs, load {m['loadavg']}, {m['implementation']} {m['python']}, "
        f"orjson {m['orjson']}, pinned to CPU {res.cpu_pinned}"
    )
    print(f"events:  {res.events:,} ({res.bytes_per_event:.0f} B/event) from {res.events_file}")
    print(
        f"rules:   {res.rules_loaded} enabled, loaded in {res.engine_load_s}s from "
        + ", ".join(Path(p).name for p in res.rule_files)
    )
    if res.engine_error:
        print(f"engine:  unavailable ({res.engine_error}); only the decode floor was measured")
    print(f"best of {res.rounds} rounds, rates on CPU time of one pinned core (wall in parentheses)")
    print()
    hdr = f"{'figure':40} {'events/s':>11} {'(wall)':>11} {'us/event':>9} {'x floor':>8} {'spread':>7} {'target':>20} {'met?':>5}"
    print(hdr)
    print("-" * len(hdr))
    for f in res.figures:
        ratio = f"{f['ratio_to_floor']:.2f}" if f["ratio_to_floor"] is not None else ""
        target = f"{f['target']:,}" if f["target"] else ""
        if f["ratio_target"]:
            target += f", x>={f['ratio_target']:.2f}"
        met = "" if f["met"] is None else ("yes" if f["met"] else "NO")
        print(
            f"{f['name']:40} {f['events_per_s']:>11,} ({f['wall_events_per_s']:>9,}) {f['us_per_event']:>9.3f} "
            f"{ratio:>8} {100 * f['spread']:>6.1f}% {target:>20} {met:>5}"
        )
    if res.targets:
        t = res.targets["engine_cost_at_most_decode_floor"]
        print()
        print(
            f"engine adds {t['engine_added_us']:.3f} us/event on top of the {t['decode_us']:.3f} us decode floor "
            f"({t['multiple_of_floor']}x the floor; target <= 1x): {'met' if t['met'] else 'NOT met'}"
        )
    if res.alerts is not None:
        share = 100 * (res.alerting_events or 0) / max(res.events, 1)
        print()
        print(f"alerts: {res.alerts:,} from {res.alerting_events:,} events ({share:.2f}% of events)")
        for name, n in res.top_rules:
            print(f"  {n:>8,}  {name}")


def profile(args: argparse.Namespace, path: Path) -> None:
    """cProfile the engine on the first --profile events (decoded beforehand); print the hot spots."""
    import cProfile
    import pstats

    from stockade.engine import Engine
    from stockade.model.event import Event

    rule_files = [str(p) for p in (args.rules or default_rule_paths())]
    engine = Engine.from_files(rule_files, rule_matching=args.matching, hostname="bench")
    events = []
    for lines in read_chunks(path, args.profile):
        events = [Event("syscall", orjson.loads(line)) for line in lines]
        break
    process = engine.process
    prof = cProfile.Profile()
    prof.enable()
    for ev in events:
        process(ev)
    prof.disable()
    print(
        f"cProfile of engine.process over {len(events):,} events ({', '.join(Path(p).name for p in rule_files)})"
    )
    pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (module docstring)."""
    ap = argparse.ArgumentParser(description="Stockade engine throughput against the JSON decode floor.")
    harness.add_run_options(
        ap,
        count=gen_events.DEFAULT_COUNT,
        seed=gen_events.DEFAULT_SEED,
        repeat=3,
        events_help="use this JSON Lines recording instead of generating",
        cpu_help="CPU to pin to (default: the last allowed one)",
    )
    ap.add_argument(
        "--rules", nargs="+", default=None, help="rule files (default: Falco stable + Stockade built-in)"
    )
    ap.add_argument(
        "--matching", choices=("first", "all"), default="first", help="rule matching (default first)"
    )
    ap.add_argument("--top", type=int, default=25, help="rules to list by hits (default 25)")
    ap.add_argument(
        "--batches",
        action="store_true",
        help=f"also time the engine on batches of {BATCH:,} events right after decoding them (warm caches)",
    )
    ap.add_argument(
        "--interp",
        type=int,
        default=20_000,
        metavar="N",
        help="time the reference interpreter (all rules per event) on N events, once (0: skip; default 20,000)",
    )
    ap.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="instead: cProfile the engine on N events, print hot spots",
    )
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print (module docstring)."""
    return harness.main(argv, parse_args, run, print_table)


if __name__ == "__main__":
    raise SystemExit(main())
