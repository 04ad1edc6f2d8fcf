"""`stockade replay` end to end, start-up included, against the JSON decode floor of the same run.

One command (``make bench`` runs it after the engine benchmark)::

    .venv/bin/python benchmarks/replay_throughput.py [--count N] [--events FILE] [--repeat R]
                                                     [--formats text json] [--cpu N | --no-pin] [--json]

What it does:

1. Generates the event mix of ``benchmarks/gen_events.py`` (default 500,000 events, seed 1) into a
   temporary directory, unless ``--events`` names a recording.
2. In each of ``--repeat`` rounds (default 5), runs as child processes, one after the other, pinned to
   one CPU, each with its standard output to ``/dev/null``:

   * **decode floor**: a Python process that reads the file in 1 MiB chunks, splits the lines and
     ``orjson.loads`` every one of them; nothing else (interpreter start-up included, ~0.02 s);
   * **replay, Falco's rules**: ``stockade replay FILE --rules falco_rules.yaml -o FORMAT``;
   * **replay, the default rules**: ``stockade replay FILE -o FORMAT`` (Falco's stable rules where
     installed, ``/etc/falco``, plus Stockade's pack: what a user gets);
   * **start-up**: the same two commands on a one-event recording (imports, configuration, loading
     the rules; the compiled-rules cache warm), and once with the cache cold.

   Each child's CPU time (user + system, from ``wait4``) is the measure; the wall time is shown too.
   The children get an empty configuration file and a fresh ``XDG_CACHE_HOME`` (the compiled-rules
   cache), so the user's own configuration and cache play no part, and Python bytecode as after an
   installation (written once by a warm-up run into the temporary directory,
   ``PYTHONPYCACHEPREFIX``; compiling Stockade's modules from source would add ~0.3 s).
3. Reports, per figure, the best round's CPU seconds and its ratio to the best decode floor, the
   targets (Falco's rules <= 2 x the floor, the default rules <= 2.5 x), and the alert counts
   (``--json``: machine-readable).

CPU time on a pinned core is what a shared, noisy machine disturbs least; the best of several
rounds is reported, and the ratios are what to compare between runs.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gen_events
import harness

REPO = harness.REPO

DEFAULT_COUNT = 500_000
FALCO_RULES_CANDIDATES = (
    Path("/etc/falco/falco_rules.yaml"),
    harness.SHARED_FALCO_RULES,
)
TARGETS = {"falco": 2.0, "default": 2.5}

#: the decode floor: what any Python consumer of the recording pays to read and decode it
FLOOR_CODE = """
import sys, orjson
loads = orjson.loads
n = 0
with open(sys.argv[1], "rb") as f:
    rest = b""
    while True:
        chunk = f.read(1 << 20)
        if not chunk:
            break
        if rest:
            chunk = rest + chunk
        lines = chunk.split(b"\\n")
        rest = lines.pop()
        for line in lines:
            loads(line)
            n += 1
    if rest:
        loads(rest)
        n += 1
print(n)
"""


@dataclass
class Figure(harness.BestOf):
    """One child process's CPU time, best of the rounds, and what it printed."""

    alerts: int | None = None
    rules: int | None = None


@dataclass
class Result:
    date: str
    machine: dict[str, Any]
    events: int
    events_file: str
    rounds: int
    cpu_pinned: int | None
    falco_rules: str
    figures: dict[str, Figure] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    verdicts: dict[str, bool] = field(default_factory=dict)


def stockade_exe() -> str:
    exe = Path(sys.executable).with_name("stockade")
    if not exe.exists():
        sys.exit(f"no {exe}: run scripts/install.sh first")
    return str(exe)


def falco_rules() -> Path:
    for p in FALCO_RULES_CANDIDATES:
        if p.is_file():
            return p
    sys.exit("Falco's stable rules not found (" + ", ".join(map(str, FALCO_RULES_CANDIDATES)) + ")")


def pick_cpu(requested: int | None) -> int:
    allowed = sorted(os.sched_getaffinity(0))
    return requested if requested is not None else allowed[-1]


