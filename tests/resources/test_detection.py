"""The baseline per workload, sustained deviations and their alerts: learning, limits, spikes that
do not alert, deviations that do (once), evidence, and mutes per workload."""

from __future__ import annotations

from typing import Any

import pytest

from stockade.config import ResourceMetricsConfig, ResourcesConfig
from stockade.model.mute import Mute
from stockade.resources.alerts import RULES, SOURCE
from stockade.resources.baseline import Baseline, percentile
from stockade.resources.detector import Detector
from stockade.resources.metrics import METRICS, human, human_bytes
from stockade.resources.watch import Owner, ResourceWatch
from stockade.runtime.mutes import MuteSet
from stockade.storage.resources import ResourceSample

S = 1_000_000_000
T0 = 1_800_000_000 * S
WID = "container/localhost/miner/web"
CID = "ab" * 32
FIELDS: dict[str, Any] = {
    "container.id": CID[:12],
    "container.full_id": CID,
    "container.name": "web-1",
    "container.image.repository": "localhost/miner",
}


def cfg(**over: Any) -> ResourcesConfig:
    base: dict[str, Any] = {
        "interval_s": 1,
        "window_s": 5,
        "learn_s": 10,
        "min_samples": 10,
        "metrics": {"cpu": {"floor": 0.5}, "pids": {"floor": 20}, "tx_bps": {"floor": 1_000_000}},
    }
    base.update(over)
    return ResourcesConfig.model_validate(base)


def sample(t: int, cid: str = CID, workload: str | None = WID, **values: Any) -> ResourceSample:
    v: dict[str, Any] = {
        "cpu_cores": 0.02,
        "memory_bytes": 50 << 20,
        "pids": 3,
        "open_files": 10,
        "rx_bps": 100.0,
        "tx_bps": 200.0,
    }
    v.update(values)
    return ResourceSample(
        container_id=cid, time_ns=T0 + t * S, workload=workload, container_name="web-1", **v
    )


def test_the_metrics_are_the_configured_ones() -> None:
    assert tuple(METRICS) == tuple(ResourceMetricsConfig.model_fields)


def test_percentiles_and_human_units() -> None:
    assert percentile([], 99) == 0.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile([0.0, 10.0], 99) == pytest.approx(9.9)
    assert human_bytes(1536) == "1.5KiB" and human_bytes(12) == "12B"
    assert human("cpu", 0.984) == "0.98 cores" and human("tx_bps", 3 << 20) == "3.0MiB/s"
    assert human("pids", 37) == "37" and human("memory", None) == "-"


def test_a_baseline_learns_then_freezes() -> None:
    b = Baseline(WID, cfg(), T0)
    for t in range(9):
        assert not b.advance(T0 + t * S)
        b.learn(sample(t, cpu_cores=0.1))
    assert not b.advance(T0 + 20 * S) and not b.frozen  # 9 samples of 10
    b.learn(sample(9, cpu_cores=0.1))
    assert not b.advance(T0 + 9 * S)  # learned for 9 s of 10
    assert b.to_dict()["state"] == "learning" and b.limit("cpu") is not None  # shown while learning
    assert b.advance(T0 + 10 * S) and b.frozen and b.ready_ns == T0 + 10 * S
    assert not b.advance(T0 + 11 * S)  # once
    lim = b.limit("cpu")
    assert lim is not None and (lim.p50, lim.high, lim.samples) == pytest.approx((0.1, 0.1, 10))
    assert lim.limit == pytest.approx(0.6)  # max(0.1 * 2, 0.1 + 0.5): the floor wins for an idle one
    pids = b.limit("pids")
    assert pids is not None and pids.limit == pytest.approx(23.0)
    b.learn(sample(10, cpu_cores=0.55))  # frozen: a value under the limit is not learned either
    after = b.limit("cpu")
    assert after == lim and b.samples == 10
    d = b.to_dict()
    assert (
        d["state"] == "ready" and d["ready"].startswith("2027-01-15T") and d["metrics"]["cpu"]["limit"] == 0.6
    )


