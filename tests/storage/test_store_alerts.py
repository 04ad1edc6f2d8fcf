"""Store: alerts (round trip, filters, order, ids), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from stockade.errors import NotFoundError, UsageError
from stockade.model.alert import PRIORITIES, Alert
from stockade.storage.store import Store

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000


@pytest.fixture
def store(db_url: str) -> Any:
    s = Store(db_url)
    yield s
    s.close()


def test_round_trip_returns_exactly_what_was_stored(store: Store, make_alert: Any) -> None:
    a = make_alert(
        time_ns=T0 + 123_456_789,
        workload="k8s:default/deployment/web",
        event_ids=["e1", "e2"],
        count=7,
        extra={"sequence": [{"step": 1, "rule": "x"}], "exceptions": ["known_shells"]},
    )
    a.output_fields.update({"fd.sport": 443, "evt.res": None, "proc.aname[2]": "containerd-shim", "n": 1.5})
    a.output = "unicode ✓ \u00e9 and \"quotes\" and 'apostrophes'"
    store.add_alerts([a])
    got = store.get_alert(a.id)
    assert got == a
    assert got.to_falco_json() == a.to_falco_json()
    assert store.list_alerts() == [a]


def test_newest_first_with_limit_offset_and_count(store: Store, make_alert: Any) -> None:
    alerts = [make_alert(time_ns=T0 + i * S, rule=f"rule {i}") for i in range(10)]
    store.add_alerts(alerts[5:])
    store.add_alerts(alerts[:5])
    got = store.list_alerts(limit=3)
    assert [a.rule for a in got] == ["rule 9", "rule 8", "rule 7"]
    assert [a.rule for a in store.list_alerts(limit=3, offset=8)] == ["rule 1", "rule 0"]
    assert store.count_alerts() == 10


def test_time_window(store: Store, make_alert: Any) -> None:
    store.add_alerts([make_alert(time_ns=T0 + i * S, rule=f"r{i}") for i in range(10)])
    got = store.list_alerts(since_ns=T0 + 3 * S, until_ns=T0 + 5 * S)
    assert [a.rule for a in got] == ["r5", "r4", "r3"]
    assert store.count_alerts(since_ns=T0 + 3 * S, until_ns=T0 + 5 * S) == 3


def test_min_priority_gives_that_and_more_severe(store: Store, make_alert: Any) -> None:
    store.add_alerts([make_alert(priority=p, rule=p, time_ns=T0 + i) for i, p in enumerate(PRIORITIES)])
    got = {a.rule for a in store.list_alerts(min_priority="Warning")}
    assert got == {"Emergency", "Alert", "Critical", "Error", "Warning"}
    assert store.count_alerts(min_priority="warning") == 5
    assert store.count_alerts(min_priority="Debug") == 8
    assert store.count_alerts(min_priority="Emergency") == 1
    with pytest.raises(UsageError, match="unknown priority"):
        store.list_alerts(min_priority="Severe")


def test_rule_source_container_text_filters(store: Store, make_alert: Any) -> None:
    store.add_alerts(
        [
            make_alert(rule="A", container="aaaaaaaaaaaa", output="Shell spawned by NGINX"),
            make_alert(rule="B", container="bbbbbbbbbbbb", output="file opened for writing"),
            make_alert(rule="K", container=None, source="k8s_audit", output="attach to pod"),
        ]
    )
    assert [a.rule for a in store.list_alerts(rule="A")] == ["A"]
    assert [a.rule for a in store.list_alerts(source="k8s_audit")] == ["K"]
    assert [a.rule for a in store.list_alerts(container_id="bbbbbbbbbbbb")] == ["B"]
    assert [a.rule for a in store.list_alerts(container_id="bbbbbb")] == ["B"]  # short id
    assert [a.rule for a in store.list_alerts(text="nginx")] == ["A"]  # case-insensitive
    assert [a.rule for a in store.list_alerts(text="ATTACH")] == ["K"]
    assert store.list_alerts(text="100%") == []  # LIKE wildcards are literal
    assert store.count_alerts(rule="A", source="k8s_audit") == 0
    assert store.list_alerts(rule="nope") == []


def test_get_by_unique_prefix_ambiguous_and_missing(store: Store, make_alert: Any) -> None:
    a = make_alert(id="abcdef0123456789")
    b = make_alert(id="abcdef9999999999")
    c = make_alert(id="1234567890abcdef")
    store.add_alerts([a, b, c])
    assert store.get_alert("1234567").id == c.id
    assert store.get_alert("abcdef0").id == a.id
    with pytest.raises(NotFoundError, match="ambiguous"):
        store.get_alert("abcdef")
    with pytest.raises(NotFoundError, match="at least 6"):
        store.get_alert("12345")
    with pytest.raises(NotFoundError, match="no alert"):
        store.get_alert("ffffffffff")


def test_same_id_replaces_the_stored_alert(store: Store, make_alert: Any) -> None:
    a = make_alert(count=1)
    store.add_alerts([a])
    a.count = 5
    store.add_alerts([a])
    assert store.count_alerts() == 1
    assert store.get_alert(a.id).count == 5


def test_batch_of_many_alerts(store: Store, make_alert: Any) -> None:
    store.add_alerts([make_alert(time_ns=T0 + i) for i in range(2000)])
    assert store.count_alerts() == 2000
    assert store.stats()["alerts"] == 2000


def test_alert_from_falco_json_round_trips(store: Store) -> None:
    falco = {
        "time": "2024-11-22T18:13:20.123456789Z",
        "rule": "Read sensitive file untrusted",
        "priority": "Warning",
        "output": "Sensitive file opened for reading (file=/etc/shadow)",
        "output_fields": {"fd.name": "/etc/shadow", "container.id": "host"},
        "source": "syscall",
        "tags": ["filesystem"],
        "hostname": "h",
    }
    a = Alert.from_falco_json(falco)
    store.add_alerts([a])
    out = store.get_alert(a.id).to_falco_json()
    out.pop("stockade")
    assert out == falco
