"""Appending from two threads and from two processes at once gives one intact chain: the database
serialises the appends (primary key on seq, retried), nothing forks, nothing is lost."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from stockade.audit.chain import AuditEntry, AuditLog
from stockade.audit.keys import NodeKey
from stockade.audit.verify import verify
from stockade.storage.audit import AuditStore
from stockade.storage.store import Store

PER_WRITER = 150

#: a writer process: its own Store and AuditLog on the same database, appending one by one and in pairs
WRITER = """
import sys
from stockade.audit.chain import AuditEntry, AuditLog
from stockade.audit.keys import NodeKey
from stockade.storage.store import Store
url, data_dir, name, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
with Store(url) as store:
    log = AuditLog(store, NodeKey.load_or_create(data_dir), checkpoint_every=50)
    for i in range(0, n, 3):
        log.append("test", f"{name}-{i}", {"i": i})
        log.append_many([AuditEntry("test", f"{name}-{i + 1}", {"i": i + 1}), AuditEntry("test", f"{name}-{i + 2}", {"i": i + 2})])
"""


def _subjects(store: Store) -> set[str]:
    return {r.subject for r in AuditStore(store).iter_records()}


def test_two_threads_one_log_and_two_logs(tmp_path: Path) -> None:
    key = NodeKey.load_or_create(tmp_path)
    url = f"sqlite:///{tmp_path / 's.db'}"
    with Store(url) as a, Store(url) as b:
        shared = AuditLog(a, key, checkpoint_every=40)
        other = AuditLog(b, key, checkpoint_every=40)  # its own connections: another writer

        def write(log: AuditLog, name: str) -> None:
            for i in range(PER_WRITER):
                log.append("test", f"{name}-{i}", {"i": i})

        threads = [
            threading.Thread(target=write, args=(shared, "t1")),
            threading.Thread(target=write, args=(shared, "t2")),
            threading.Thread(target=write, args=(other, "t3")),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        r = verify(a, key.public)
        assert r.ok, r.lines()
        assert r.records == 3 * PER_WRITER and r.head_seq == 3 * PER_WRITER
        assert len(_subjects(a)) == 3 * PER_WRITER


def test_two_processes(tmp_path: Path) -> None:
    key = NodeKey.load_or_create(tmp_path)
    url = f"sqlite:///{tmp_path / 's.db'}"
    Store(url).close()  # migrated once, before the writers race
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, url, str(tmp_path), name, str(PER_WRITER)])
        for name in ("p1", "p2")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with Store(url, read_only=True) as s:
        r = verify(s, key.public)
        assert r.ok, r.lines()
        assert r.records == 2 * PER_WRITER and r.checkpoints >= 4
        assert _subjects(s) == {f"{n}-{i}" for n in ("p1", "p2") for i in range(PER_WRITER)}
        assert AuditStore(s).count() == 2 * PER_WRITER


def test_an_entry_of_no_known_shape_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    import pytest

    from stockade.errors import UsageError

    with Store(f"sqlite:///{tmp_path / 's.db'}") as s:
        log = AuditLog(s, NodeKey.load_or_create(tmp_path))
        with pytest.raises(UsageError, match="audit record kind 'no spaces'"):
            log.append_many([AuditEntry("ok", "x", {}), AuditEntry("no spaces", "x", {})])
        assert AuditStore(s).count() == 0
