"""ResourceStore: resource samples on SQLite and PostgreSQL: stored as given, a container's history
over a time range, containers named by id, prefix or name, the baselines' seed, retention."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stockade.errors import NotFoundError, UsageError
from stockade.storage.resources import ResourceSample, ResourceStore
from stockade.storage.store import Store

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000
A = "a1b2c3d4" + "0" * 56
B = "a1b2c3e5" + "1" * 56


@pytest.fixture
def rs(db_url: str) -> Iterator[ResourceStore]:
    with Store(db_url) as store:
        yield ResourceStore(store)


def full(cid: str, t: int, **kw: object) -> ResourceSample:
    return ResourceSample(
        container_id=cid,
        time_ns=T0 + t * S,
        workload=kw.pop("workload", "container/localhost/web/web"),  # type: ignore[arg-type]
        container_name=kw.pop("name", "web-1"),  # type: ignore[arg-type]
        cpu_cores=0.25,
        cpu_usage_ns=123_456_789_000 + t,
        memory_bytes=2**40 + 5,
        memory_limit_bytes=2**31,
        pids=17,
        pids_limit=4096,
        open_files=42,
        rx_bytes=2**41,
        tx_bytes=7,
        rx_packets=3,
        tx_packets=4,
        rx_bps=1.5,
        tx_bps=None,
        missing=("network: shares the host's network namespace (not counted)",),
    )


def test_samples_come_back_as_stored_oldest_first(rs: ResourceStore) -> None:
    samples = [full(A, t) for t in range(5)]
    rs.add_samples(samples)
    rs.add_samples([])
    assert rs.history(A) == samples
    assert rs.history(A, since_ns=T0 + 1 * S, until_ns=T0 + 3 * S) == samples[1:4]
    assert rs.history(A, limit=2) == samples[3:]  # the latest 2
    assert rs.history(B) == []
    d = samples[0].to_dict()
    assert d["time"] == "2023-11-14T22:13:20.000000000Z" and d["container_id"] == A
    assert d["missing"] == list(samples[0].missing) and "time_ns" not in d


def test_a_container_is_named_by_id_prefix_or_name(rs: ResourceStore) -> None:
    rs.add_samples([full(A, 0, name="web-1"), full(B, 1, name="db-1"), full(B, 2, name="db-1")])
    assert rs.container_id(A) == A
    assert rs.container_id("a1b2c3d") == A
    assert rs.container_id("db-1") == B
    with pytest.raises(UsageError, match="ambiguous"):
        rs.container_id("a1b2c3")
    for nothing in ("a1b2c", "nosuch"):  # too short to be a prefix, and not a name
        with pytest.raises(NotFoundError, match="no resource samples"):
            rs.container_id(nothing)


def test_recent_samples_of_known_workloads_and_retention(rs: ResourceStore) -> None:
    rs.add_samples([full(A, t) for t in range(10)] + [full(B, 5, workload=None)])
    recent = rs.recent(T0 + 4 * S)
    assert [s.time_ns for s in recent] == [T0 + t * S for t in range(4, 10)]
    assert len(rs.recent(T0, limit=3)) == 3 and rs.recent(T0, limit=3)[-1].time_ns == T0 + 9 * S
    assert rs.prune(T0 + 8 * S) == 9
    assert [s.time_ns for s in rs.history(A)] == [T0 + 8 * S, T0 + 9 * S]