def test_a_frozen_baseline_is_stored_and_read_back_with_the_limits_configured_now() -> None:
    b = Baseline(WID, cfg(), T0)
    for t in range(12):
        b.learn(sample(t, cpu_cores=0.1 * (t % 3)))
    b.advance(T0 + 12 * S)
    rec = b.record()
    assert (rec.workload, rec.first_ns, rec.ready_ns, rec.samples) == (WID, T0, T0 + 12 * S, 12)
    again = Baseline.from_record(rec, cfg(metrics={"cpu": {"factor": 3.0, "floor": 0.1}}))
    assert again.frozen and again.limits().keys() == b.limits().keys()
    cpu, cpu_again = b.limit("cpu"), again.limit("cpu")
    assert cpu is not None and cpu_again is not None and cpu_again.high == cpu.high
    assert cpu_again.limit == pytest.approx(cpu.high * 3.0)


def test_a_high_baseline_scales_by_its_factor() -> None:
    b = Baseline(WID, cfg(), T0)
    for t in range(20):
        b.learn(sample(t, cpu_cores=1.0 + (t % 2) * 0.2))
    lim = b.limit("cpu")
    assert lim is not None and lim.high == pytest.approx(1.2) and lim.limit == pytest.approx(2.4)


def _run(det: Detector, values: list[float], limit: float = 0.6) -> list[tuple[int, str]]:
    from stockade.resources.baseline import Limit

    lim = Limit(p50=0.02, high=0.05, limit=limit, samples=100)
    out = []
    for t, v in enumerate(values):
        found = det.observe(sample(t, cpu_cores=v), WID, {"cpu": lim})
        out += [(t, f.metric) for f in found]
    return out


def test_a_spike_shorter_than_the_window_does_not_alert() -> None:
    det = Detector(cfg())
    assert _run(det, [0.02] * 8 + [3.0] * 4 + [0.02] * 8) == []


def test_a_sustained_deviation_alerts_once_within_the_window() -> None:
    det = Detector(cfg())
    found = _run(det, [0.02] * 8 + [3.0] * 20)
    # the window (5 s, samples at t-5..t) holds 5 of 6 above the limit 5 s after it started
    assert found == [(12, "cpu")]
    assert det.deviating(CID) == ["cpu"]


def test_one_sample_under_the_limit_does_not_hide_a_deviation() -> None:
    det = Detector(cfg())
    assert _run(det, [0.02] * 8 + [3.0, 3.0, 0.3, 3.0, 3.0, 3.0, 3.0]) == [(13, "cpu")]


def test_a_deviation_ends_when_the_window_is_clean_and_alerts_again() -> None:
    det = Detector(cfg())
    values = [0.02] * 8 + [3.0] * 8 + [0.02] * 6 + [3.0] * 8
    assert _run(det, values) == [(12, "cpu"), (26, "cpu")]  # 4 s after each start


def test_nothing_alerts_before_the_container_was_seen_for_a_window() -> None:
    det = Detector(cfg())
    assert _run(det, [3.0] * 4) == []
    assert _run(Detector(cfg()), [3.0] * 6) == [(5, "cpu")]


def test_metrics_that_do_not_alert_are_shown_as_deviating_only() -> None:
    det = Detector(cfg(metrics={"cpu": {"alert": False, "floor": 0.5}}))
    assert _run(det, [0.02] * 8 + [3.0] * 10) == []
    assert det.deviating(CID) == ["cpu"]


def _watch(**over: Any) -> ResourceWatch:
    return ResourceWatch(cfg(**over), "node-1")


def _feed(w: ResourceWatch, start: int, n: int, **values: Any) -> list[Any]:
    alerts = []
    for t in range(start, start + n):
        alerts += w.observe([sample(t, **values)], {CID: Owner(WID, "web-1", FIELDS)})
    return alerts


