"""The inventory service over a real store, with containers given to it (this process stands in for
their processes), served by the API: containers appear, stop and are pruned; images list the
containers using them; flows make graph edges served as JSON and DOT; bad parameters are 422."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from stockade.api.app import create_app
from stockade.config import StockadeConfig
from stockade.inventory.images import ImageReader
from stockade.inventory.service import InventoryService
from stockade.sensor.containers.discover import RunningContainer
from stockade.sensor.containers.info import ContainerInfo
from stockade.storage.inventory import InventoryStore
from stockade.storage.store import Store

CID = "c" * 64
IMG = "a" * 64


class Resolver:
    """Describes every container as podman would."""

    def by_id(self, cid: str, runtime: str) -> ContainerInfo:
        return ContainerInfo(
            full_id=cid,
            runtime=runtime,
            name="web-1",
            image="localhost/app:1.2",
            image_repository="localhost/app",
            image_tag="1.2",
            image_id=IMG,
            image_digest="sha256:" + "d" * 64,
            labels={"io.kubernetes.pod.name": "web-7d9c8b6f5-x2k4p"},
            k8s_pod_name="web-7d9c8b6f5-x2k4p",
            k8s_ns_name="shop",
            complete=True,
        )


@pytest.fixture
def scene(
    tmp_path: Path, image_store: Path
) -> Iterator[tuple[InventoryService, TestClient, list[RunningContainer]]]:
    cfg = StockadeConfig(data_dir=str(tmp_path), hostname="node-1")
    store = Store(f"sqlite:///{tmp_path / 'inv.db'}")
    running = [RunningContainer(CID, "podman", "/sys/fs/cgroup/x", 42, (os.getpid(),))]
    svc = InventoryService(
        cfg,
        InventoryStore(store),
        resolver=Resolver(),  # type: ignore[arg-type]
        discover=lambda: list(running),
        images=ImageReader(str(image_store)),
        addresses_of=lambda _pid: frozenset({"10.0.0.2"}),
        clock=lambda: 1_796_600_000_000_000_000,
    )
    try:
        with TestClient(create_app(store, None)) as client:
            yield svc, client, running
    finally:
        store.close()


def test_containers_images_ports_and_the_graph_are_served(
    scene: tuple[InventoryService, TestClient, list[RunningContainer]],
) -> None:
    svc, client, running = scene
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        svc.refresh_now()
        port = srv.getsockname()[1]
    [c] = client.get("/api/v1/inventory/containers").json()["items"]
    assert c["id"] == CID and c["state"] == "running" and c["name"] == "web-1"
    # the workload zero trust uses; the pod's owner from its name
    assert c["workload"] == "k8s/shop/deployment/web"
    assert (c["pod"], c["namespace"], c["owner_kind"], c["owner"]) == (
        "web-7d9c8b6f5-x2k4p",
        "shop",
        "deployment",
        "web",
    )
    assert c["addresses"] == ["10.0.0.2"] and c["image_id"] == IMG
    assert {
        "protocol": "tcp",
        "address": "127.0.0.1",
        "port": port,
        "process": c["ports"][0]["process"],
    } in c["ports"]
    ports = client.get("/api/v1/inventory/ports").json()["items"]
    assert any(p["port"] == port and p["container_id"] == CID and p["pid"] == os.getpid() for p in ports)
    images = {i["id"]: i for i in client.get("/api/v1/inventory/images").json()["items"]}
    assert images[IMG]["containers"] == [CID] and images[IMG]["hostname"] == "node-1"
    [host] = client.get("/api/v1/inventory/hosts").json()["items"]
    assert host["hostname"] == "node-1" and host["containers_running"] == 1 and host["images"] == 2

    # flows through the observer: the graph, as JSON and DOT
    svc.observe(
        {
            "evt.type": "connect",
            "evt.time": 1_796_600_000_000_000_001,
            "evt.rawres": 0,
            "container.id": CID[:12],
            "container.full_id": CID,
            "fd.l4proto": "tcp",
            "fd.sip": "203.0.113.7",
            "fd.sport": 443,
        }
    )
    svc.refresh_now()
    g = client.get("/api/v1/inventory/graph").json()
    [e] = g["edges"]
    assert (e["source"], e["destination"], e["port"], e["count"]) == (
        "k8s/shop/deployment/web",
        "203.0.113.7",
        443,
        1,
    )
    assert e["destination_kind"] == "external" and e["bytes"] is None and "bytes" in g["bytes_note"]
    r = client.get("/api/v1/inventory/graph", params={"format": "dot"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/vnd.graphviz")
    assert '"k8s/shop/deployment/web" -> "203.0.113.7" [label="443/tcp x1"];' in r.text
    for bad in (
        client.get("/api/v1/inventory/graph", params={"format": "svg"}),
        client.get("/api/v1/inventory/containers", params={"stat": "gone"}),
    ):
        assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    summary = client.get("/api/v1/inventory").json()
    assert summary["containers"] == {"running": 1, "gone": 0} and summary["edges"] == 1

    # the container stops: gone, with its stop time; pruned after the retention
    running.clear()
    svc.refresh_now()
    [c] = client.get("/api/v1/inventory/containers", params={"state": "gone"}).json()["items"]
    assert c["stopped"] and c["id"] == CID
    assert client.get("/api/v1/inventory/images").json()["items"][0]["containers"] == []
    assert svc.store.prune(1_796_600_000_000_000_000 + 2) == {"containers": 1, "images": 2, "edges": 1}
    assert client.get("/api/v1/inventory/containers").json()["items"] == []


def test_a_restart_keeps_the_graph_counts_and_marks_containers_gone(
    scene: tuple[InventoryService, TestClient, list[RunningContainer]],
) -> None:
    svc, client, running = scene
    svc.refresh_now()
    ev = {
        "evt.type": "accept4",
        "evt.rawres": 5,
        "container.id": "host",
        "fd.l4proto": "tcp",
        "fd.cip": "198.51.100.1",
        "fd.sport": 22,
    }
    svc.observe(ev)
    svc.close()
    running.clear()
    again = InventoryService(
        svc.cfg, svc.store, resolver=svc.resolver, discover=lambda: [], images=svc.images
    )
    again.start()
    again.observe(ev)
    again.close()
    [e] = client.get("/api/v1/inventory/graph").json()["edges"]
    assert (e["source"], e["destination"], e["port"], e["accepts"]) == ("198.51.100.1", "host", 22, 2)
    [c] = client.get("/api/v1/inventory/containers").json()["items"]
    assert c["state"] == "gone"
