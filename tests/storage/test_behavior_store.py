"""BehaviorStore: workloads, profiles, mode changes and policies on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command

from stockade.behavior.learn import Learner
from stockade.behavior.model import Profile
from stockade.behavior.stability import rebase
from stockade.errors import NotFoundError, StorageError, UsageError
from stockade.model.clock import FakeClock
from stockade.storage import tables
from stockade.storage.behavior import BehaviorStore, ModeChange, PolicyRecord, WorkloadRecord
from stockade.storage.store import Store, alembic_config

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000
WEB = "container/localhost/web/web"
DB = "k8s/shop/statefulset/db"

POLICY_YAML = """apiVersion: stockade.dev/v1alpha1
kind: WorkloadPolicy
metadata: {name: web}
spec:
  workload: container/localhost/web/web
  process: [{path: /usr/sbin/httpd}]
"""


def learned_profile(workload: str = WEB, digest: str = "sha256:aaa", n: int = 40) -> Profile:
    """A profile learned from real-shaped events: execs, opens, a connection, a listener."""
    learner = Learner(Profile(workload, image_digest=digest), clock=FakeClock())
    for i in range(n):
        t = T0 + i * S
        learner.observe(
            {
                "evt.type": "execve",
                "evt.time": t,
                "evt.rawres": 0,
                "proc.exepath": "/bin/sleep",
                "proc.pexepath": "/bin/sh",
                "proc.args": str(i),
            }
        )
        learner.observe(
            {
                "evt.type": "openat",
                "evt.time": t,
                "evt.rawres": 3,
                "fd.name": f"/var/cache/app/item{i}.json",
                "evt.arg.flags": "O_RDONLY|O_CLOEXEC",
            }
        )
    learner.observe(
        {
            "evt.type": "connect",
            "evt.time": T0,
            "evt.rawres": 0,
            "fd.name": "10.88.0.2:40000->10.88.0.5:5432",
            "fd.l4proto": "tcp",
        }
    )
    learner.observe(
        {"evt.type": "listen", "evt.time": T0, "evt.rawres": 0, "fd.lip": "0.0.0.0", "fd.lport": 8080}
    )
    return learner.profile


def workload(wid: str = WEB, **kw: Any) -> WorkloadRecord:
    base: dict[str, Any] = {
        "id": wid,
        "kind": "container",
        "created_ns": T0,
        "last_seen_ns": T0,
        "mode_since_ns": T0,
        "image_digest": "sha256:aaa",
        "labels": {"app": "web"},
    }
    base.update(kw)
    return WorkloadRecord(**base)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store(db_url) as s:
        yield s


@pytest.fixture
def repo(store: Store) -> BehaviorStore:
    return BehaviorStore(store)


def test_workloads_upsert_keeps_the_creation_time(repo: BehaviorStore) -> None:
    db = workload(DB, kind="k8s", namespace="shop", owner_kind="statefulset", owner="db", labels={})
    repo.upsert_workloads([workload(), db])
    repo.set_mode(WEB, "protect", who="alice", why="stable", time_ns=T0 + 5 * S)
    assert (repo.get_workload(WEB).mode, repo.get_workload(WEB).mode_since_ns) == ("protect", T0 + 5 * S)
    # written again, whole: a new digest, seen later, another mode; created when it was first
    again = workload(
        mode="monitor",
        mode_since_ns=T0 + 7 * S,
        created_ns=T0 + 9 * S,
        last_seen_ns=T0 + 9 * S,
        image_digest="sha256:bbb",
    )
    repo.upsert_workloads([again])
    w = repo.get_workload(WEB)
    assert (w.mode, w.mode_since_ns, w.created_ns) == ("monitor", T0 + 7 * S, T0)
    assert (w.last_seen_ns, w.image_digest, w.labels) == (T0 + 9 * S, "sha256:bbb", {"app": "web"})
    assert [x.id for x in repo.list_workloads()] == [WEB, DB]
    assert repo.list_workloads(namespace="shop") == [db]
    assert [x.id for x in repo.list_workloads(mode="monitor")] == [WEB]
    assert [x.id for x in repo.list_workloads(limit=1, offset=1)] == [DB]
    with pytest.raises(NotFoundError, match="no workload 'nope'"):
        repo.get_workload("nope")
    with pytest.raises(UsageError, match="mode must be one of"):
        repo.upsert_workloads([workload(mode="learn")])
    assert repo.get_workload(WEB) == w


def test_mode_changes_are_recorded_with_who_and_why(repo: BehaviorStore) -> None:
    repo.upsert_workloads([workload()])
    first = repo.record_mode_change(ModeChange(WEB, None, "discover", "stockade", "new workload", T0))
    group = repo.record_mode_change(ModeChange("k8s/shop/*", None, "monitor", "bob", "namespace", T0 - S))
    c1 = repo.set_mode(WEB, "monitor", who="stockade", why="stable for 1h", time_ns=T0 + S)
    c2 = repo.set_mode(WEB, "protect", who="alice", why="promotion", time_ns=T0 + 2 * S, forced=True)
    assert (c1.old, c1.new, c2.old, c2.new, c2.forced) == ("discover", "monitor", "monitor", "protect", True)
    assert first.id is not None and c1.id is not None and c2.id is not None
    assert repo.list_mode_changes(WEB) == [c2, c1, first]
    assert repo.list_mode_changes(limit=1) == [c2]
    assert repo.list_mode_changes("k8s/shop/*") == [group]
    assert repo.list_mode_changes("other") == []
    with pytest.raises(NotFoundError):
        repo.set_mode("nope", "protect", who="a", why="b", time_ns=T0)
    with pytest.raises(UsageError, match="mode must be one of discover, monitor, protect"):
        repo.set_mode(WEB, "enforce", who="a", why="b", time_ns=T0)  # type: ignore[arg-type]
    assert repo.get_workload(WEB).mode == "protect"


def test_profiles_round_trip_by_digest_and_latest(repo: BehaviorStore) -> None:
    v1 = learned_profile()
    v2 = rebase(v1, "sha256:bbb")
    other = learned_profile(DB, "sha256:ccc", n=3)
    repo.save_profiles([v1.to_dict(), other.to_dict()], T0)
    repo.save_profiles([v2.to_dict()], T0 + S)
    latest = repo.load_profile(WEB)
    assert latest is not None and (latest.image_digest, latest.version, latest.updated_ns) == (
        "sha256:bbb",
        2,
        T0 + S,
    )
    assert Profile.from_dict(latest.body) == v2
    by_digest = repo.load_profile(WEB, "sha256:aaa")
    assert by_digest is not None and Profile.from_dict(by_digest.body) == v1
    assert repo.load_profile(WEB, "sha256:zzz") is None
    assert repo.load_profile("nope") is None
    assert [(r.image_digest, r.version) for r in repo.list_profiles(WEB)] == [
        ("sha256:bbb", 2),
        ("sha256:aaa", 1),
    ]
    assert [(r.workload, r.version) for r in repo.latest_profiles()] == [(WEB, 2), (DB, 1)]
    # saving the same workload and digest again replaces it
    v2.observations += 5
    repo.save_profiles([v2.to_dict()], T0 + 2 * S)
    again = repo.load_profile(WEB)
    assert again is not None and Profile.from_dict(again.body).observations == v2.observations
    assert len(repo.list_profiles(WEB)) == 2


def test_policies(repo: BehaviorStore) -> None:
    p = PolicyRecord("web", WEB, POLICY_YAML, "generated", T0, "stockade")
    q = PolicyRecord("db", DB, "kind: WorkloadPolicy\n", "file", T0, None)
    repo.save_policy(p)
    repo.save_policy(q)
    assert repo.get_policy("web") == p
    assert repo.list_policies() == [q, p]
    assert repo.list_policies(WEB) == [p]
    assert repo.policy_of(WEB) == p and repo.policy_of("nope") is None
    edited = PolicyRecord("web", WEB, POLICY_YAML + "  # edited\n", "api", T0 + S, "alice")
    repo.save_policy(edited)
    assert repo.get_policy("web") == edited
    assert repo.delete_policy("web") == edited
    with pytest.raises(NotFoundError, match="no policy 'web'"):
        repo.get_policy("web")
    with pytest.raises(NotFoundError):
        repo.delete_policy("web")
    with pytest.raises(UsageError, match="policy source"):
        repo.save_policy(PolicyRecord("x", WEB, "", "git", T0))  # type: ignore[arg-type]


def test_everything_survives_a_restart(db_url: str) -> None:
    profile = learned_profile()
    policy = PolicyRecord("web", WEB, POLICY_YAML, "generated", T0, "stockade")
    with Store(db_url) as s:
        repo = BehaviorStore(s)
        repo.upsert_workloads([workload()])
        change = repo.set_mode(WEB, "protect", who="alice", why="stable", time_ns=T0 + S)
        repo.save_profiles([profile.to_dict()], T0)
        repo.save_policy(policy)
    with Store(db_url) as s:
        repo = BehaviorStore(s)
        assert repo.get_workload(WEB).mode == "protect"
        assert repo.list_mode_changes(WEB) == [change]
        stored = repo.latest_profiles()
        assert [Profile.from_dict(r.body) for r in stored] == [profile]
        assert repo.get_policy("web") == policy
        # learning resumes from the stored profile: what it already knew is not new again
        learner = Learner(Profile.from_dict(stored[0].body), clock=FakeClock())
        assert (
            learner.observe(
                {
                    "evt.type": "execve",
                    "evt.time": T0 + 99 * S,
                    "evt.rawres": 0,
                    "proc.exepath": "/bin/sleep",
                    "proc.pexepath": "/bin/sh",
                    "proc.args": "600",
                }
            )
            == []
        )


def test_upgrade_from_0002_keeps_data_and_adds_the_tables(db_url: str) -> None:
    if db_url.startswith("sqlite:///"):
        Path(db_url.removeprefix("sqlite:///")).parent.mkdir(parents=True)
    mute = {
        "id": "m1",
        "rule": "Shell",
        "workload": WEB,
        "reason": "noisy",
        "created_ns": T0,
        "expires_ns": T0 + S,
        "created_by": None,
    }
    eng = sa.create_engine(db_url)
    try:
        with eng.begin() as conn:
            command.upgrade(alembic_config(conn), "0002")
            conn.execute(tables.mutes.insert(), [mute])
            assert "workloads" not in sa.inspect(conn).get_table_names()
    finally:
        eng.dispose()
    with Store(db_url) as s:
        assert [m.id for m in s.list_mutes()] == ["m1"]
        BehaviorStore(s).upsert_workloads([workload()])
        assert BehaviorStore(s).get_workload(WEB).mode == "discover"


def test_unwritable_database_is_a_storage_error(db_url: str) -> None:
    Store(db_url).close()
    with Store(db_url, read_only=True) as s:
        repo = BehaviorStore(s)
        assert repo.list_workloads() == []
        with pytest.raises(StorageError, match="cannot store profiles") as ei:
            repo.save_profiles([learned_profile(n=2).to_dict()], T0)
        assert "read" in str(ei.value).lower()
        with pytest.raises(StorageError, match="cannot store workloads"):
            repo.upsert_workloads([workload()])


def test_closed_store(tmp_path: Path) -> None:
    s = Store(f"sqlite:///{tmp_path / 'c.db'}")
    s.close()
    with pytest.raises(StorageError, match="closed"):
        BehaviorStore(s).load_profile(WEB)


def test_database_full_is_a_storage_error(tmp_path: Path) -> None:
    s = Store(f"sqlite:///{tmp_path / 'full.db'}")
    try:
        pages = s.stats()["db_bytes"] // 4096 + 2
        sa.event.listen(s._engine, "connect", lambda c, _r: c.execute(f"PRAGMA max_page_count={pages}"))
        s._engine.dispose()
        repo = BehaviorStore(s)
        with pytest.raises(StorageError, match="cannot store profiles: database or disk is full"):
            repo.save_profiles([learned_profile(f"container/x/{i}", n=60).to_dict() for i in range(20)], T0)
        assert repo.latest_profiles() == []  # the transaction was rolled back whole
    finally:
        s.close()


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: a disk that really fills up."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


@pytest.mark.root
def test_disk_full_is_a_storage_error(small_tmpfs: Path) -> None:
    s = Store(f"sqlite:///{small_tmpfs / 'stockade.db'}")
    try:
        repo = BehaviorStore(s)
        repo.upsert_workloads([workload()])
        filler = small_tmpfs / "filler"
        with open(filler, "wb") as f:  # take what is left of the disk
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        with pytest.raises(StorageError, match="full") as ei:
            repo.save_profiles([learned_profile(f"container/x/{i}", n=80).to_dict() for i in range(40)], T0)
        assert str(small_tmpfs) in str(ei.value)
        filler.unlink()
        os.sync()
        repo.save_profiles([learned_profile(n=3).to_dict()], T0)  # works again once there is room
        assert repo.load_profile(WEB) is not None
        assert repo.get_workload(WEB).id == WEB
    finally:
        s.close()
