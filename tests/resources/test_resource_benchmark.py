"""benchmarks/resource_sampler.py runs and reports every setting against its floor (a short run:
the figures themselves are in docs/performance.md; timing is not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from helpers import REPO

SETTINGS = ["floor", "sampler", "discovery + sampler", "monitor round", "podman stats"]


@pytest.mark.root
@pytest.mark.containers
def test_the_sampler_benchmark_measures_every_setting() -> None:
    cmd = [sys.executable, str(REPO / "benchmarks" / "resource_sampler.py"), "--json"]
    out = subprocess.run(
        [*cmd, "--containers", "2", "--samples", "3", "--rounds", "2"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    res: dict[str, Any] = json.loads(out.stdout)
    assert (res["containers"], res["samples"], res["rounds"]) == (2, 3, 2)
    assert [f["name"] for f in res["figures"]] == SETTINGS
    for f in res["figures"]:
        assert len(f["us"]) == 2 and all(us > 0 for us in f["us"]), f
    assert set(res["core_share_100_at_10s"]) == set(SETTINGS)