def run_child(argv: list[str], env: dict[str, str], cpu: int | None) -> tuple[float, float, str]:
    """(CPU seconds, wall seconds, standard error) of one child process; stdout goes to /dev/null."""

    def pin() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    with tempfile.TemporaryFile() as err, open(os.devnull, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, preexec_fn=pin)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {proc.returncode}:\n{text}")
    return ru.ru_utime + ru.ru_stime, wall, text


_SUMMARY = re.compile(r"^(\d+) alerts from (\d+) rules", re.M)


@dataclass
class _Children:
    """How the measured commands run: the stockade executable, their environment, their CPU, the
    compiled-rules cache they share, the recording and a one-event file."""

    exe: str
    env: dict[str, str]
    cpu: int | None
    cache: Path
    path: Path
    one: Path

    def run(self, argv: list[str], fig: Figure) -> tuple[float, str]:
        """Run one child, add its times to `fig`; its CPU seconds and standard error."""
        c, w, err = run_child(argv, self.env, self.cpu)
        fig.cpu.append(c)
        fig.wall.append(w)
        return c, err


def _child_env(t: Path) -> dict[str, str]:
    """The children's environment: an empty configuration, a fresh cache, and Python bytecode as
    after any normal install or first run (pip compiles it; this environment may set
    PYTHONDONTWRITEBYTECODE), kept in the temporary directory, not next to the sources."""
    config = t / "stockade.yaml"
    config.write_text("{}\n")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("STOCKADE_") and k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    }
    return env | {
        "STOCKADE_CONFIG": str(config),
        "XDG_CACHE_HOME": str(t / "cache"),
        "PYTHONPYCACHEPREFIX": str(t / "pycache"),
    }


def _first_event(path: Path, one: Path) -> Path:
    """`one`, holding the recording's first event (for the start-up figures)."""
    with open(path, "rb") as src:
        for raw in src:
            if b'"evt.type"' in raw:
                one.write_bytes(raw)
                break
    return one


def _round(
    r: int, args: argparse.Namespace, ch: _Children, rulesets: dict[str, list[str]], figs: dict[str, Figure]
) -> str:
    """One round of every figure; its line of progress."""
    line = [f"round {r + 1}/{args.repeat}:"]
    c, _ = ch.run([sys.executable, "-c", FLOOR_CODE, str(ch.path)], figs["floor"])
    line.append(f"floor {c:.2f}s")
    for rs, extra in rulesets.items():
        if r == 0:
            shutil.rmtree(ch.cache, ignore_errors=True)
            ch.run([ch.exe, "replay", str(ch.one), *extra, "-q"], figs[f"startup_cold_{rs}"])
        ch.run([ch.exe, "replay", str(ch.one), *extra, "-q"], figs[f"startup_{rs}"])
        for fmt in args.formats:
            fig = figs[f"{rs}_{fmt}"]
            c, err = ch.run([ch.exe, "replay", str(ch.path), *extra, "-o", fmt], fig)
            m = _SUMMARY.search(err)
            if m:
                fig.alerts, fig.rules = int(m.group(1)), int(m.group(2))
            line.append(f"{rs} {fmt} {c:.2f}s")
    return " ".join(line)


