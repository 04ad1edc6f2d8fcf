"""An agent's shipping to a manager: real manager (API + store) under uvicorn on 127.0.0.1, an
outage in the middle, and nothing lost or duplicated; then the shipper's batching, retries and
counting against httpx's MockTransport on a fake clock."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from helpers import free_port, wait_until
from stockade.api.app import create_app
from stockade.config import load_config
from stockade.engine import Engine
from stockade.model.clock import FakeClock
from stockade.model.event import Event
from stockade.runtime.agent import ShippingStore
from stockade.runtime.pipeline import Pipeline
from stockade.runtime.service import Runtime
from stockade.runtime.shipper import Shipper

RULE = """
- rule: Shadow read
  desc: d
  condition: evt.type = openat and fd.name = /etc/shadow
  output: shadow read by %proc.name (n=%proc.pid)
  priority: WARNING
"""


class Manager:
    """A real manager (Runtime + API) that can be started and stopped on a fixed port."""

    def __init__(self, tmp: Path, rules: Path, port: int) -> None:
        self.cfg = load_config(
            None, {"data_dir": str(tmp / "mgr"), "engine": {"falco_rules_paths": []}}, environ={}
        )
        self.rules = rules
        self.port = port
        self.rt: Runtime | None = None
        self._srv: uvicorn.Server | None = None
        self._t: threading.Thread | None = None

    def start(self) -> None:
        self.rt = Runtime(self.cfg, rules=[str(self.rules)])
        app = create_app(self.rt.store, self.rt)
        self._srv = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error", lifespan="off")
        )
        self._t = threading.Thread(target=self._srv.run, daemon=True)
        self._t.start()
        deadline = time.monotonic() + 10
        while not self._srv.started:
            assert time.monotonic() < deadline
            time.sleep(0.02)

    def stop(self) -> None:
        assert self._srv is not None and self._t is not None and self.rt is not None
        self._srv.should_exit = True
        self._t.join(10)
        self.rt.close()

    def alerts(self) -> list[Any]:
        from stockade.storage.store import Store

        st = Store(self.cfg.db_url())
        try:
            alerts: list[Any] = st.list_alerts(limit=1000)
            return alerts
        finally:
            st.close()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Manager, Path]]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE)
    m = Manager(tmp_path, rules, free_port())
    yield m, rules


def test_alerts_and_evidence_survive_a_manager_outage_in_order_and_once(
    setup: tuple[Manager, Path], tmp_path: Path
) -> None:
    mgr, rules = setup
    shipper = Shipper(f"http://127.0.0.1:{mgr.port}", tmp_path / "spool", flush_s=0.1, retry_s=0.3)
    pipe = Pipeline(Engine.from_files([rules]), [], store=ShippingStore(shipper), record_events="alerts")
    mgr.start()

    def read(pid: int) -> None:
        pipe.handle(
            Event(
                "syscall",
                {
                    "evt.type": "openat",
                    "fd.name": "/etc/shadow",
                    "proc.name": "cat",
                    "proc.pid": pid,
                    "evt.time": 1_000 + pid,
                },
            )
        )
        pipe.tick()

    read(1)
    assert wait_until(lambda: shipper.stats.sent["alerts"] == 1)
    mgr.stop()  # the manager goes away: the next alerts wait on disk
    for pid in range(2, 12):
        read(pid)
    assert wait_until(lambda: shipper.backlog >= 1 and shipper.stats.reachable is False)
    mgr.start()  # it comes back: the spool drains, oldest first
    assert wait_until(lambda: shipper.stats.sent["alerts"] == 11 and shipper.backlog == 0, 30)
    shipper.close()
    mgr.stop()
    alerts = mgr.alerts()
    assert len(alerts) == 11  # nothing lost, nothing twice
    pids = sorted(int(a.output_fields["proc.pid"]) for a in alerts)
    assert pids == list(range(1, 12))
    # each alert's evidence event was shipped too, under the agent's id
    from stockade.storage.store import Store

    st = Store(mgr.cfg.db_url())
    try:
        for a in alerts:
            assert a.event_ids and st.get_event(a.event_ids[0]).data["fd.name"] == "/etc/shadow"
    finally:
        st.close()


def test_spool_survives_an_agent_restart(setup: tuple[Manager, Path], tmp_path: Path) -> None:
    mgr, _rules = setup
    shipper = Shipper(f"http://127.0.0.1:{mgr.port}", tmp_path / "spool", flush_s=0.1, retry_s=0.2)
    shipper.submit(
        "alerts",
        [
            {
                "rule": "x",
                "priority": "Warning",
                "output": "o",
                "output_fields": {},
                "source": "syscall",
                "tags": [],
                "hostname": "h",
                "time": "2024-11-22T18:13:20Z",
            }
        ],
    )
    shipper.close(1.0)  # nobody listening: it stays on disk
    mgr.start()
    again = Shipper(f"http://127.0.0.1:{mgr.port}", tmp_path / "spool", flush_s=0.1, retry_s=0.2)
    assert wait_until(lambda: again.stats.sent["alerts"] == 1)
    again.close()
    mgr.stop()
    assert [a.rule for a in mgr.alerts()] == ["x"]


# -- the shipper alone: MockTransport, fake clock ------------------------------------------------


class FakeManager:
    """A MockTransport handler standing for the manager: answers from `script` (status, headers)
    or raises `down` while set; then 200. Records each request's path, items, headers and fake time."""

    def __init__(self, clock: FakeClock, script: list[tuple[int, dict[str, str]]] | None = None) -> None:
        self.clock = clock
        self.script = list(script or [])
        self.down = False
        self.requests: list[tuple[str, list[dict[str, Any]]]] = []
        self.headers: list[httpx.Headers] = []
        self.times: list[float] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.times.append(self.clock.monotonic())
            if self.down:
                raise httpx.ConnectError("connection refused", request=request)
            status, headers = self.script.pop(0) if self.script else (200, {})
            if status == 200:
                self.requests.append((request.url.raw_path.decode(), orjson.loads(request.content)))
                self.headers.append(request.headers)
            return httpx.Response(status, headers=headers, json={"detail": "no"} if status >= 400 else {})

    def ns(self, path: str) -> list[int]:
        with self.lock:
            return [item["n"] for p, items in self.requests if p == path for item in items]


