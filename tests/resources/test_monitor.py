"""The runtime's resource monitor, round by round on a FakeClock: a container of a pure cgroup2 node
(tests/resources/cgnode.py) described by its runtime's files (docker's), sampled, stored, learned,
alerted on, muted, pruned, and its baselines learned again after a restart; the API over it, and
muting a resource rule on the real runtime."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from resources.cgnode import CID, Node
from stockade.config import StockadeConfig, load_config
from stockade.errors import NotFoundError
from stockade.model.alert import Alert
from stockade.model.clock import FakeClock
from stockade.model.mute import MuteRequest
from stockade.resources.sampler import Sampler
from stockade.runtime.resources import RULE_NAMES, ResourceMonitor
from stockade.runtime.service import Runtime
from stockade.sensor.containers.discover import RunningContainer
from stockade.sensor.containers.resolver import ContainerResolver
from stockade.storage.resources import ResourceStore
from stockade.storage.store import Store

WID = "container/localhost/miner/web"
CPU_RULE = "Container CPU above workload baseline"


def _config(tmp_path: Path) -> StockadeConfig:
    return load_config(
        None,
        {
            "data_dir": str(tmp_path / "data"),
            "hostname": "node-1",
            "engine": {"aggregate_window_s": 0},
            "resources": {
                "interval_s": 1,
                "window_s": 5,
                "learn_s": 5,
                "min_samples": 5,
                "retention_s": 3600,
                "metrics": {"cpu": {"floor": 0.5}},
            },
        },
        environ={},
    )


def _docker_files(root: Path) -> Path:
    """The container as docker's daemon describes it in its files."""
    d = root / CID
    d.mkdir(parents=True)
    (d / "config.v2.json").write_text(
        json.dumps(
            {
                "Name": "/web-1",
                "Image": "sha256:" + "e" * 64,
                "Config": {"Image": "localhost/miner:1.0", "Labels": {}},
                "State": {"Pid": 4242, "StartedAt": "2027-01-15T08:00:00Z"},
            }
        )
    )
    return root


class Harness:
    """A monitor over the node's container and a SQLite store, on a FakeClock."""

    def __init__(self, tmp_path: Path, node: Node, store: Store, emit_result: int = 1) -> None:
        self.node = node
        self.clock = FakeClock(1_800_000_000.0)
        self.emitted: list[Alert] = []
        self.usage = 1_000_000
        container = node.container()
        docker = RunningContainer(container.full_id, "docker", container.cgroup_dir, 1, container.pids)

        def emit(alerts: list[Alert]) -> int:
            self.emitted += alerts
            return emit_result * len(alerts)

        self.monitor = ResourceMonitor(
            _config(tmp_path),
            ResourceStore(store),
            emit,
            clock=self.clock,
            resolver=ContainerResolver(docker_root=str(_docker_files(tmp_path / "docker")), runc_roots=()),
            discover=lambda: [docker],
            sampler=Sampler(clock=self.clock, proc=str(node.proc), hierarchies={}),
        )

    def run(self, seconds: int, cores: float) -> list[Alert]:
        out = []
        for _ in range(seconds):
            self.usage += int(cores * 1_000_000)
            self.node.set(usage_usec=self.usage)
            self.clock.advance(1.0)
            out += self.monitor.tick()
        return out


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(f"sqlite:///{tmp_path / 'stockade.db'}") as s:
        yield s


def test_a_burner_alerts_within_the_window_and_everything_is_kept(
    tmp_path: Path, node: Node, store: Store
) -> None:
    h = Harness(tmp_path, node, store)
    assert h.run(10, cores=0.02) == []  # learning, then normal
    alerts = h.run(10, cores=1.0)
    assert [a.rule for a in alerts] == [CPU_RULE] and h.emitted == alerts
    [alert] = alerts
    assert alert.workload == WID and alert.output_fields["container.name"] == "web-1"
    assert alert.output_fields["container.image.repository"] == "localhost/miner"
    assert alert.time_ns == int((1_800_000_000 + 15) * 1e9)  # 4 s after the burn began (t=11)
    [row] = h.monitor.latest()
    assert (row["container_id"], row["workload"], row["container_name"]) == (CID, WID, "web-1")
    assert row["deviating"] == ["cpu"] and row["alerts"] == 1 and row["risk"]["cpu"] > 1
    hist = h.monitor.history("web-1", since_ns=None, until_ns=None, limit=100)
    assert hist["container_id"] == CID and hist["total"] == 20
    assert [i["cpu_cores"] for i in hist["items"]][-1] == pytest.approx(1.0)
    st = h.monitor.status()
    assert st["counters"]["rounds"] == 20 and st["counters"]["alerts"] == 1 and st["baselines_ready"] == 1
    assert st["containers"] == 1 and st["errors"] == []


