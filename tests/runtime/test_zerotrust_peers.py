"""Peers that are workloads or DNS names (stockade.runtime.peers, wired into ZeroTrust): learned as
the workload whose container holds the address, named late when the address was learned first,
resolved to the workload's running containers' addresses when a policy is compiled, and
recompiled when those change. The containers here are described by a resolver that knows them
(no runtime to ask); the real thing runs in tests/zerotrust."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stockade.config import StockadeConfig
from stockade.model.clock import FakeClock
from stockade.policy.decision import Verdict
from stockade.policy.load import parse_policy
from stockade.policy.model import Peer
from stockade.runtime import zerotrust
from stockade.runtime.peers import Peers, peer_refs
from stockade.runtime.zerotrust import ZeroTrust
from stockade.sensor.containers.discover import RunningContainer
from stockade.sensor.containers.info import ContainerInfo
from stockade.sensor.containers.resolver import ContainerResolver
from stockade.storage.behavior import BehaviorStore
from stockade.storage.store import Store

API = "container/localhost/api/api"
DB = "container/localhost/db/db"


def cid(n: int) -> str:
    return f"{n:012x}" + "0" * 52


class Known(ContainerResolver):
    """A resolver that knows its containers (as podman inspect would describe them)."""

    def __init__(self) -> None:
        super().__init__()
        self.known: dict[str, ContainerInfo] = {}

    def add(self, n: int, name: str) -> str:
        full = cid(n)
        self.known[full] = ContainerInfo(
            full_id=full,
            runtime="podman",
            name=name,
            image_repository=f"localhost/{name}",
            image_digest=f"sha256:{name}",
            complete=True,
        )
        return full

    def by_id(self, cid: str, runtime: str, pod_uid: str | None = None) -> ContainerInfo:
        del pod_uid
        return self.known.get(cid) or ContainerInfo(full_id=cid, runtime=runtime)


class Cluster:
    """A ZeroTrust whose containers and their addresses the test sets."""

    def __init__(self, cfg: StockadeConfig, store: Store, lookup: dict[str, frozenset[str]]) -> None:
        self.clock = FakeClock()
        self.resolver = Known()
        self.running: list[RunningContainer] = []
        self.addrs: dict[int, frozenset[str]] = {}
        self.names = lookup
        self.zt = ZeroTrust(
            cfg,
            BehaviorStore(store),
            lambda _alerts: None,
            clock=self.clock,
            enforce=False,
            discover=lambda: list(self.running),
            resolver=self.resolver,
            peers=Peers(lookup=lambda n: self.names.get(n, frozenset()), ttl_s=30, clock=self.clock),
            addresses_of=lambda pid: self.addrs.get(pid, frozenset()),
        )
        self.zt.start()

    def run(self, n: int, name: str, *addresses: str) -> str:
        full = self.resolver.add(n, name)
        self.running.append(RunningContainer(full, "podman", f"/sys/fs/cgroup/libpod_parent/{full}", n, (n,)))
        self.addrs[n] = frozenset(addresses)
        self.zt.refresh()
        return full

    def stop(self, full: str) -> None:
        self.running = [c for c in self.running if c.full_id != full]
        self.zt.refresh()


def connect(full: str, name: str, ip: str, port: int, t: float) -> dict[str, Any]:
    return {
        "evt.time": int(t * 1e9),
        "evt.type": "connect",
        "evt.rawres": 0,
        "fd.l4proto": "tcp",
        "fd.sip": ip,
        "fd.sport": port,
        "fd.name": f"10.89.0.2:40000->{ip}:{port}",
        "container.id": full[:12],
        "container.full_id": full,
        "container.name": name,
        "container.image.repository": f"localhost/{name}",
        "container.image.digest": f"sha256:{name}",
        "proc.pid": 7,
        "proc.exepath": f"/usr/bin/{name}",
    }


@pytest.fixture
def cluster(cfg: StockadeConfig) -> Iterator[Cluster]:
    store = Store.from_config(cfg)
    c = Cluster(cfg, store, {})
    try:
        yield c
    finally:
        c.zt.close()
        store.close()


def verdict(c: Cluster, wid: str, event: dict[str, Any]) -> Verdict:
    """The verdict of a workload's compiled policy on an event."""
    compiled = c.zt.workloads[wid].compiled
    assert compiled is not None
    v = compiled.evaluate(event)
    assert v is not None
    return v


def egress_peers(c: Cluster, wid: str) -> set[str]:
    return {e[1] for e in c.zt.profile(wid)["network"] if e[0] == "egress"}


def test_an_egress_peer_at_a_workloads_address_is_learned_as_that_workload(cluster: Cluster) -> None:
    cluster.run(0xDB1, "db", "10.89.0.7")
    api = cluster.run(0xA91, "api", "10.89.0.2")
    cluster.zt.observe(connect(api, "api", "10.89.0.7", 5432, cluster.clock.time()))
    cluster.zt.observe(connect(api, "api", "192.0.2.9", 443, cluster.clock.time()))
    assert egress_peers(cluster, API) == {f"workload:{DB}", "cidr:192.0.2.9/32"}
    policy = cluster.zt.generate(API)
    assert f"workload: {DB}" in policy and "cidr: 192.0.2.9/32" in policy


