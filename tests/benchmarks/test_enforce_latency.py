"""benchmarks/enforce_latency.py: the loops run in the container with and without the enforcer, the
enforced ones really enforced (decided, cached, nothing blocked), the operations chosen by --only,
and the ratios computed from paired samples."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from typing import Any

import pytest

from helpers import REPO

BENCHMARKS = REPO / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # benchmarks/ is not a package (harness puts src/ on the path)
bench = importlib.import_module("enforce_latency")


def _run(*args: str) -> dict[str, Any]:
    cmd = [sys.executable, str(BENCHMARKS / "enforce_latency.py"), "--json", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    assert out.returncode == 0, out.stderr
    res: dict[str, Any] = json.loads(out.stdout)
    return res


@pytest.mark.root
@pytest.mark.containers
def test_open_and_exec_are_measured_with_and_without_the_guard() -> None:
    res = _run("--opens", "2000", "--execs", "20", "--samples", "2")
    assert [f["op"] for f in res["ops"]] == ["open", "exec"]
    for f in res["ops"]:
        assert f["samples"] == 2
        assert len(f["raw"]["baseline"]) == len(f["raw"]["enforced"]) == 2
        assert f["raw"]["uncached"]
        for attr in ("wall", "cpu"):
            assert f[attr]["baseline_ns"] > 0
            assert f[attr]["enforced_ns"] > 0
            assert f[attr]["ratio_paired_median"] > 0
        counters = f["enforcer"]
        # the enforced loops were decided and then answered by the kernel's cache, nothing blocked
        assert counters["events"] > 0
        assert counters["cache_marks"] > 0
        assert counters["blocked"] == counters["errors"] == 0
    opens, execs = res["ops"]
    # the cache works: each enforced loop reached the guard a handful of times, not per operation
    assert opens["enforcer"]["events"] < 2 * 10
    assert execs["enforcer"]["events"] < 2 * 10


@pytest.mark.root
@pytest.mark.containers
def test_only_measures_the_operations_named() -> None:
    res = _run("--only", "exec", "--execs", "10", "--samples", "1")
    assert [f["op"] for f in res["ops"]] == ["exec"]


def test_unknown_operations_are_refused() -> None:
    assert bench.parse_args(["--only", "exec,open"]).only == ["exec", "open"]
    with pytest.raises(argparse.ArgumentTypeError, match="unknown operation"):
        bench._only("open,fly")
    assert list(bench.OPERATIONS) == ["open", "exec"]


def test_the_ratios_pair_each_enforced_loop_with_its_baseline() -> None:
    s = bench.Sample
    fig = bench.OpFigure("open", "open", 10)
    fig.baseline = [s(10.0, 5.0), s(20.0, 6.0), s(12.0, 5.0)]
    fig.enforced = [s(11.0, 5.5), s(10.0, 6.0), s(24.0, 5.0)]
    assert fig.ratio("wall") == 1.0  # best 10 over best 10
    assert fig.paired_ratio("wall") == pytest.approx(1.1)  # median of 1.1, 0.5, 2.0
    summary = fig.summary()
    assert summary["met"]
    assert summary["cpu"]["ratio_paired_median"] == 1.0  # median of 1.1, 1.0, 1.0
