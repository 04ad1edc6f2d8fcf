"""What the inventory reads: images from a containers-storage tree, listening sockets of a network
namespace with their process, the host's facts."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from stockade.inventory.host import cgroup_version, host_facts, os_release
from stockade.inventory.images import ImageReader, graphroot
from stockade.inventory.ports import Namespace, PortScanner

#: the images of the image_store fixture (tests/inventory/conftest.py)
IMG = "a" * 64
BAD = "b" * 64


def test_images_come_from_containers_storage_with_config_and_layers(image_store: Path) -> None:
    tmp_path = image_store
    reader = ImageReader(str(tmp_path))
    assert reader.available
    by_id = {i["id"]: i for i in reader.images()}
    app = by_id[IMG]
    assert app["digest"] == "sha256:" + "d" * 64 and app["repo_tags"] == ["localhost/app:1.2"]
    assert app["repo_digests"] == ["localhost/app@sha256:" + "d" * 64]
    assert app["layers"] == ["sha256:" + "1" * 64, "sha256:" + "2" * 64]
    assert app["size"] == 1024 and app["created"] == "2026-12-01T00:00:00Z"
    cfg = app["config"]
    # environment variables by name only: their values may be secrets
    assert cfg["env"] == ["PATH", "DB_PASSWORD"] and "hunter2" not in json.dumps(app)
    assert cfg["entrypoint"] == ["/srv/app"] and cfg["cmd"] == ["--port", "8080"] and cfg["user"] == "app"
    assert cfg["exposed_ports"] == ["8080/tcp"] and cfg["labels"]["org.opencontainers.image.version"] == "1.2"
    # an image whose config cannot be read is listed, and the problem said with its path
    assert by_id[BAD]["layers"] == [] and by_id[BAD]["size"] == 1000
    assert (
        len(reader.problems) == 1 and BAD[:12] in reader.problems[0] and str(tmp_path) in reader.problems[0]
    )
    # cached until the index changes
    assert reader.images() is reader.images()


def test_graphroot_follows_storage_conf(tmp_path: Path) -> None:
    conf = tmp_path / "storage.conf"
    conf.write_text('[storage]\ndriver = "overlay"\ngraphroot = "/srv/containers" # moved\n')
    assert graphroot(str(conf)) == "/srv/containers"
    assert graphroot(str(tmp_path / "missing.conf")) == "/var/lib/containers/storage"
    assert ImageReader(str(tmp_path / "nothing")).images() == []


def test_a_listening_socket_is_found_with_its_process() -> None:
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        udp.bind(("127.0.0.1", 0))
        ns = [Namespace(os.getpid(), (os.getpid(),), "c" * 64, "container/x/y")]
        scanner = PortScanner()
        ports = scanner.scan(ns)
        assert scanner.diag and scanner.problem is None
        # netlink sock_diag and /proc/<pid>/net tell the same
        assert sorted(map(str, ports)) == sorted(map(str, PortScanner(diag=False).scan(ns)))
        mine = {(p["protocol"], p["port"]): p for p in ports}
        t = mine[("tcp", tcp.getsockname()[1])]
        u = mine[("udp", udp.getsockname()[1])]
    for p in (t, u):
        assert p["address"] == "127.0.0.1" and p["pid"] == os.getpid() and p["process"]
        assert p["container_id"] == "c" * 64 and p["workload"] == "container/x/y"


def test_host_facts() -> None:
    facts = host_facts("node-1")
    assert facts["hostname"] == "node-1" and facts["kernel"] == os.uname().release
    assert facts["architecture"] == os.uname().machine and facts["boot_time"].endswith("Z")
    assert facts["os"]["id"] == os_release().get("ID") and facts["packages"] is None
    assert cgroup_version() in ("v1", "v2", "hybrid")