def test_a_miner_raises_one_alert_with_its_evidence() -> None:
    w = _watch()
    assert _feed(w, 0, 15) == []  # learning (10 s, 10 samples), then normal
    [alert] = _feed(w, 15, 10, cpu_cores=1.0)
    assert alert.rule == RULES["cpu"].name == "Container CPU above workload baseline"
    assert alert.priority == "Warning" and alert.source == SOURCE == "resources"
    assert "T1496" in alert.tags and "mitre_impact" in alert.tags
    assert alert.workload == WID and alert.hostname == "node-1"
    of = alert.output_fields
    assert of["container.name"] == "web-1" and of["container.full_id"] == CID
    assert of["stockade.workload"] == WID and of["stockade.metric"] == "cpu"
    assert of["stockade.value"] == 1.0 and of["stockade.baseline.limit"] == pytest.approx(0.52)
    assert of["stockade.baseline.high"] == pytest.approx(0.02) and of["stockade.baseline.samples"] == 10
    assert of["stockade.above"] == "5/6" and of["stockade.window_s"] == 5.0
    ev = of["stockade.evidence"]
    assert [e["value"] for e in ev] == [0.02, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert ev[-1]["time"].startswith("2027-01-15T")
    assert "CPU of container web-1 (abababababab) at 1.00 cores for 5s" in alert.output
    assert f"in workload {WID}" in alert.output
    [row] = w.rows()
    assert row["deviating"] == ["cpu"] and row["risk"]["cpu"] == pytest.approx(1 / 0.52, rel=1e-3)
    assert row["baseline"]["state"] == "ready" and row["baseline"]["samples"] == 10
    assert [b.workload for b in w.frozen] == [WID]  # for the caller to store


def test_a_fork_bomb_and_an_egress_burst_raise_their_own_rules() -> None:
    w = _watch()
    _feed(w, 0, 15)
    [pids] = _feed(w, 15, 10, pids=400)
    assert pids.rule == "Container process count above workload baseline" and "T1499" in pids.tags
    w2 = _watch()
    _feed(w2, 0, 15)
    [egress] = _feed(w2, 15, 10, tx_bps=50e6)
    assert egress.rule == "Container network egress above workload baseline"
    assert {"T1048", "mitre_exfiltration"} <= set(egress.tags)
    assert "network egress of container web-1" in egress.output and "47.7MiB/s" in egress.output


def test_replicas_share_a_baseline_and_a_stopped_container_is_forgotten() -> None:
    w = _watch()
    other = "cd" * 32
    for t in range(12):
        w.observe([sample(t), sample(t, cid=other)], {})
    assert list(w.baselines) == [WID] and w.baselines[WID].samples == 20  # frozen at t=10
    assert {r["container_id"] for r in w.rows()} == {CID, other}
    w.alerts[other] = 3
    w.observe([sample(12)], {})
    assert [r["container_id"] for r in w.rows()] == [CID] and other not in w.alerts


def test_an_undescribed_container_is_shown_without_a_baseline() -> None:
    w = _watch()
    w.observe([sample(0, workload=None)], {})
    [row] = w.rows()
    assert row["baseline"] is None and row["risk"]["cpu"] is None and w.baselines == {}


def test_seeding_learns_stored_samples_into_baselines_still_learning_only() -> None:
    w = _watch()
    learned = Baseline("container/localhost/db/db", cfg(), T0)
    for t in range(12):
        learned.learn(sample(t, workload=learned.workload))
    learned.advance(T0 + 12 * S)
    w.load([learned.record()])
    stored = [sample(t) for t in range(12)] + [
        sample(t, workload=learned.workload, cpu_cores=9.0) for t in range(3)
    ]
    assert w.seed([*stored, sample(13, workload=None)]) == 10  # frozen at t=10
    b = w.baselines[WID]
    assert b.frozen and b.samples == 10 and [x.workload for x in w.frozen] == [WID]
    assert w.baselines[learned.workload].limit("cpu") == learned.limit("cpu")  # untouched
    assert w.forget(WID) and not w.forget(WID) and WID not in w.baselines


def test_a_mute_for_the_workload_silences_the_alert_and_no_other() -> None:
    w = _watch()
    _feed(w, 0, 15)
    [alert] = _feed(w, 15, 10, cpu_cores=1.0)
    mutes = MuteSet(clock=lambda: 0)
    rule = RULES["cpu"].name
    for selector, muted in (
        (WID, True),
        ("container:web-1", True),
        (f"container:{CID[:8]}", True),
        ("image:localhost/miner", True),
        ("container/localhost/other/web", False),
    ):
        mutes.load([Mute(rule=rule, reason="test", expires_ns=10, created_ns=0, workload=selector)])
        assert (mutes.filter([alert]) == []) is muted, selector
    mutes.load([Mute(rule=RULES["pids"].name, reason="test", expires_ns=10, created_ns=0, workload=WID)])
    assert mutes.filter([alert]) == [alert]
