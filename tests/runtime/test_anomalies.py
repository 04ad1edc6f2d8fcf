"""Online anomaly scoring per workload (stockade.runtime.anomalies, stockade.anomaly.online) as
zero trust drives it: learned from a workload's events in Discover, frozen with a threshold from
held-out windows when it leaves Discover, scoring each container's new behaviour in Monitor; the
model is saved and read back after a restart, and its alerts are muted like any rule's."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from stockade.anomaly.online import OnlineSettings, WorkloadModel
from stockade.config import StockadeConfig
from stockade.model.alert import Alert
from stockade.model.clock import FakeClock
from stockade.model.mute import MuteRequest
from stockade.runtime.anomalies import ANOMALY_RULE
from stockade.runtime.builtin_rules import BUILTIN_RULES
from stockade.runtime.mutes import MuteSet
from stockade.runtime.zerotrust import ZeroTrust
from stockade.storage.behavior import BehaviorStore
from stockade.storage.store import Store

WEB = "container/localhost/web/web"


def ev(cid: str, **kw: Any) -> dict[str, Any]:
    return {
        "container.id": cid[:12],
        "container.full_id": cid,
        "container.name": "web-1",
        "container.image.repository": "localhost/web",
        "container.image.digest": "sha256:1111",
        "proc.pid": 10,
        "proc.name": "httpd",
        "proc.exepath": "/usr/sbin/httpd",
        "evt.rawres": 0,
        **kw,
    }


def exec_(cid: str, exe: str, parent: str = "/usr/sbin/httpd") -> dict[str, Any]:
    return ev(cid, **{"evt.type": "execve", "proc.exepath": exe, "proc.pexepath": parent})


def open_(cid: str, path: str, flags: str = "O_RDONLY") -> dict[str, Any]:
    return ev(cid, **{"evt.type": "openat", "evt.rawres": 3, "fd.name": path, "evt.arg.flags": flags})


def accept(cid: str, ip: str) -> dict[str, Any]:
    return ev(
        cid, **{"evt.type": "accept4", "evt.rawres": 5, "fd.l4proto": "tcp", "fd.cip": ip, "fd.lport": 8080}
    )


def connect(cid: str, ip: str, port: int) -> dict[str, Any]:
    return ev(cid, **{"evt.type": "connect", "fd.l4proto": "tcp", "fd.sip": ip, "fd.sport": port})


def startup(cid: str) -> list[dict[str, Any]]:
    return [
        exec_(cid, "/usr/sbin/httpd", "/usr/bin/conmon"),
        open_(cid, "/etc/httpd.conf"),
        ev(cid, **{"evt.type": "bind", "fd.name": "0.0.0.0:8080", "fd.l4proto": "tcp"}),
    ]


def request(cid: str, rnd: random.Random) -> list[dict[str, Any]]:
    kind = rnd.randrange(3)
    if kind == 0:
        return [accept(cid, "10.89.0.9"), open_(cid, "/srv/index.html")]
    if kind == 1:
        return [
            accept(cid, "10.89.0.9"),
            exec_(cid, "/usr/bin/report"),
            open_(cid, f"/tmp/tmp.{rnd.randrange(10**6):06d}x", "O_WRONLY|O_CREAT"),
        ]
    return [open_(cid, f"/proc/{rnd.randrange(2, 3000)}/status")]


def shell(cid: str) -> list[dict[str, Any]]:
    return [
        exec_(cid, "/bin/sh"),
        exec_(cid, "/bin/cat", "/bin/sh"),
        open_(cid, "/etc/passwd"),
        connect(cid, "10.89.0.77", 4444),
    ]


class Node:
    def __init__(self, cfg: StockadeConfig, store: Store) -> None:
        self.zt = ZeroTrust(
            cfg, BehaviorStore(store), lambda _a: None, clock=FakeClock(), enforce=False, discover=list
        )
        self.zt.start()

    def feed(self, events: list[dict[str, Any]]) -> list[Alert]:
        return [a for e in events for a in self.zt.observe(e) if a.rule == ANOMALY_RULE]


def learn(node: Node, containers: int = 25) -> None:
    rnd = random.Random(7)
    for c in range(containers):
        cid = f"{c:012x}" + "a" * 52
        node.feed(startup(cid))
        for _ in range(rnd.randint(3, 8)):
            node.feed(request(cid, rnd))


def test_new_behaviour_is_an_anomaly_and_normal_work_is_not(cfg: StockadeConfig, store: Store) -> None:
    node = Node(cfg, store)
    try:
        learn(node)
        node.zt.set_mode(WEB, "monitor", who="t", why="t")
        model = node.zt.show(WEB)["anomaly_model"]
        assert model["tokens_learned"] > 100 and model["threshold_bits"] >= 3.0, model
        rnd = random.Random(99)
        fresh = "f" * 64
        normal = startup(fresh) + [e for _ in range(20) for e in request(fresh, rnd)]
        assert node.feed(normal) == []
        alerts = node.feed(shell(fresh))
        assert alerts, "a shell, its cat of /etc/passwd and a connect out: never seen, yet no anomaly"
        a = alerts[0]
        f = a.output_fields
        assert (a.priority, a.workload, f["stockade.workload"]) == ("Warning", WEB, WEB)
        assert f["stockade.anomaly.score"] > f["stockade.anomaly.threshold"]
        assert f["stockade.anomaly.never_seen"] is True
        assert f["stockade.anomaly.sequence"][-1] == "exec /bin/sh < /usr/sbin/httpd"
        assert "T1059" in a.tags and "anomaly" in a.tags
        assert "exec /bin/sh < /usr/sbin/httpd" in a.output
        # a scan: one connect after another to ports never used
        scan = [connect(fresh, "10.89.0.77", p) for p in range(20, 40)]
        hits = node.feed(scan)
        assert hits and all("T1046" in h.tags for h in hits)
    finally:
        node.zt.close()


def test_the_model_is_saved_and_read_back_after_a_restart(cfg: StockadeConfig, store: Store) -> None:
    node = Node(cfg, store)
    learn(node)
    node.zt.set_mode(WEB, "monitor", who="t", why="t")
    threshold = node.zt.show(WEB)["anomaly_model"]["threshold_bits"]
    node.zt.close()
    assert list(Path(cfg.data_dir, "anomaly").glob("*.json.gz"))
    again = Node(cfg, store)
    try:
        assert again.zt.show(WEB)["anomaly_model"]["threshold_bits"] == threshold
        assert again.feed(shell("e" * 64))
    finally:
        again.zt.close()


def test_a_workload_that_learned_too_little_is_not_scored(cfg: StockadeConfig, store: Store) -> None:
    node = Node(cfg, store)
    try:
        node.feed(startup("d" * 64))
        node.zt.set_mode(WEB, "monitor", who="t", why="t")
        assert node.feed(shell("d" * 64)) == []
        assert node.zt.status()["anomaly"]["counters"]["unlearned"] == 4
    finally:
        node.zt.close()


def test_anomaly_alerts_are_muted_per_workload_like_any_rule(cfg: StockadeConfig, store: Store) -> None:
    assert ANOMALY_RULE in BUILTIN_RULES
    node = Node(cfg, store)
    try:
        learn(node)
        node.zt.set_mode(WEB, "monitor", who="t", why="t")
        alerts = node.feed(shell("c" * 64))
        mutes = MuteSet(clock=lambda: alerts[0].time_ns)
        mutes.add(
            MuteRequest(ANOMALY_RULE, "pentest this week", workload=WEB, for_="1h").mute(alerts[0].time_ns)
        )
        assert mutes.filter(alerts) == []
        other = MuteSet(clock=lambda: alerts[0].time_ns)
        other.add(
            MuteRequest(ANOMALY_RULE, "x", workload="container/localhost/db/db", for_="1h").mute(
                alerts[0].time_ns
            )
        )
        assert other.filter(alerts) == alerts
    finally:
        node.zt.close()


def test_a_window_alerts_once_and_a_broken_model_file_is_reported(tmp_path: Path) -> None:
    m = WorkloadModel(OnlineSettings(min_tokens=1))
    for c in range(30):
        for t in ("a", "b", "c", "d", "b", "c"):
            m.learn(f"c{c}", t)
    m.freeze()
    verdicts = [m.score("x", t) for t in ("a", "b", "c", "d", "zz", "b", "c", "d")]
    # the window that takes zz in alerts; the three after it, which still hold it, do not
    assert [v.anomalous for v in verdicts] == [False, False, False, False, True, False, False, False]
    assert [v.score > v.threshold for v in verdicts[4:]] == [True, True, True, True]
    assert verdicts[4].never_seen and verdicts[4].unusual[-1] == "zz"
    bad = tmp_path / "container%2Fx.json.gz"
    bad.write_bytes(b"not gzip, not json")
    with pytest.raises(Exception, match="not an anomaly model"):
        WorkloadModel.load(bad)


def test_tokens_of_an_unfilled_window_are_trained_on_when_the_model_freezes() -> None:
    # replicas that each showed a few tokens: no container filled a window of 4 while learning
    m = WorkloadModel(OnlineSettings(window=4, min_tokens=9))
    for c in ("r1", "r2", "r3"):
        for t in ("start", "listen", "accept"):
            m.learn(c, t)
    assert m.learned == 9 and m.trained == 0 and not m.ready
    m.freeze()
    assert m.trained == 9 and m.ready
    # each stream scores on from where its learning ended: the known step is not unusual
    v = m.score("r1", "start")
    assert not v.never_seen and not v.anomalous and v.window == ("listen", "accept", "start")
