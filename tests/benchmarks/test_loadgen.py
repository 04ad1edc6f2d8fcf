"""benchmarks/loadgen.py's mix: real syscalls in the engine benchmark's proportions (execs capped),
every call succeeding, each kind counted, nothing left behind."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import REPO, need

BENCHMARKS = REPO / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # benchmarks/ is not a package (harness puts src/ on the path)
loadgen = importlib.import_module("loadgen")


def _mix(tmp_path: Path, *args: str) -> dict[str, Any]:
    need(shutil.which("gcc") or shutil.which("cc"), "the mix needs gcc to build benchmarks/loadgen_mix.c")
    cmd = [sys.executable, str(BENCHMARKS / "loadgen.py"), "mix", "--dir", str(tmp_path), *args]
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # where the library is built: gone after the test
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120, env=env)
    assert out.stdout.splitlines()[0] == "go"
    res: dict[str, Any] = json.loads(out.stdout.splitlines()[-1])
    return res


@pytest.mark.parametrize("threads", ["1", "2"])
def test_the_mix_keeps_the_engine_benchmarks_proportions(tmp_path: Path, threads: str) -> None:
    args = ["--marker", "stockade-test-mix", "--rate", "20000", "--seconds", "0.5", "--exec-max", "40"]
    r = _mix(tmp_path, *args, "--threads", threads)
    kinds = r["kinds"]
    assert kinds["failed"] == 0
    assert r["ops"] == sum(kinds[k] for k in loadgen.OP_KINDS) > 0
    # each fd closed again, but each thread's loopback listener
    assert kinds["close"] == kinds["open"] + kinds["socket"] + kinds["accept"] - int(threads)
    # execs at their share of the rate, capped: 40/s for 0.5 s
    assert 0 < kinds["exec"] <= 20
    # the rest keeps the target's proportions (the schedule spreads every unit evenly)
    share = loadgen.mix_shares()
    rest = r["ops"] - kinds["exec"]
    for k in loadgen.OP_KINDS:
        if k != "exec":
            want = rest * share[k] / (1 - share["exec"])
            assert abs(kinds[k] - want) <= 3 + 0.02 * want, (k, kinds[k], want)
    # the temporary files were renamed and removed
    assert not list((tmp_path / "tmp").iterdir())


def test_the_mix_at_full_speed_without_execs(tmp_path: Path) -> None:
    r = _mix(tmp_path, "--seconds", "0.3", "--exec-max", "0")
    assert r["kinds"]["exec"] == 0
    assert r["kinds"]["failed"] == 0
    assert r["ops"] > 1000


def test_execs_take_their_share_of_the_rate_up_to_the_cap() -> None:
    share = loadgen.mix_shares()["exec"]
    assert 0.09 < share < 0.11  # gen_events' 10 %
    assert loadgen.mix_exec_rate(1000, 200) == 1000 * share
    assert loadgen.mix_exec_rate(100_000, 200) == 200
    assert loadgen.mix_exec_rate(0, 200) == 200  # full speed: the cap


def test_the_read_opens_follow_gen_events_families(tmp_path: Path) -> None:
    paths = loadgen.mix_paths(tmp_path)
    assert len(paths) == 100
    libs = [p for p in paths if p.startswith("/usr/lib/")]
    app = [p for p in paths if p.startswith(str(tmp_path))]
    assert (len(libs), len(app)) == (30, 38)
    assert all(Path(p).exists() for p in paths)
