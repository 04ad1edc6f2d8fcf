"""The audit log's tables on SQLite and PostgreSQL: appends from two connections never fork the
chain, records come back in order a page at a time, and retention never trims the log."""

from __future__ import annotations

import threading
from pathlib import Path

from stockade.audit.chain import AuditLog
from stockade.audit.keys import NodeKey
from stockade.audit.verify import verify
from stockade.storage.audit import AuditStore
from stockade.storage.store import Store


def test_two_writers_one_chain_paged_reads_and_no_retention(db_url: str, tmp_path: Path) -> None:
    key = NodeKey.load_or_create(tmp_path)
    with Store(db_url, event_retention_s=1, alert_retention_s=1) as a, Store(db_url) as b:
        logs = [AuditLog(a, key, checkpoint_every=25), AuditLog(b, key, checkpoint_every=25)]

        def write(log: AuditLog, name: str) -> None:
            for i in range(60):
                log.append("test", f"{name}-{i}", {"i": i, "text": "naïve \x00 ✓"})

        threads = [threading.Thread(target=write, args=(log, f"w{n}")) for n, log in enumerate(logs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        a.apply_retention(now_ns=2**62)
        store = AuditStore(a)
        assert [r.seq for r in store.iter_records(page=7)] == list(range(1, 121))
        assert [r.seq for r in store.iter_records(after=100, page=7)] == list(range(101, 121))
        assert [r.to_dict()["data"]["text"] for r in store.recent(limit=1)] == ["naïve \x00 ✓"]
        r = verify(a, key.public)
        assert r.ok, r.lines()
        assert r.records == 120 and r.checkpoints >= 4
