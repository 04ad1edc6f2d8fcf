"""Latency of allowed operations in a container under enforcement, against the same operations with
no enforcement, in the same run (issue 13: at most 1.3x after warm-up). Root, podman and clang.

    .venv/bin/python benchmarks/enforce_latency.py [--only open,exec] [--opens N] [--execs M]
                                                   [--samples S] [--json]

One podman container (network ``none``) is made from an image imported from a tiny root filesystem:
``/bin/probe`` (``benchmarks/enforce_probe.c`` built statically: the loops run in C inside the
container, so neither Python nor ``podman exec`` is in the figures), ``/etc/passwd``,
``/etc/group`` and ``/etc/bench.txt``. Each operation has one measurement function
(:data:`OPERATIONS`, registered by name; ``--only`` picks some) and its enforcer (an
:class:`Enforcer`: switched on and off around the enforced loops). :func:`compare` runs ``--samples``
pairs of loops back to back (15; the order inside a pair alternates):

* **none**: the loop with no enforcement;
* **enforced**: the enforcer protecting the container with a policy that allows what the loop does
  and blocks everything else, after a warm-up loop of a tenth of the count (the allow cache in
  place); released after the loop;

then, for context, a few loops of a tenth of the count with the allow cache off (**uncached**: every
operation answered by the enforcer's Python thread). Each loop reports wall time and CPU time (user +
system of the probe and its reaped children) per operation. The figures: the best loop of each
setting, and the ratios enforced / none, as the median of the pairs' ratios (the target is checked
on the wall-time one) and best over best. On a machine shared with other work the paired median and
the CPU-time ratio are the steadier figures.

Operations:

* ``open``: ``open(/etc/bench.txt, O_RDONLY)`` + ``close``, ``--opens`` per loop (20,000);
* ``exec``: ``fork`` + ``execv(/bin/probe true)`` + ``waitpid``, ``--execs`` per loop (200).

Both enforced with :class:`stockade.enforce.fileguard.FileGuard`; its counters over the enforced
loops are reported (events decided, cache marks, blocks: a block would mean the policy is wrong and
the figure meaningless). Nothing is pinned: the loop and the enforcer's thread share the machine's
cores as they would in production. A default run takes about 2 minutes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, Self

import harness

from stockade.enforce.fileguard import FileGuard
from stockade.enforce.interface import Denial, FileKind, Verdict

PROBE_SRC = harness.HERE / "enforce_probe.c"
PROBE = "/bin/probe"
BENCH_FILE = "/etc/bench.txt"
#: what runc's init reads in the container before it runs a `podman exec` command
RUNTIME_OPENS = ("/etc/passwd", "/etc/group")
TARGET = 1.3


@dataclass
class Sample:
    """One timed loop: wall and CPU (the probe's and its children's user + system) ns per operation."""

    wall: float
    cpu: float


def _best(samples: list[Sample], attr: str) -> float:
    return min((getattr(s, attr) for s in samples), default=0.0)


@dataclass
class OpFigure:
    """One operation's samples, paired: baseline[i] and enforced[i] were measured back to back."""

    op: str
    what: str
    count: int
    baseline: list[Sample] = field(default_factory=list)
    enforced: list[Sample] = field(default_factory=list)
    uncached: list[Sample] = field(default_factory=list)
    #: the enforcer's counters over the enforced loops (warm-ups included)
    enforcer: dict[str, int] = field(default_factory=dict)
    target: float = TARGET

    def ratio(self, attr: str) -> float:
        """Best enforced over best baseline (wall or cpu)."""
        base = _best(self.baseline, attr)
        return _best(self.enforced, attr) / base if base else 0.0

    def paired_ratio(self, attr: str) -> float:
        """The median of enforced[i] / baseline[i] (wall or cpu)."""
        ratios = [
            getattr(e, attr) / getattr(b, attr) for b, e in zip(self.baseline, self.enforced, strict=True)
        ]
        return statistics.median(ratios) if ratios else 0.0

    def summary(self) -> dict[str, Any]:
        """The best figures, the ratios and whether the target is met (on the paired wall ratio)."""
        out: dict[str, Any] = {
            "op": self.op,
            "what": self.what,
            "count": self.count,
            "samples": len(self.baseline),
        }
        for attr in ("wall", "cpu"):
            out[attr] = {
                "baseline_ns": _best(self.baseline, attr),
                "enforced_ns": _best(self.enforced, attr),
                "uncached_ns": _best(self.uncached, attr),
                "ratio_best": round(self.ratio(attr), 3),
                "ratio_paired_median": round(self.paired_ratio(attr), 3),
            }
        out["target"] = self.target
        out["met"] = 0 < out["wall"]["ratio_paired_median"] <= self.target
        out["enforcer"] = self.enforcer
        out["raw"] = {k: [asdict(s) for s in getattr(self, k)] for k in ("baseline", "enforced", "uncached")}
        return out


@dataclass
class Result:
    """Every operation measured, and where."""

    machine: dict[str, Any]
    ops: list[dict[str, Any]]


