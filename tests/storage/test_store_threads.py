"""Store: one writer thread and reader threads at the same time (as the pipeline and the API do)."""

from __future__ import annotations

import threading
from typing import Any

from stockade.storage.store import Store

T0 = 1_700_000_000_000_000_000


def test_one_writer_and_readers(db_url: str, make_alert: Any, make_event: Any) -> None:
    store = Store(db_url, max_events=10_000)
    errors: list[BaseException] = []
    done = threading.Event()
    seen: list[int] = []

    def writer() -> None:
        try:
            for b in range(40):
                store.add_events([make_event(T0 + b * 100 + i) for i in range(50)])
                store.add_alerts([make_alert(time_ns=T0 + b)])
        except BaseException as e:
            errors.append(e)
        finally:
            done.set()

    def reader() -> None:
        try:
            while not done.is_set():
                n = store.count_alerts()
                seen.append(n)
                store.list_alerts(limit=5)
                store.query_events(where={"evt.type": "execve"}, limit=5)
                store.stats()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:
        assert errors == []
        assert store.count_alerts() == 40
        assert store.stats()["events"] == 2000
        assert seen and max(seen) <= 40  # readers made progress and never saw a partial batch
    finally:
        store.close()
