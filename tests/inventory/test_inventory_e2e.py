"""The live inventory end to end, as a user runs it: `stockade up`, then podman containers on a
bridge network of the test's own.

* containers appear (id, name, image, workload, addresses) and, once stopped, are marked gone with
  their stop time;
* the image they run is listed with its digest, its layers and the containers using it;
* a port a container listens on (busybox httpd) is attributed to that container and process;
* requests (busybox nc) from one container to the other show as one edge workload -> workload with the port and
  the count, in JSON and in Graphviz DOT that `dot` renders.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from containers import PodmanFactory, _run
from helpers import need, wait_until

pytestmark = [pytest.mark.root, pytest.mark.containers, pytest.mark.ebpf, pytest.mark.slow]

PORT = 8080


def _by_id(up: Any) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in up.api("/inventory/containers")["items"]}


def _edge(up: Any, src: str, dst: str) -> dict[str, Any] | None:
    for e in up.api("/inventory/graph")["edges"]:
        if e["source"] == src and e["destination"] == dst and e["port"] == PORT:
            return e  # type: ignore[no-any-return]
    return None


def test_inventory_follows_containers_images_ports_and_flows(
    stockade_up: Any, podman_container: PodmanFactory, podman_image: str, podman_network: str
) -> None:
    # certificates and drift are not what this test is about: their scans left out
    up = stockade_up(
        {
            "inventory": {"watch_s": 0.5, "interval_s": 5},
            "certs": {"enabled": False},
            "drift": {"enabled": False},
        }
    )
    up.start()
    server = podman_container(["httpd", "-f", "-p", str(PORT)], network=podman_network)
    client = podman_container(network=podman_network)

    # -- containers appear, described, with their workload, addresses and the server's port
    def described() -> bool:
        found = _by_id(up)
        return all(
            cid in found and found[cid]["described"] and found[cid]["addresses"]
            for cid in (server.id, client.id)
        ) and any(p["port"] == PORT for p in found[server.id]["ports"])

    assert wait_until(described, timeout=60), (up.api("/inventory/containers"), up.log()[-3000:])
    found = _by_id(up)
    srv, cli = found[server.id], found[client.id]
    assert srv["state"] == cli["state"] == "running"
    assert srv["name"] == server.name and srv["pid"] == server.pid
    assert srv["image_repository"] == podman_image.rsplit(":", 1)[0]
    assert srv["workload"] and srv["workload"].startswith("container/") and srv["workload"] != cli["workload"]
    assert srv["ports"] == [
        {"protocol": "tcp", "address": "0.0.0.0", "port": PORT, "process": "httpd"}
    ] or any(p["port"] == PORT and p["process"] == "httpd" for p in srv["ports"]), srv["ports"]
    ports = [
        p for p in up.api("/inventory/ports")["items"] if p["port"] == PORT and p["container_id"] == server.id
    ]
    assert ports and ports[0]["process"] == "httpd" and ports[0]["workload"] == srv["workload"], ports

    # -- the image: digest, layers, the containers using it
    image = next(i for i in up.api("/inventory/images")["items"] if podman_image in i["repo_tags"])
    assert image["digest"].startswith("sha256:") and image["layers"]
    assert all(lay.startswith("sha256:") for lay in image["layers"])
    assert image["id"].startswith(str(srv["image_id"])[:12])
    assert wait_until(
        lambda: (
            {server.id, client.id}
            <= set(
                next(i for i in up.api("/inventory/images")["items"] if i["id"] == image["id"])["containers"]
            )
        ),
        timeout=30,
    )

    # -- the host
    host = up.api("/inventory/hosts")["items"][0]
    assert host["kernel"] and host["architecture"] and host["boot_time"] and host["os"]["id"]
    assert any(r["name"] == "podman" for r in host["runtimes"])

    # -- a flow between the two: one edge workload -> workload, port, count
    ip = srv["addresses"][0]
    for _ in range(3):
        r = client.exec(["sh", "-c", f'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc {ip} {PORT}'])
        assert "HTTP/1" in r.stdout, (r.stdout, r.stderr)
    assert wait_until(
        lambda: (e := _edge(up, cli["workload"], srv["workload"])) is not None and e["count"] >= 3, timeout=30
    ), (up.api("/inventory/graph")["edges"][:10], up.api("/status")["runtime"]["inventory"])
    e = _edge(up, cli["workload"], srv["workload"])
    assert e is not None
    assert e["protocol"] == "tcp" and e["source_kind"] == e["destination_kind"] == "workload"
    assert e["connects"] >= 3 and e["accepts"] >= 1 and e["bytes"] is None

    # -- the CLI: JSON lines, the graph in DOT that graphviz renders
    r = up.cli("inventory", "containers", "--output", "json")
    assert r.returncode == 0, r.stderr
    assert {server.id, client.id} <= {json.loads(line)["id"] for line in r.stdout.splitlines()}
    r = up.cli("inventory", "graph", "--format", "dot")
    assert r.returncode == 0, r.stderr
    assert f'"{cli["workload"]}" -> "{srv["workload"]}"' in r.stdout
    dot = need(shutil.which("dot"), "needs graphviz (scripts/install.sh)")
    svg = subprocess.run([dot, "-Tsvg"], input=r.stdout, capture_output=True, text=True, check=False)
    assert svg.returncode == 0 and "<svg" in svg.stdout, svg.stderr
    r = up.cli("inventory")
    assert r.returncode == 0 and "containers: " in r.stdout, r.stderr

    # -- a container that stops is marked gone, with its stop time
    assert _run(["podman", "rm", "-f", "-t", "0", server.name], timeout=120).returncode == 0
    assert wait_until(lambda: _by_id(up)[server.id]["state"] == "gone", timeout=30)
    gone = _by_id(up)[server.id]
    assert gone["stopped"] and gone["stopped"] >= gone["started"]
    assert _by_id(up)[client.id]["state"] == "running"
    up.stop()
