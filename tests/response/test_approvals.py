"""A playbook step that needs approval waits on the incident; approving a kill captures the
container's evidence first, then kills it; a rejected step is dropped; both are on the timeline.
A real podman container, the real incident service, responder and evidence desk."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from containers import PodmanContainer
from helpers import wait_until
from stockade.config import load_config
from stockade.model.alert import Alert
from stockade.runtime.incidents import IncidentService
from stockade.runtime.response import Responder
from stockade.storage.incidents import IncidentStore
from stockade.storage.store import Store

PLAYBOOK = """\
apiVersion: stockade.dev/v1alpha1
kind: ResponsePlaybook
metadata: {name: kill-on-approval}
spec:
  trigger: {rules: ["Crypto Miner Run in Container"]}
  actions:
    - action: kill
      approval: required
"""


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[IncidentService, Responder, IncidentStore]]:
    (tmp_path / "pb.yaml").write_text(PLAYBOOK)
    cfg = load_config(
        None,
        {"data_dir": str(tmp_path / "data"), "response": {"playbooks": [str(tmp_path / "pb.yaml")]}},
        environ={},
    )
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    repo = IncidentStore(store)
    svc = IncidentService(cfg.incidents, repo)
    resp = Responder(cfg, incidents=svc, store=store)
    svc.on_correlated = resp.on_correlated
    svc.start()
    resp.start()
    try:
        yield svc, resp, repo
    finally:
        resp.close()
        svc.close()
        store.close()


@pytest.mark.root
@pytest.mark.containers
def test_a_kill_waits_for_approval_and_captures_first(
    node: tuple[IncidentService, Responder, IncidentStore], podman_container: Any
) -> None:
    svc, resp, repo = node
    c: PodmanContainer = podman_container(("sleep", "300"))
    svc.emit(
        Alert(
            time.time_ns(),
            "Crypto Miner Run in Container",
            "Critical",
            "xmrig",
            {"container.id": c.id[:12]},
            "syscall",
            ["mitre_impact", "T1496"],
            "node1",
            workload="container/localhost/miner",
        )
    )
    assert svc.drain(10) and resp.drain(30)
    (inc,) = repo.ranked()
    # the kill waits, and so does the capture it needs first
    assert [p["action"] for p in inc.pending] == ["capture", "kill"], inc.pending
    assert c.inspect()["State"]["Running"] is True and not resp.evidence.list()
    kill = next(p for p in inc.pending if p["action"] == "kill")
    out = resp.approve(inc.id[-8:], kill["id"], actor="alice")
    assert out.ok, out.detail
    assert out.data["kill"]["method"] in ("cgroup.kill", "sigkill")
    assert wait_until(lambda: c.inspect()["State"]["Running"] is False, timeout=20)
    # the evidence was taken before the kill, of the running container
    (bundle,) = resp.evidence.list()
    assert bundle["target"]["container_id"] == c.id
    capture = next(p for p in repo.get(inc.id).pending if p["action"] == "capture")
    resp.reject(inc.id, capture["id"], actor="alice")
    after = repo.get(inc.id)
    assert after.pending == [] and after.status == "contained"
    tl = [
        (e.kind, e.data.get("action"), e.actor)
        for e in repo.timeline(inc.id)
        if e.kind in ("action", "evidence")
    ]
    assert tl.index(("evidence", "capture", "alice")) < tl.index(("action", "kill", "alice")), tl
    assert ("action", "kill", "alice") in tl
    assert tl[-1][2] == "alice" and "rejected" in repo.timeline(inc.id)[-1].summary
    with pytest.raises(Exception, match="no pending action"):
        resp.approve(inc.id, kill["id"], actor="alice")


def test_isolating_a_pod_gives_the_cluster_s_network_policy_too() -> None:
    import yaml

    from stockade.runtime.response import _k8s_isolation
    from stockade.sensor.containers.info import ContainerInfo
    from stockade.sensor.containers.lookup import FoundContainer

    cid = "ab" * 32
    pod = ContainerInfo(cid, "containerd", k8s_pod_name="web-7d9f-x2", k8s_ns_name="shop")
    found = FoundContainer(cid, "web", "containerd", "/sys/fs/cgroup/unified/x", 1, (2,), 2, pod)
    out = _k8s_isolation(found, ["10.9.0.0/24:22"])
    policy = yaml.safe_load(out["network_policy"])
    assert policy["kind"] == "NetworkPolicy" and policy["metadata"]["namespace"] == "shop"
    assert policy["spec"]["podSelector"] == {"matchLabels": {"stockade.dev/quarantine": "web-7d9f-x2"}}
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert out["label_pod"] == "kubectl -n shop label pod web-7d9f-x2 stockade.dev/quarantine=web-7d9f-x2"
    plain = FoundContainer(cid, "web", "podman", "/x", 1, (2,), 2, ContainerInfo(cid, "podman"))
    assert _k8s_isolation(plain, []) == {}