def _shipper(tmp_path: Path, manager: FakeManager, **kw: Any) -> Shipper:
    return Shipper(
        "http://manager.test/",
        tmp_path / "spool",
        flush_s=3600,  # batches are sealed by flush() in these tests
        retry_s=2.0,
        clock=manager.clock,
        transport=httpx.MockTransport(manager),
        **kw,
    )


def _items(start: int, n: int) -> list[dict[str, Any]]:
    return [{"n": i} for i in range(start, start + n)]


ALERTS, EVENTS = "/api/v1/ingest/alerts", "/api/v1/ingest/events?evaluate=false"


def test_batches_go_to_their_endpoints_with_the_token(tmp_path: Path) -> None:
    manager = FakeManager(FakeClock())
    shipper = _shipper(tmp_path, manager, token="s3cret", max_batch=4)
    shipper.submit("alerts", _items(0, 6))  # 6 >= max_batch: sealed at once, as one batch
    shipper.submit("events", _items(100, 2))
    shipper.submit("alerts", _items(6, 1))
    shipper.flush()
    shipper.close()
    assert [(p, len(items)) for p, items in manager.requests] == [(ALERTS, 6), (ALERTS, 1), (EVENTS, 2)]
    assert manager.ns(ALERTS) == list(range(7)) and manager.ns(EVENTS) == [100, 101]
    assert manager.headers[0]["Authorization"] == "Bearer s3cret"
    assert shipper.stats.to_dict() == {
        "sent": {"alerts": 7, "events": 2},
        "spooled_batches": 0,
        "dropped": 0,
        "send_errors": 0,
        "rejected": 0,
        "last_error": None,
        "manager_reachable": True,
    }
    with pytest.raises(ValueError, match="unknown kind"):
        shipper.submit("logs", [])


def test_a_failing_manager_gets_the_spool_in_order_every_retry_s(tmp_path: Path) -> None:
    manager = FakeManager(FakeClock(), [(503, {}), (503, {}), (429, {"Retry-After": "7"})])
    shipper = _shipper(tmp_path, manager)
    for k in range(4):
        shipper.submit("alerts", _items(10 * k, 2))
        shipper.flush()
    assert wait_until(lambda: shipper.stats.sent["alerts"] == 8)
    shipper.close()
    assert manager.ns(ALERTS) == [0, 1, 10, 11, 20, 21, 30, 31]  # once each, in order
    st = shipper.stats
    assert (st.send_errors, st.reachable, st.rejected, st.dropped) == (3, True, 0, 0)
    assert st.spooled_batches >= 1  # the first failure put the batch on disk at once
    gaps = [b - a for a, b in zip(manager.times, manager.times[1:], strict=False)]
    assert gaps[0] == 0  # the failed batch goes to the spool and its head is tried at once
    assert 1.0 <= gaps[1] <= 2.0  # then every retry_s (jittered down to half)
    assert gaps[2] == pytest.approx(7.0)  # a Retry-After is honoured, as the webhook sink does
    assert "HTTP 429" in (st.last_error or "")


def test_an_unreachable_manager_is_reported(tmp_path: Path) -> None:
    manager = FakeManager(FakeClock())
    manager.down = True
    shipper = _shipper(tmp_path, manager)
    shipper.submit("events", _items(0, 3))
    shipper.flush()
    assert wait_until(lambda: shipper.stats.send_errors >= 1)
    assert shipper.stats.reachable is False
    assert "ConnectError: connection refused" in (shipper.stats.last_error or "")
    shipper.close(0.5)
    assert shipper.backlog == 1  # kept on disk for the next start
    manager.down = False
    again = _shipper(tmp_path, manager)
    assert wait_until(lambda: again.stats.sent["events"] == 3)
    again.close()
    assert again.backlog == 0 and manager.ns(EVENTS) == [0, 1, 2]


def test_a_refused_batch_is_counted_by_records_not_retried(tmp_path: Path) -> None:
    manager = FakeManager(FakeClock(), [(422, {})])
    shipper = _shipper(tmp_path, manager)
    shipper.submit("alerts", _items(0, 5))
    shipper.flush()
    shipper.submit("alerts", _items(5, 1))
    shipper.flush()
    shipper.close()
    assert (shipper.stats.rejected, shipper.stats.send_errors) == (5, 0)
    assert shipper.stats.sent["alerts"] == 1 and len(manager.times) == 2
    assert "refused a batch of 5 record(s): HTTP 422" in (shipper.stats.last_error or "")


def test_a_full_spool_drops_records_and_counts_them(tmp_path: Path) -> None:
    manager = FakeManager(FakeClock())
    manager.down = True
    shipper = _shipper(tmp_path, manager, max_spool_bytes=60, queue_batches=1)
    for k in range(5):
        shipper.submit("alerts", _items(10 * k, 3))
        shipper.flush(0.2)
    shipper.close(0.5)
    st = shipper.stats
    assert st.dropped > 0 and st.dropped % 3 == 0  # records, not batches
    assert st.dropped + 3 * shipper.backlog == 15