def test_a_restart_keeps_a_learned_baseline_and_learning_goes_on_from_the_store(
    tmp_path: Path, node: Node, store: Store
) -> None:
    h = Harness(tmp_path, node, store)
    h.run(3, cores=0.02)  # learning (5 s and 5 samples)
    again = Harness(tmp_path / "again", node, store)
    again.clock.advance(3.0)
    assert again.monitor.seed() == 3 and not again.monitor.watch.baselines[WID].frozen
    again.usage = h.usage
    again.run(4, cores=0.02)
    assert again.monitor.watch.baselines[WID].frozen and again.monitor.watch.baselines[WID].samples == 5
    [rec] = ResourceStore(store).load_baselines()
    assert rec.workload == WID and rec.samples == 5

    # restarted once learned: the stored baseline is loaded, nothing is learned again, a burner
    # alerts at once, even one that started while the node was down
    third = Harness(tmp_path / "third", node, store)
    third.clock.advance(8.0)
    third.usage = again.usage
    assert third.monitor.seed() == 0 and third.monitor.watch.baselines[WID].frozen
    assert [a.rule for a in third.run(8, cores=1.0)] == [CPU_RULE]
    third.clock.advance(7200.0)  # past the retention (3600 s)
    third.run(1, cores=0.02)
    assert third.monitor.stats["pruned"] == 15
    assert len(ResourceStore(store).history(CID)) == 1

    assert third.monitor.relearn(WID) == {"workload": WID, "state": "learning"}
    assert ResourceStore(store).load_baselines() == [] and WID not in third.monitor.watch.baselines
    with pytest.raises(NotFoundError):
        third.monitor.relearn(WID)
    third.run(1, cores=0.02)
    [row] = third.monitor.latest()
    assert row["baseline"]["state"] == "learning"


def test_a_muted_alert_is_counted_as_muted(tmp_path: Path, node: Node, store: Store) -> None:
    h = Harness(tmp_path, node, store, emit_result=0)
    h.run(10, cores=0.02)
    assert len(h.run(10, cores=1.0)) == 1
    [row] = h.monitor.latest()
    assert row["alerts"] == 0 and h.monitor.stats["muted"] == 1


def test_the_api_serves_the_latest_samples_and_a_history(tmp_path: Path, node: Node) -> None:
    from stockade.api.app import create_app

    rt = Runtime(_config(tmp_path))
    try:
        with TestClient(create_app(rt.store, rt)) as c:
            r = c.get("/api/v1/resources")
            assert r.status_code == 409 and "sampled where the sensor runs" in r.json()["detail"]
            h = Harness(tmp_path, node, rt.store)
            rt.res = h.monitor
            h.run(10, cores=0.02)
            h.run(8, cores=1.0)
            body: dict[str, Any] = c.get("/api/v1/resources").json()
            [row] = body["items"]
            assert body["total"] == 1 and row["workload"] == WID and row["alerts"] == 1
            assert row["baseline"]["state"] == "ready" and row["baseline"]["metrics"]["cpu"]["limit"] > 0
            assert row["deviating"] == ["cpu"] and set(row["risk"]) >= {"cpu", "pids", "tx_bps"}
            hist = c.get(f"/api/v1/resources/{CID[:10]}", params={"limit": 5}).json()
            assert hist["container_id"] == CID and hist["total"] == 5
            assert hist["items"][0]["time"] < hist["items"][-1]["time"]
            assert c.get("/api/v1/resources/web-1", params={"since": "1h"}).json()["total"] == 18
            assert c.get("/api/v1/resources/nosuch").status_code == 404
            assert c.get("/api/v1/resources/web-1", params={"sinse": "1h"}).status_code == 422
            assert c.get("/api/v1/resources/web-1", params={"since": "yesterday"}).status_code == 422
            paths = c.get("/openapi.json").json()["paths"]
            assert {"/api/v1/resources", "/api/v1/resources/{container_id}"} <= set(paths)
            status = c.get("/api/v1/status").json()
            assert status["runtime"]["resources"]["counters"]["alerts"] == 1
            r = c.delete(f"/api/v1/resources/baselines/{WID}")  # the id's slashes as they are
            assert r.status_code == 200 and r.json() == {"workload": WID, "state": "learning"}
            r = c.delete(f"/api/v1/resources/baselines/{quote(WID, safe='')}")  # or encoded
            assert r.status_code == 404 and "no resource baseline" in r.json()["detail"]
    finally:
        rt.close()


def test_a_resource_rule_can_be_muted_like_any_rule(tmp_path: Path) -> None:
    rt = Runtime(_config(tmp_path))
    try:
        for rule in sorted(RULE_NAMES):
            m = rt.add_mute(MuteRequest(rule=rule, reason="noisy batch job", workload=WID, for_="1h"))
            assert m.rule == rule and rt.list_mutes()[-1].id == m.id
    finally:
        rt.close()
