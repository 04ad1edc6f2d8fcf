"""benchmarks/incidents.py: both settings measured on the same alerts, and one incident per
workload opened (the workloads' process trees never merge them)."""

from __future__ import annotations

import json
import subprocess
import sys

from helpers import REPO


def test_grouping_is_measured_against_storing() -> None:
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "incidents.py"),
        "--count",
        "600",
        "--workloads",
        "30",
        "--repeat",
        "1",
        "--json",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["count"] == 600 and r["incidents_opened"] == 30
    assert r["baseline_alerts_per_cpu_s"] > 0 and r["incidents_alerts_per_cpu_s"] > 0
    # the ratio is grouping's CPU over storing's: the rates' inverse ratio (rounded)
    expected = r["baseline_alerts_per_cpu_s"] / r["incidents_alerts_per_cpu_s"]
    assert abs(r["ratio"] - expected) <= 0.05 * expected + 0.01, (r["ratio"], expected)
