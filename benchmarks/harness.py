"""What the benchmarks in this folder share: importing Stockade from this checkout, pinning to one
CPU, describing the machine, best-of-N figures, the common options of a throughput run, the root
and eBPF checks of the sensor benchmarks, and ``main`` (a table, or JSON with ``--json``).

Import it first (``import harness``): it puts this folder and the checkout's ``src`` on the path.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
for _p in (REPO / "src", HERE):
    if _p.is_dir() and str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

if TYPE_CHECKING:
    from stockade.sensor.interface import Capabilities

#: Falco's stable rules as this workplace ships them (beside the checkout)
SHARED_FALCO_RULES = REPO.parent / "shared" / "data" / "falco-rules" / "falco_rules.yaml"

R = TypeVar("R")


def pin_cpu(requested: int | None) -> int | None:
    """Restrict this process to one CPU (the last allowed one unless `requested`); which, or None
    where the platform cannot pin."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    chosen = requested if requested is not None else sorted(os.sched_getaffinity(0))[-1]
    os.sched_setaffinity(0, {chosen})
    return chosen


def cpu_model() -> str:
    """The CPU's model name."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """What a figure was measured on: CPU, load, Python and orjson versions."""
    import orjson

    return {
        "cpu_model": cpu_model(),
        "nproc": os.cpu_count(),
        "loadavg": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "orjson": orjson.__version__,
        "platform": platform.platform(),
    }


@dataclass
class BestOf:
    """One figure measured over several rounds: CPU and wall seconds of each; the best counts."""

    name: str
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)

    @property
    def best(self) -> float:
        """The fewest CPU seconds of any round (0 before the first)."""
        return min(self.cpu) if self.cpu else 0.0

    @property
    def spread(self) -> float:
        """(worst - best) / best over the rounds, on CPU time."""
        return (max(self.cpu) - self.best) / self.best if self.cpu and self.best > 0 else 0.0


def add_run_options(
    ap: argparse.ArgumentParser, *, count: int, seed: int, repeat: int, events_help: str, cpu_help: str
) -> None:
    """The options every throughput run takes: how many events to generate (or a recording),
    how many rounds, which CPU, and --json."""
    ap.add_argument("--count", type=int, default=count, help=f"events to generate (default {count:,})")
    ap.add_argument("--seed", type=int, default=seed, help=f"generator seed (default {seed})")
    ap.add_argument("--events", type=Path, default=None, help=events_help)
    ap.add_argument(
        "--repeat", type=int, default=repeat, help=f"rounds; the best is reported (default {repeat})"
    )
    ap.add_argument("--cpu", type=int, default=None, help=cpu_help)
    ap.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    ap.add_argument("--json", action="store_true", help="print machine-readable results")


def mix_parser(doc: str | None, count: int) -> Callable[[Sequence[str] | None], argparse.Namespace]:
    """The command line of a benchmark over the generated event mix (gen_events.py): the run
    options (:func:`add_run_options`), `count` events by default, `doc` as its help."""

    def parse(argv: Sequence[str] | None) -> argparse.Namespace:
        ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
        add_run_options(
            ap,
            count=count,
            seed=1,
            repeat=3,
            events_help="(not used: the mix is generated)",
            cpu_help="CPU to pin to (default: the last allowed)",
        )
        return ap.parse_args(argv)

    return parse


def print_json(result: Any) -> None:
    """`result` (a dataclass or plain data) as indented JSON on standard output."""
    data = asdict(result) if is_dataclass(result) and not isinstance(result, type) else result
    print(json.dumps(data, indent=2, default=str))


def main(
    argv: Sequence[str] | None,
    parse: Callable[[Sequence[str] | None], argparse.Namespace],
    measure: Callable[[argparse.Namespace], R | None],
    print_table: Callable[[R], None],
) -> int:
    """Parse the options, measure, print the result (a table, or JSON with ``--json``); 0. A
    measurement that returns None (a profile run) has printed what it had to."""
    args = parse(argv)
    res = measure(args)
    if res is not None:
        if args.json:
            print_json(res)
        else:
            print_table(res)
    return 0


def sensor_args(
    ap: argparse.ArgumentParser, name: str, *, ebpf: bool = False
) -> tuple[argparse.Namespace, Capabilities | None] | None:
    """A sensor benchmark's command line (``--json`` added), parsed, and (with `ebpf`) what the
    eBPF backend can do here; None, said on standard error, when this process is not root or the
    eBPF backend it needs is unavailable."""
    ap.add_argument("--json", action="store_true", help="print machine-readable results")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print(f"{name}: needs root", file=sys.stderr)
        return None
    if not ebpf:
        return args, None
    from stockade.sensor.ebpf.backend import EbpfBackend

    caps = EbpfBackend.probe()
    if not caps.available:
        print(f"{name}: eBPF backend unavailable: {caps.reason}", file=sys.stderr)
        return None
    return args, caps
