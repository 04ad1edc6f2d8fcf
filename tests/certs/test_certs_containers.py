"""Certificates in a running podman container: the test's tree copied into it (PEM, DER, PKCS#12,
JKS, a trust bundle), and a TLS server in its network namespace (a host process entered into it
with ``nsenter -n``) serving the same 10-day certificate as one of the files. One round of the
runtime's scanner finds all of them attributed to the container, raises one alert for the expiring
certificate (both places listed) and one for the expired one, none for the trust store's, and
nothing again the same day."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import need, wait_until
from stockade.certs.alerts import EXPIRED_RULE, EXPIRING_RULE
from stockade.config import StockadeConfig
from stockade.model.alert import Alert
from stockade.runtime.certwatch import CertMonitor
from stockade.sensor.containers.discover import running_containers
from tlsgen import CertTree, fingerprint, key_pem, pem

TLSGEN = str(Path(__file__).resolve().parent.parent / "tlsgen.py")


def _collect(into: list[Alert]) -> Callable[[list[Alert]], int]:
    """An emit that keeps the alerts (all pass)."""

    def emit(alerts: list[Alert]) -> int:
        into.extend(alerts)
        return len(alerts)

    return emit


def _copy_tree(container: Any, root: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for entry in sorted(os.listdir(root)):
            tf.add(root / entry, arcname=entry)
    r = subprocess.run(
        ["podman", "cp", "-", f"{container.name}:/"],
        input=buf.getvalue(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr


@pytest.fixture
def served_in(tmp_path: Path, cert_tree: CertTree) -> Iterator[Any]:
    """Start a TLS server in the network namespace of a pid, serving the tree's leaf; its port."""
    need(shutil.which("nsenter"), "nsenter (util-linux) is missing")
    procs: list[subprocess.Popen[str]] = []
    assert cert_tree.leaf is not None
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    chain.write_bytes(pem(cert_tree.leaf[0]))
    key.write_bytes(key_pem(cert_tree.leaf[1]))

    def start(pid: int) -> int:
        cmd = ["nsenter", "-n", "-t", str(pid), sys.executable, TLSGEN, "serve", str(chain), str(key), "0"]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(p)
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line.startswith("ready "), p.stderr.read() if p.stderr else line
        return int(line.split()[1])

    try:
        yield start
    finally:
        for p in procs:
            p.terminate()
            p.communicate(timeout=10)  # waits, and closes its pipes


@pytest.mark.root
@pytest.mark.containers
def test_a_containers_files_and_served_port_raise_one_alert_per_certificate(
    podman_container: Any, cert_tree: CertTree, served_in: Any
) -> None:
    ctr = podman_container()
    _copy_tree(ctr, cert_tree.root)
    port = served_in(ctr.pid)
    assert wait_until(lambda: any(c.full_id == ctr.id for c in running_containers()), timeout=30)
    ours = [c for c in running_containers() if c.full_id == ctr.id]
    cfg = StockadeConfig.model_validate({"certs": {"host": False, "warn_days": 30}})
    raised: list[Alert] = []
    mon = CertMonitor(cfg, _collect(raised), discover=lambda: ours)
    alerts = mon.tick()
    doc = mon.latest()
    items = [i for i in doc["items"] if i["container_id"] == ctr.id]
    files = {(i["location"], i["format"], i["entry"], i["sha256"]) for i in items if i["source"] == "file"}
    assert cert_tree.expected <= files, doc["problems"]
    assert sum(1 for i in items if i["trust_store"]) == cert_tree.trust_store
    assert cert_tree.leaf is not None
    leaf = fingerprint(cert_tree.leaf[0])
    served = [i for i in items if i["source"] == "served"]
    assert [(i["location"], i["sha256"]) for i in served] == [(f"tcp://127.0.0.1:{port}", leaf)]
    assert all(i["container_name"] == ctr.name for i in items)
    by_rule = {a.rule: a for a in alerts}
    assert sorted(by_rule) == [EXPIRED_RULE, EXPIRING_RULE] and len(alerts) == 2 and raised == alerts
    soon = by_rule[EXPIRING_RULE].output_fields
    assert soon["cert.sha256"] == leaf and soon["container.full_id"] == ctr.id
    assert soon["container.name"] == ctr.name and 9 < soon["cert.days_left"] <= 10
    assert soon["cert.locations"] == ["/etc/nginx/certs/web.pem", f"tcp://127.0.0.1:{port}"]
    assert by_rule[EXPIRED_RULE].output_fields["cert.subject"] == "CN=app.test"
    assert by_rule[EXPIRED_RULE].priority == "Error" and by_rule[EXPIRING_RULE].priority == "Warning"
    assert mon.tick() == []  # once per certificate per day
    assert mon.latest(expiring_days=30)["total"] == sum(1 for i in doc["items"] if i["days_left"] <= 30)
