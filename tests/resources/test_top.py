"""`stockade top`'s rendering of the API's rows, and its line in `stockade status` (the command
itself runs against a real instance in test_resources_e2e.py)."""

from __future__ import annotations

from typing import Any

from stockade.cli.top_cmd import COLUMNS, _line, status_line

ROW: dict[str, Any] = {
    "container_id": "3f1c2a9d8e7b" + "0" * 52,
    "container_name": "web-1",
    "workload": "container/localhost/shop/web",
    "cpu_cores": 0.979,
    "memory_bytes": 1258291,
    "memory_limit_bytes": 1 << 30,
    "pids": 2,
    "open_files": 6,
    "rx_bytes": 1434,
    "tx_bytes": 2150,
    "tx_bps": 0.0,
    "risk": {"cpu": 1.883, "pids": 0.038, "tx_bps": 0.0},
    "deviating": ["cpu"],
    "alerts": 1,
    "baseline": {"state": "ready"},
}


def test_a_row_reads_like_podman_stats_with_risk_columns() -> None:
    line = dict(zip(COLUMNS, _line(ROW), strict=True))
    assert line == {
        "CONTAINER": "web-1",
        "WORKLOAD": "container/localhost/shop/web",
        "CPU": "97.9%",
        "CPU RISK": "188%!",
        "MEM": "1.2MiB / 1.0GiB",
        "PIDS": "2",
        "PIDS RISK": "4%",
        "FILES": "6",
        "NET RX / TX": "1.4KiB / 2.1KiB",
        "EGRESS": "0B/s",
        "ALERTS": "1",
        "BASELINE": "ready",
    }


def test_a_row_without_figures_or_baseline_shows_dashes() -> None:
    bare: dict[str, Any] = {"container_id": "ab" * 32, "risk": {}, "baseline": None}
    assert _line(bare) == ["abababababab", "-", "-", "-", "-", "-", "-", "-", "- / -", "-", "0", "-"]


def test_the_status_line() -> None:
    assert status_line(None).startswith("resources: not sampled here")
    res = {
        "containers": 3,
        "interval_s": 10.0,
        "workloads": 2,
        "baselines_ready": 1,
        "counters": {"alerts": 4},
    }
    assert status_line(res) == (
        "resources: 3 containers every 10.0s, 1 of 2 workload baselines ready, 4 alerts (`stockade top`)"
    )
