"""Store: the event log (ids, queries by field and time, retention), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from stockade.errors import NotFoundError
from stockade.model.event import Event
from stockade.storage.store import Store

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000

K8S_AUDIT = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "RequestResponse",
    "auditID": "5f4c2c38-1d3b-4a37-8e4f-9f1b7e9d3c11",
    "stage": "ResponseComplete",
    "requestURI": "/api/v1/namespaces/prod/pods/web-1/exec?command=sh",
    "verb": "create",
    "user": {"username": "alice", "groups": ["system:authenticated"]},
    "objectRef": {"resource": "pods", "namespace": "prod", "name": "web-1", "subresource": "exec"},
    "responseStatus": {"code": 101},
    "requestReceivedTimestamp": "2023-11-14T22:13:20.000000Z",
    "stageTimestamp": "2023-11-14T22:13:21.500000Z",
}


@pytest.fixture
def store(db_url: str) -> Any:
    s = Store(db_url)
    yield s
    s.close()


def test_ids_assigned_and_round_trip(store: Store, make_event: Any) -> None:
    e1 = make_event(**{"fd.name": "/etc/shadow", "proc.aname[2]": "sshd", "evt.res": None})
    e1.meta = {"workload": "host:/usr/sbin/sshd"}
    e2 = make_event(time_ns=T0 + 1)
    e2.id = "my-own-id-000001"
    store.add_events([e1, e2])
    assert e1.id is not None and len(e1.id) == 32
    assert e2.id == "my-own-id-000001"
    got = store.get_event(e1.id)
    assert got == e1
    assert store.get_event(e1.id[:8]) == e1
    assert [e.id for e in store.query_events()] == [e2.id, e1.id]  # newest first
    with pytest.raises(NotFoundError):
        store.get_event("0" * 32)


def test_event_without_time_gets_the_insert_time(store: Store) -> None:
    from stockade.model.timeutil import now_ns

    before = now_ns()
    store.add_events([Event("syscall", {"evt.type": "open"})])
    assert store.query_events(since_ns=before)[0].data == {"evt.type": "open"}


def test_where_on_indexed_columns(store: Store, make_event: Any) -> None:
    store.add_events(
        [
            make_event(T0, **{"evt.type": "openat", "proc.name": "cat", "container.id": "c1"}),
            make_event(T0 + 1, **{"evt.type": "execve", "proc.name": "bash", "container.id": "c1"}),
            make_event(T0 + 2, **{"evt.type": "execve", "proc.name": "sh", "k8s.ns.name": "prod"}),
        ]
    )
    q = store.query_events
    assert [e.data["proc.name"] for e in q(where={"evt.type": "execve"})] == ["sh", "bash"]
    assert [e.data["proc.name"] for e in q(where={"container.id": "c1", "evt.type": "openat"})] == ["cat"]
    assert [e.data["proc.name"] for e in q(where={"k8s.ns.name": "prod"})] == ["sh"]
    assert q(where={"evt.type": "connect"}) == []


def test_indexed_field_derived_from_others(store: Store) -> None:
    ev = Event("syscall", {"evt.time": T0, "evt.type": "execve", "proc.exepath": "/usr/bin/python3.11"})
    store.add_events([ev])
    assert [e.id for e in store.query_events(where={"proc.name": "python3.11"})] == [ev.id]


def test_where_on_json_fields_strings_numbers_bools(store: Store, make_event: Any) -> None:
    store.add_events(
        [
            make_event(T0, **{"fd.name": "/etc/shadow", "proc.pid": 42, "fd.num": 3, "evt.failed": False}),
            make_event(T0 + 1, **{"fd.name": "/etc/passwd", "proc.pid": 420, "proc.aname[2]": "sshd"}),
            make_event(T0 + 2, **{"fd.name": "42", "evt.failed": True, "x.ratio": 0.5}),
        ]
    )
    q = store.query_events

    def names(**where: str) -> list[str]:
        return [e.data["fd.name"] for e in q(where=where)]

    assert names(**{"fd.name": "/etc/shadow"}) == ["/etc/shadow"]
    assert names(**{"proc.pid": "42"}) == ["/etc/shadow"]  # a number, not the string "42"
    assert names(**{"fd.name": "42"}) == ["42"]  # a string, not the number 42
    assert names(**{"proc.aname[2]": "sshd"}) == ["/etc/passwd"]
    assert names(**{"evt.failed": "true"}) == ["42"]
    assert names(**{"evt.failed": "false"}) == ["/etc/shadow"]
    assert names(**{"x.ratio": "0.5"}) == ["42"]
    assert names(**{"fd.name": "/etc/shadow", "proc.pid": "420"}) == []
    assert names(**{"no.such.field": "x"}) == []


def test_k8s_audit_events_by_ka_fields_and_json_paths(store: Store, make_event: Any) -> None:
    k = Event("k8s_audit", dict(K8S_AUDIT), origin="audit.log:7")
    other = dict(K8S_AUDIT, verb="get", user={"username": "bob"})
    store.add_events([k, Event("k8s_audit", other), make_event(T0)])
    q = store.query_events
    assert [e.id for e in q(source="k8s_audit", where={"ka.verb": "create"})] == [k.id]
    assert [e.id for e in q(where={"ka.user.name": "alice"})] == [k.id]
    assert [e.id for e in q(where={"ka.target.resource": "pods", "ka.target.namespace": "prod"})][-1] == k.id
    assert [e.id for e in q(where={"objectRef.name": "web-1", "verb": "create"})] == [k.id]
    assert [e.id for e in q(where={"responseStatus.code": "101", "user.username": "alice"})] == [k.id]
    assert len(q(source="syscall")) == 1
    got = store.get_event(k.id or "")
    assert got.data == K8S_AUDIT and got.origin == "audit.log:7"
    # the event's time is the audit stageTimestamp
    assert q(since_ns=T0 + int(1.5 * S), source="k8s_audit")[-1].id == k.id


def test_time_window_limit_offset(store: Store, make_event: Any) -> None:
    store.add_events([make_event(T0 + i * S, **{"fd.num": i}) for i in range(20)])
    got = store.query_events(since_ns=T0 + 5 * S, until_ns=T0 + 9 * S)
    assert [e.data["fd.num"] for e in got] == [9, 8, 7, 6, 5]
    got = store.query_events(since_ns=T0 + 5 * S, limit=2, offset=1)
    assert [e.data["fd.num"] for e in got] == [18, 17]


def test_same_event_twice_is_stored_once(store: Store, make_event: Any) -> None:
    e = make_event()
    store.add_events([e])
    store.add_events([e])
    assert store.stats()["events"] == 1


def test_retention_by_age_and_count(db_url: str, make_event: Any, make_alert: Any) -> None:
    s = Store(db_url, max_events=1_000_000, event_retention_s=3600, alert_retention_s=86400)
    try:
        now = T0 + 10 * 86400 * S
        s.add_events([make_event(now - h * 3600 * S - 1, **{"fd.num": h}) for h in range(5)])
        s.add_alerts([make_alert(time_ns=now - d * 86400 * S - 1, rule=f"d{d}") for d in range(3)])
        assert s.apply_retention(now) == {"events": 4, "alerts": 2}
        assert [e.data["fd.num"] for e in s.query_events()] == [0]
        assert [a.rule for a in s.list_alerts()] == ["d0"]
        assert s.apply_retention(now) == {"events": 0, "alerts": 0}
    finally:
        s.close()


def test_max_events_keeps_the_newest(db_url: str, make_event: Any) -> None:
    s = Store(db_url, max_events=100)
    try:
        # inserted out of time order: the oldest by event time go first
        for batch in range(5):
            s.add_events(
                [make_event(T0 + (i * 5 + batch) * S, **{"fd.num": i * 5 + batch}) for i in range(50)]
            )
            assert s.stats()["events"] <= 100 + 50
        s.apply_retention()
        nums = sorted(e.data["fd.num"] for e in s.query_events(limit=1000))
        assert nums == list(range(150, 250))
    finally:
        s.close()


def test_stats(store: Store, make_event: Any, make_alert: Any) -> None:
    store.add_events([make_event(T0 + i) for i in range(3)])
    store.add_alerts([make_alert()])
    st = store.stats()
    assert st["events"] == 3 and st["alerts"] == 1 and st["db_bytes"] > 0


def test_nul_characters_do_not_break_storage(store: Store, make_event: Any, make_alert: Any) -> None:
    e = make_event(**{"proc.name": "ba\x00sh", "fd.name": "/tmp/a\x00b"})
    store.add_events([e])
    store.add_alerts([make_alert(output="bad\x00output")])
    (got,) = store.query_events(where={"proc.name": "bash"})
    assert got.data["fd.name"] in ("/tmp/a\x00b", "/tmp/a\ufffdb")  # jsonb cannot hold NUL
    assert store.count_alerts(text="badoutput") == 1
