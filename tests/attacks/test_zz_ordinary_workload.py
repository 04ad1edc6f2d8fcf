"""The ordinary workload that ran beside every attack of this directory (tests/ordinary_workload.py)
raised no alert from the pack in at least five minutes: a web server and its log, a client loop,
health-check execs, package-free log rotation. Named to run last in the directory."""

from __future__ import annotations

import pytest

from ordinary_workload import MIN_SECONDS, OrdinaryWorkload

pytestmark = [pytest.mark.root, pytest.mark.containers, pytest.mark.ebpf, pytest.mark.slow]


def test_an_ordinary_workload_raises_no_alert_from_the_pack(ordinary_workload: OrdinaryWorkload) -> None:
    w = ordinary_workload
    alerts = w.finish()
    assert w.elapsed() >= MIN_SECONDS
    # the workload did its work: health checks passed (a few may time out on busy cores), logs
    # were rotated
    assert w.counts["health_ok"] >= MIN_SECONDS / 10 and w.counts["rotations"] >= 4, (w.counts, w.errors[-5:])
    assert alerts == [], [(a.rule, a.output) for a in alerts]