def measure(args: argparse.Namespace) -> Result:
    """Every figure, best of `args.repeat` rounds, with its ratio to the decode floor."""
    cpu = None if args.no_pin else pick_cpu(args.cpu)
    exe = stockade_exe()
    falco = falco_rules()
    with tempfile.TemporaryDirectory(prefix="stockade-replay-bench-") as tmp:
        t = Path(tmp)
        if args.events is None:
            path = t / "events.jsonl"
            t0 = time.perf_counter()
            gen_events.write_events(path, args.count, args.seed)
            log(args, f"generated {args.count:,} events in {time.perf_counter() - t0:.1f}s -> {path}")
        else:
            path = args.events
        ch = _Children(exe, _child_env(t), cpu, t / "cache", path, _first_event(path, t / "one.jsonl"))
        for extra in ([], ["--rules", str(falco)]):  # warm-up: writes the bytecode
            run_child([exe, "replay", str(ch.one), *extra, "-q"], ch.env, cpu)
        res = Result(
            date=time.strftime("%Y-%m-%d %H:%M:%S %z"),
            machine=harness.machine_info(),
            events=count_events(path),
            events_file=str(path),
            rounds=args.repeat,
            cpu_pinned=cpu,
            falco_rules=str(falco),
        )
        rulesets = {"falco": ["--rules", str(falco)], "default": []}
        figs = res.figures
        figs["floor"] = Figure("decode floor (read + orjson.loads)")
        for rs in rulesets:
            figs[f"startup_cold_{rs}"] = Figure(f"start-up, {rs} rules, cache cold")
            figs[f"startup_{rs}"] = Figure(f"start-up, {rs} rules")
            for fmt in args.formats:
                figs[f"{rs}_{fmt}"] = Figure(f"replay, {rs} rules, --output {fmt}")
        for r in range(args.repeat):
            log(args, _round(r, args, ch, rulesets, figs))
    floor = figs["floor"].best
    for key, f in figs.items():
        if key != "floor" and f.cpu:
            res.ratios[key] = round(f.best / floor, 3)
    for rs, target in TARGETS.items():
        res.verdicts[rs] = all(res.ratios[f"{rs}_{fmt}"] <= target for fmt in args.formats)
    return res


def count_events(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for line in f if b'"evt.type"' in line)


def log(args: argparse.Namespace, msg: str) -> None:
    if not args.json:
        print(msg, file=sys.stderr, flush=True)


def print_table(res: Result) -> None:
    m = res.machine
    print(f"stockade replay against the decode floor  {res.date}")
    print(
        f"machine: {m['cpu_model']}, {m['nproc']} CPUs, load {m['loadavg']}, Python {m['python']}, "
        f"orjson {m['orjson']}, children pinned to CPU {res.cpu_pinned}"
    )
    print(f"events:  {res.events:,} from {res.events_file}")
    print(f"Falco's rules: {res.falco_rules}")
    print(f"best of {res.rounds} rounds, CPU seconds (user + system) of each child process")
    print()
    hdr = f"{'figure':44} {'CPU s':>7} {'wall s':>7} {'x floor':>8} {'spread':>7} {'alerts':>7} {'rules':>6}"
    print(hdr)
    print("-" * len(hdr))
    for key, f in res.figures.items():
        ratio = "1.00" if key == "floor" else f"{res.ratios.get(key, 0):.2f}"
        alerts = f"{f.alerts:,}" if f.alerts is not None else ""
        rules = str(f.rules) if f.rules is not None else ""
        print(
            f"{f.name:44} {f.best:>7.2f} {min(f.wall):>7.2f} {ratio:>8} {100 * f.spread:>6.1f}% "
            f"{alerts:>7} {rules:>6}"
        )
    print()
    for rs, target in TARGETS.items():
        got = ", ".join(
            f"{key.split('_', 1)[1]} {ratio:.2f}x"
            for key, ratio in res.ratios.items()
            if key.startswith(rs + "_") and not key.startswith("startup")
        )
        print(
            f"{rs} rules: {got} the decode floor (target <= {target}x): {'met' if res.verdicts[rs] else 'NOT met'}"
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    harness.add_run_options(
        ap,
        count=DEFAULT_COUNT,
        seed=gen_events.DEFAULT_SEED,
        repeat=5,
        events_help="replay this recording instead of generating one",
        cpu_help="CPU to pin the children to (default: the last allowed)",
    )
    ap.add_argument(
        "--formats",
        nargs="+",
        choices=("text", "json"),
        default=["text", "json"],
        help="output formats (default both)",
    )
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print (module docstring)."""
    return harness.main(argv, parse_args, measure, print_table)


if __name__ == "__main__":
    raise SystemExit(main())