def test_an_address_learned_before_its_container_was_known_is_named_late(cluster: Cluster) -> None:
    api = cluster.run(0xA91, "api", "10.89.0.2")
    cluster.clock.advance(5)
    cluster.zt.observe(connect(api, "api", "10.89.0.7", 5432, cluster.clock.time()))
    assert egress_peers(cluster, API) == {"cidr:10.89.0.7/32"}
    # the db container started before the connect: the address was the db's then
    cluster.run(0xDB1, "db", "10.89.0.7")
    assert egress_peers(cluster, API) == {f"workload:{DB}"}


def test_an_address_learned_before_its_holder_started_stays_an_address(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = cluster.run(0xA91, "api", "10.89.0.2")
    cluster.zt.observe(connect(api, "api", "10.89.0.7", 5432, cluster.clock.time() - 3600))
    # a container that started now got an address someone else had an hour ago
    monkeypatch.setattr(zerotrust, "start_time_ns", lambda _pid: int(cluster.clock.time() * 1e9))
    cluster.run(0xDB1, "db", "10.89.0.7")
    assert egress_peers(cluster, API) == {"cidr:10.89.0.7/32"}


def test_a_workload_peer_follows_the_workloads_containers(cluster: Cluster) -> None:
    db1 = cluster.run(0xDB1, "db", "10.89.0.7")
    api = cluster.run(0xA91, "api", "10.89.0.2")
    t = cluster.clock.time()
    cluster.zt.observe(connect(api, "api", "10.89.0.7", 5432, t))
    cluster.zt.set_mode(API, "monitor", who="test", why="peers")
    st = cluster.zt.workloads[API]
    assert st.peer_refs == {f"workload:{DB}"}
    assert verdict(cluster, API, connect(api, "api", "10.89.0.7", 5432, t)).action == "allow"
    # the db is replaced by a replica at another address: the old one is no longer the db's
    cluster.run(0xDB2, "db", "10.89.0.9")
    cluster.stop(db1)
    assert verdict(cluster, API, connect(api, "api", "10.89.0.9", 5432, t)).action == "allow"
    old = verdict(cluster, API, connect(api, "api", "10.89.0.7", 5432, t))
    assert (old.action, old.rule) == ("block", "default")
    assert cluster.zt.stats["policies_recompiled"] >= 2


def test_a_dns_peer_is_looked_up_when_compiled_and_again_after_its_ttl(cluster: Cluster) -> None:
    cluster.names["db.example.internal"] = frozenset({"10.1.2.3"})
    api = cluster.run(0xA91, "api", "10.89.0.2")
    doc = f"""
apiVersion: stockade.dev/v1alpha1
kind: WorkloadPolicy
metadata: {{name: api}}
spec:
  workload: {API}
  action: block
  network:
    - {{name: db, direction: egress, peer: {{dns: db.example.internal}}, ports: [5432]}}
"""
    cluster.zt.apply_policy(doc, "test.yaml", who="test")
    cluster.zt.set_mode(API, "monitor", who="test", why="dns", force=True)
    t = cluster.clock.time()
    assert verdict(cluster, API, connect(api, "api", "10.1.2.3", 5432, t)).rule == "db"
    cluster.names["db.example.internal"] = frozenset({"10.1.2.4"})
    cluster.zt.refresh()  # within the TTL: not looked up again
    assert verdict(cluster, API, connect(api, "api", "10.1.2.4", 5432, t)).rule == "default"
    cluster.clock.advance(31)
    cluster.zt.refresh()
    assert verdict(cluster, API, connect(api, "api", "10.1.2.4", 5432, t)).rule == "db"


def test_peers_resolve_and_say_what_changed() -> None:
    clock = FakeClock()
    p = Peers(
        lookup=lambda n: frozenset({"::1", "127.0.0.1"}) if n == "localhost" else frozenset(), clock=clock
    )
    assert p.update({"a": ("w1", frozenset({"10.0.0.1"})), "b": ("w1", frozenset({"10.0.0.2"}))}) == {"w1"}
    assert p.workload_at("10.0.0.2") == "w1" and p.workload_at("10.0.0.3") is None
    assert [str(n) for n in p.resolve(Peer(workload="w1"))] == ["10.0.0.1/32", "10.0.0.2/32"]
    assert p.update({"a": ("w1", frozenset({"10.0.0.1"})), "b": ("w1", frozenset({"10.0.0.2"}))}) == set()
    assert p.update({"a": ("w1", frozenset({"10.0.0.1"}))}) == {"w1"}
    assert p.resolve(Peer(workload="nobody")) == []
    assert [str(n) for n in p.resolve(Peer(dns="localhost"))] == ["127.0.0.1/32", "::1/128"]
    assert p.resolve(Peer(dns="nothing.invalid")) == []


def test_peer_refs_lists_workload_and_dns_peers_only() -> None:
    policy = parse_policy(
        f"""
apiVersion: stockade.dev/v1alpha1
kind: WorkloadPolicy
metadata: {{name: p}}
spec:
  workload: {API}
  network:
    - {{direction: egress, peer: {{workload: {DB}}}}}
    - {{direction: egress, peer: {{dns: db.example.internal}}}}
    - {{direction: egress, peer: {{cidr: 10.0.0.0/8}}}}
""",
        "t.yaml",
    )
    assert peer_refs(policy) == {f"workload:{DB}", "dns:db.example.internal"}