@dataclass
class Bench:
    """The container the loops run in."""

    name: str
    id: str
    pid: int

    def probe(self, *args: str) -> str:
        """Run the probe in the container; its last output line."""
        r = subprocess.run(
            ["podman", "exec", self.name, PROBE, *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        lines = r.stdout.strip().splitlines()
        if r.returncode != 0 or not lines:
            raise RuntimeError(f"probe {' '.join(args)}: rc {r.returncode}: {r.stdout} {r.stderr}")
        return lines[-1]

    def loop(self, *args: str) -> Sample:
        """A timed loop of the probe (``bench-open``, ``bench-exec``, ...)."""
        line = self.probe(*args)
        words = line.split()
        if len(words) != 4 or words[0] != "ns_per_op" or words[2] != "cpu_ns_per_op":
            raise RuntimeError(f"probe {' '.join(args)}: {line}")
        return Sample(float(words[1]), float(words[3]))


class Enforcer(Protocol):
    """An enforcer switched on and off around the enforced loops (a context manager for its life)."""

    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> None: ...

    def on(self) -> None:
        """Protect the container."""
        ...

    def off(self) -> None:
        """Release it."""
        ...

    def counters(self) -> dict[str, int]:
        """What the enforcer did so far."""
        ...


# -- enforcement for open and exec --------------------------------------------------------------


def bench_decider(kind: FileKind, path: str) -> Verdict:
    """The policy of the file measurements: the probe may run, the runtime's reads and the bench
    file may be opened; everything else is blocked."""
    ok = path == PROBE if kind == "exec" else path in (*RUNTIME_OPENS, BENCH_FILE)
    return Verdict("allow" if ok else "block", "bench", f"{kind}-bench" if ok else "default")


class FileEnforcer:
    """A FileGuard (with or without its allow cache) protecting the bench container."""

    def __init__(self, bench: Bench, *, cache: bool = True) -> None:
        self.bench = bench
        self.denials: list[Denial] = []
        self.guard = FileGuard(self.denials.append, allow_cache=cache)

    def __enter__(self) -> Self:
        self.guard.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.guard.stop()

    def on(self) -> None:
        """Protect the container with :func:`bench_decider`."""
        self.guard.protect(self.bench.id, self.bench.pid, bench_decider)

    def off(self) -> None:
        """Release the container."""
        self.guard.release(self.bench.id)

    def counters(self) -> dict[str, int]:
        """The guard's counters."""
        return self.guard.stats.as_dict()


def compare(
    fig: OpFigure,
    args: argparse.Namespace,
    loop: Callable[[int], Sample],
    enforcer: Callable[[bool], Enforcer],
) -> OpFigure:
    """`args.samples` pairs of `loop(count)` without and with the enforcer (made by `enforcer(cache)`),
    back to back, the pair's order alternating; the enforced loop after a warm-up loop of a tenth of
    the count. Then a few loops of a tenth of the count with the cache off (context)."""
    warm = max(fig.count // 10, 10)
    with enforcer(True) as e:
        for i in range(args.samples):
            for enforced in (False, True) if i % 2 == 0 else (True, False):
                if not enforced:
                    fig.baseline.append(loop(fig.count))
                    continue
                e.on()
                loop(warm)
                fig.enforced.append(loop(fig.count))
                e.off()
            _progress(f"{fig.op} {i + 1}/{args.samples}: {fig.baseline[-1]} / {fig.enforced[-1]}")
        fig.enforcer = e.counters()
    with enforcer(False) as e:
        for _ in range(max(args.samples // 5, 1)):
            e.on()
            fig.uncached.append(loop(warm))
            e.off()
    return fig


def _file_op(bench: Bench, args: argparse.Namespace, fig: OpFigure, command: str, target: str) -> OpFigure:
    """A probe loop (`command` on `target`) compared without and with a FileGuard."""
    return compare(
        fig,
        args,
        lambda n: bench.loop(command, target, str(n)),
        lambda cache: FileEnforcer(bench, cache=cache),
    )


def measure_open(bench: Bench, args: argparse.Namespace) -> OpFigure:
    """open + close of an allowed file."""
    fig = OpFigure("open", f"open({BENCH_FILE}) + close", args.opens)
    return _file_op(bench, args, fig, "bench-open", BENCH_FILE)


def measure_exec(bench: Bench, args: argparse.Namespace) -> OpFigure:
    """fork + exec of an allowed static binary + wait."""
    fig = OpFigure("exec", f"fork + execv({PROBE} true) + wait", args.execs)
    return _file_op(bench, args, fig, "bench-exec", PROBE)


#: one measurement function per operation (``--only`` picks among them, in this order)
OPERATIONS: dict[str, Callable[[Bench, argparse.Namespace], OpFigure]] = {
    "open": measure_open,
    "exec": measure_exec,
}


# -- the container ----------------------------------------------------------------------------------


def _progress(msg: str) -> None:
    print(f"enforce_latency: {msg}", file=sys.stderr, flush=True)


def build_probe(out: Path) -> Path:
    """benchmarks/enforce_probe.c, built statically."""
    cc = shutil.which("clang") or shutil.which("cc")
    if cc is None:
        raise SystemExit("enforce_latency: needs clang (scripts/install.sh)")
    r = subprocess.run([cc, "-O2", "-static", "-o", str(out), str(PROBE_SRC)], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"enforce_latency: building {PROBE_SRC} failed: {r.stderr}")
    return out


def make_image(work: Path, tag: str) -> None:
    """An image with the probe, the files it opens and nothing else."""
    root = work / "rootfs"
    for d in ("bin", "etc", "tmp", "proc", "sys", "dev"):
        (root / d).mkdir(parents=True)
    build_probe(root / "bin" / "probe")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/:/bin/probe\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    (root / "etc" / "bench.txt").write_text("bench\n")
    with tarfile.open(work / "rootfs.tar", "w") as tf:
        tf.add(root, arcname=".")
    r = subprocess.run(["podman", "import", str(work / "rootfs.tar"), tag], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"enforce_latency: podman import failed: {r.stderr}")


@contextlib.contextmanager
def container(work: Path) -> Iterator[Bench]:
    """A running container of the bench image (removed, with the image, afterwards)."""
    sys.path.insert(0, str(harness.REPO / "tests"))
    from containers import CONTAINERS_CONF  # what podman needs on this machine kind (one home)

    conf = work / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    os.environ.setdefault("CONTAINERS_CONF", str(conf))
    tag = f"localhost/stockade-bench-enforce:{os.getpid()}"
    name = f"stockade-bench-enforce-{os.getpid()}"
    make_image(work, tag)
    try:
        r = subprocess.run(
            ["podman", "run", "-d", "--name", name, "--network", "none", tag, PROBE, "sleep"],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            raise SystemExit(f"enforce_latency: podman run failed: {r.stderr}")
        cid = r.stdout.strip()
        pid = subprocess.run(
            ["podman", "inspect", "--format", "{{.State.Pid}}", name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        yield Bench(name, cid, int(pid))
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True)
        subprocess.run(["podman", "rmi", "-f", tag], capture_output=True)


# -- command line -------------------------------------------------------------------------------------


def _only(value: str) -> list[str]:
    ops = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [o for o in ops if o not in OPERATIONS]
    if unknown or not ops:
        raise argparse.ArgumentTypeError(f"unknown operation(s) {unknown}; known: {', '.join(OPERATIONS)}")
    return ops


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--only", type=_only, default=list(OPERATIONS), help=f"operations ({','.join(OPERATIONS)})"
    )
    ap.add_argument("--opens", type=int, default=20_000, help="opens per loop (default 20,000)")
    ap.add_argument("--execs", type=int, default=200, help="execs per loop (default 200)")
    ap.add_argument("--samples", type=int, default=15, help="pairs of loops per operation (default 15)")
    ap.add_argument("--json", action="store_true", help="print machine-readable results")
    return ap.parse_args(argv)


def measure(args: argparse.Namespace) -> Result:
    if os.geteuid() != 0:
        raise SystemExit("enforce_latency: needs root")
    if shutil.which("podman") is None:
        raise SystemExit("enforce_latency: needs podman")
    with tempfile.TemporaryDirectory(prefix="stockade-enforce-bench-") as tmp, container(Path(tmp)) as bench:
        figures = [OPERATIONS[op](bench, args).summary() for op in args.only]
    return Result(harness.machine_info(), figures)


def _us(ns: float) -> str:
    return f"{ns / 1000:,.2f} us"


def print_table(res: Result) -> None:
    m = res.machine
    print(
        f"CPU: {m['cpu_model']} x {m['nproc']}, load {m['loadavg']}; best of each setting, ratios enforced/none"
    )
    print(
        "| operation | pairs | none: wall (cpu) | enforced: wall (cpu) | ratio wall: paired median (best) "
        "| ratio cpu: paired median (best) | target | met? | uncached: wall (cpu) |"
    )
    print("|---|---:|---:|---:|---:|---:|---|---|---:|")
    for f in res.ops:
        w, c = f["wall"], f["cpu"]
        print(
            f"| {f['what']} | {f['samples']} | {_us(w['baseline_ns'])} ({_us(c['baseline_ns'])}) "
            f"| {_us(w['enforced_ns'])} ({_us(c['enforced_ns'])}) "
            f"| {w['ratio_paired_median']:.2f}x ({w['ratio_best']:.2f}x) "
            f"| {c['ratio_paired_median']:.2f}x ({c['ratio_best']:.2f}x) | <= {f['target']}x "
            f"| {'yes' if f['met'] else '**no**'} | {_us(w['uncached_ns'])} ({_us(c['uncached_ns'])}) |"
        )
    for f in res.ops:
        print(f"{f['op']}: enforcer counters over the enforced loops: {f['enforcer']}")


def main(argv: Sequence[str] | None = None) -> int:
    return harness.main(argv, parse_args, measure, print_table)


if __name__ == "__main__":
    raise SystemExit(main())
