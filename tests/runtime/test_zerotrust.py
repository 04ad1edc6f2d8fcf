"""Zero trust's runtime (stockade.runtime.zerotrust) without root: workloads from events, learning in
Discover, deviations in Monitor, the dry-run gate of Protect, mode history, restart from the store,
rollouts and patterns. Enforcement itself is tested for real in tests/zerotrust and tests/enforce."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from helpers import wait_until
from stockade.config import StockadeConfig
from stockade.enforce.interface import Denial
from stockade.errors import NotFoundError, UsageError
from stockade.model.alert import Alert
from stockade.model.clock import FakeClock
from stockade.policy.decision import Verdict
from stockade.runtime.deviations import DENIAL_RULE, DEVIATION_RULE
from stockade.runtime.zerotrust import ModeRefused, ZeroTrust
from stockade.storage.behavior import BehaviorStore
from stockade.storage.store import Store

WEB = "container/localhost/web/web"
FULL = "abc123abc123" + "0" * 52


def ev(digest: str = "sha256:1111", **kw: Any) -> dict[str, Any]:
    """A syscall event of a replica of the web workload."""
    d: dict[str, Any] = {
        "container.id": FULL[:12],
        "container.full_id": FULL,
        "container.name": "web-1",
        "container.image.repository": "localhost/web",
        "container.image.digest": digest,
        "proc.pid": 10,
        "proc.name": "httpd",
        "proc.exepath": "/usr/sbin/httpd",
        "evt.rawres": 0,
    }
    d.update(kw)
    return d


def exec_(exe: str, **kw: Any) -> dict[str, Any]:
    return ev(**{"evt.type": "execve", "proc.exepath": exe, "proc.pexepath": "/usr/sbin/httpd", **kw})


def open_(path: str, flags: str = "O_RDONLY", **kw: Any) -> dict[str, Any]:
    return ev(**{"evt.type": "openat", "evt.rawres": 3, "fd.name": path, "evt.arg.flags": flags, **kw})


LEARNED = [
    exec_("/usr/sbin/httpd", **{"proc.pexepath": "/dev/fd/6"}),
    open_("/srv/index.html"),
    open_("/tmp/tmp.a8f3k2", "O_WRONLY|O_CREAT"),
    ev(**{"evt.type": "bind", "fd.name": "0.0.0.0:8080", "fd.l4proto": "tcp"}),
]


def deviations(alerts: list[Alert]) -> list[Alert]:
    """The zero-trust deviations among alerts (the anomaly models' are tested in test_anomalies)."""
    return [a for a in alerts if a.rule == DEVIATION_RULE]


class Node:
    """A ZeroTrust over a real SQLite store, with a fake clock and no enforcers."""

    def __init__(self, cfg: StockadeConfig, store: Store) -> None:
        self.alerts: list[Alert] = []
        self.clock = FakeClock()
        self.zt = ZeroTrust(
            cfg, BehaviorStore(store), self.alerts.extend, clock=self.clock, enforce=False, discover=list
        )
        self.zt.start()

    def feed(self, events: list[dict[str, Any]]) -> list[Alert]:
        out: list[Alert] = []
        for e in events:
            out += self.zt.observe(e)
        return out


@pytest.fixture
def node(cfg: StockadeConfig, store: Store) -> Iterator[Node]:
    n = Node(cfg, store)
    try:
        yield n
    finally:
        n.zt.close()


def test_discover_learns_each_workload_and_alerts_nothing(node: Node) -> None:
    assert node.feed(LEARNED) == []
    [w] = node.zt.list()
    assert (w["id"], w["mode"], w["image_digest"]) == (WEB, "discover", "sha256:1111")
    prof = node.zt.profile(WEB)
    assert {e[0] for e in prof["processes"]} == {"/usr/sbin/httpd"}
    assert {e[0] for e in prof["files"] if not e[0].startswith("!")} == {"/srv/index.html", "/tmp/tmp.*"}
    assert "path: /tmp/tmp.*" in node.zt.generate(WEB)
    with pytest.raises(NotFoundError):
        node.zt.profile("container/localhost/nope/nope")


def test_the_runtime_setting_a_container_up_is_not_the_workload(node: Node) -> None:
    node.feed(LEARNED)
    runc = {"proc.name": "runc:[2:INIT]", "proc.exepath": "/dev/fd/6"}
    node.feed([open_("/var/lib/containers/x/merged/etc/hosts", **runc), ev(**{"evt.type": "mount", **runc})])
    prof = node.zt.profile(WEB)
    assert not any("merged" in e[0] for e in prof["files"]) and prof["privileged"] == []


def test_monitor_alerts_on_each_deviation_naming_policy_and_rule(node: Node) -> None:
    node.feed(LEARNED)
    change = node.zt.set_mode(WEB, "monitor", who="alice", why="learned for a week")["change"]
    assert (change["old"], change["new"], change["who"]) == ("discover", "monitor", "alice")
    assert node.feed([open_("/srv/index.html"), exec_("/usr/sbin/httpd")]) == []
    [a] = deviations(node.feed([open_("/etc/shadow")]))
    assert a.rule == DEVIATION_RULE and a.priority == "Warning" and a.workload == WEB
    f = a.output_fields
    assert f["stockade.policy"] == "container-localhost-web-web" and f["stockade.policy_rule"] == "default"
    assert (f["stockade.operation"], f["stockade.target"], f["stockade.blocked"]) == (
        "open",
        "/etc/shadow (read)",
        False,
    )
    [a] = deviations(node.feed([exec_("/bin/sh")]))
    assert a.output_fields["stockade.target"] == "/bin/sh" and "/bin/sh" in a.output


def test_protect_refuses_when_recent_operations_would_be_denied_and_force_skips(node: Node) -> None:
    node.feed(LEARNED)
    node.zt.set_mode(WEB, "monitor", who="t", why="t")
    node.feed([exec_("/usr/bin/cron-job")])  # a deviation seen in Monitor: Protect would break it
    with pytest.raises(ModeRefused, match=r"1 recent operations would be denied.*exec /usr/bin/cron-job"):
        node.zt.set_mode(WEB, "protect", who="t", why="t")
    assert node.zt.show(WEB)["mode"] == "monitor"
    out = node.zt.set_mode(WEB, "protect", who="bob", why="accepted", force=True)
    assert out["change"]["forced"] is True and out["workload"]["mode"] == "protect"
    assert "no enforcement in this process: Protect only alerts" in out["change"]["warnings"]
    history = node.zt.show(WEB)["history"]
    assert [(h["old"], h["new"], h["who"], h["forced"]) for h in history] == [
        ("monitor", "protect", "bob", True),
        ("discover", "monitor", "t", False),
    ]
    with pytest.raises(UsageError):
        node.zt.set_mode(WEB, "lockdown", who="t", why="t")


def test_modes_policies_and_profiles_survive_a_restart(cfg: StockadeConfig, store: Store, node: Node) -> None:
    node.feed(LEARNED)
    node.zt.set_mode(WEB, "monitor", who="t", why="t")
    node.zt.close()
    again = Node(cfg, store)
    try:
        [w] = again.zt.list()
        assert (w["mode"], w["policy"], w["policy_source"]) == (
            "monitor",
            "container-localhost-web-web",
            "generated",
        )
        assert w["profile"]["observations"] == 4
        assert again.feed([open_("/srv/index.html")]) == []
        assert [a.rule for a in again.feed([open_("/etc/shadow")])] == [DEVIATION_RULE]
    finally:
        again.zt.close()


def test_a_new_image_digest_starts_from_the_old_profile_and_keeps_the_mode(node: Node) -> None:
    node.feed(LEARNED)
    node.clock.sleep(60)
    v2 = {"digest": "sha256:2222", "container.full_id": "v2" + FULL[2:], "container.name": "web-2"}
    node.feed(
        [exec_("/usr/sbin/httpd", **{**v2, "proc.pexepath": "/dev/fd/7"}), exec_("/usr/bin/extra", **v2)]
    )
    w = node.zt.show(WEB)
    assert (w["image_digest"], w["mode"], w["profile"]["version"]) == ("sha256:2222", "discover", 2)
    assert w["profile"]["new_in_version"] == ["exec /usr/bin/extra (parent /usr/sbin/httpd)"]
    node.zt.set_mode(WEB, "monitor", who="t", why="t")
    node.feed([exec_("/usr/bin/other", digest="sha256:3333", **{"container.full_id": "v3" + FULL[2:]})])
    w = node.zt.show(WEB)
    assert w["mode"] == "monitor" and w["new_by_digest"]["sha256:3333"] == ["exec /usr/bin/other"]


def test_a_mode_set_on_a_namespace_applies_to_its_workloads_now_and_later(node: Node) -> None:
    def pod(ns: str, name: str) -> dict[str, Any]:
        return ev(
            **{"k8s.ns.name": ns, "k8s.pod.name": name, "container.full_id": name, "evt.type": "execve"}
        )

    node.feed([pod("shop", "web-7d9c8b6f5-x2k4p"), pod("other", "db-0")])
    out = node.zt.set_mode("namespace:shop", "monitor", who="t", why="t")
    assert out["pattern"] == "k8s/shop/*" and [c["workload"] for c in out["changed"]] == [
        "k8s/shop/deployment/web"
    ]
    node.feed([pod("shop", "cart-5f6d7c8b9-q2w4r")])
    modes = {w["id"]: w["mode"] for w in node.zt.list()}
    assert modes == {
        "k8s/shop/deployment/web": "monitor",
        "k8s/shop/deployment/cart": "monitor",
        "k8s/other/statefulset/db": "discover",
    }


def test_an_enforcer_denial_becomes_a_critical_alert(node: Node) -> None:
    node.feed(LEARNED)
    verdict = Verdict("block", "container-localhost-web-web", "default")
    node.zt._on_denial(Denial("exec", FULL, "/bin/busybox", 42, verdict, True, 1, comm="sh"))
    assert wait_until(lambda: bool(node.alerts), timeout=5)
    [a] = node.alerts
    assert a.rule == DENIAL_RULE and a.priority == "Critical" and a.workload == WEB
    assert (
        a.output_fields["stockade.blocked"] is True and a.output_fields["stockade.target"] == "/bin/busybox"
    )
