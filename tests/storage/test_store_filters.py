"""Store: one AlertFilter selects for list_alerts and count_alerts (keywords still work), on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stockade.errors import UsageError
from stockade.storage.filters import AlertFilter
from stockade.storage.store import Store

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000


@pytest.fixture
def store(db_url: str, make_alert: Any) -> Iterator[Store]:
    with Store(db_url) as s:
        s.add_alerts(
            [
                make_alert(rule="A", priority="Notice", time_ns=T0, container="aaaaaaaaaaaa"),
                make_alert(rule="B", priority="Critical", time_ns=T0 + S, container="bbbbbbbbbbbb"),
                make_alert(
                    rule="K", priority="Warning", time_ns=T0 + 2 * S, container=None, source="k8s_audit"
                ),
                make_alert(rule="B", priority="Debug", time_ns=T0 + 3 * S, container="bbbbbbbbbbbb"),
            ]
        )
        yield s


def test_a_filter_selects_the_same_alerts_as_its_keywords(store: Store) -> None:
    f = AlertFilter(since_ns=T0 + S, min_priority="warning")
    assert [a.rule for a in store.list_alerts(f)] == ["K", "B"]
    assert store.count_alerts(f) == 2
    assert store.list_alerts(f) == store.list_alerts(since_ns=T0 + S, min_priority="warning")
    assert [a.rule for a in store.list_alerts(AlertFilter(container_id="bbbbbb", until_ns=T0 + 2 * S))] == [
        "B"
    ]
    assert store.count_alerts(AlertFilter()) == store.count_alerts() == 4


def test_keywords_change_the_given_filter_and_limit_offset_still_page(store: Store) -> None:
    f = AlertFilter(rule="B")
    assert [a.priority for a in store.list_alerts(f)] == ["Debug", "Critical"]
    assert [a.priority for a in store.list_alerts(f, min_priority="Error")] == ["Critical"]
    assert store.count_alerts(f, rule="A") == 1
    assert f == AlertFilter(rule="B")  # the given filter is not changed
    assert [a.priority for a in store.list_alerts(f, limit=1, offset=1)] == ["Critical"]


def test_an_unknown_priority_or_filter_name_is_refused(store: Store) -> None:
    with pytest.raises(UsageError, match="unknown priority 'Severe'"):
        store.count_alerts(AlertFilter(min_priority="Severe"))
    with pytest.raises(TypeError):
        store.list_alerts(container="aaaaaaaaaaaa")
