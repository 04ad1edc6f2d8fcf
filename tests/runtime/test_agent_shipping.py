"""An agent's shipping to a manager: real manager (API + store) under uvicorn on 127.0.0.1, an
outage in the middle, and nothing lost or duplicated."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from stockade.api.app import create_app
from stockade.config import load_config
from stockade.engine import Engine
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


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
            return st.list_alerts(limit=1000)
        finally:
            st.close()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Manager, Path]]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULE)
    m = Manager(tmp_path, rules, _free_port())
    yield m, rules


def _wait(pred: Any, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


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
    assert _wait(lambda: shipper.stats.sent["alerts"] == 1)
    mgr.stop()  # the manager goes away: the next alerts wait on disk
    for pid in range(2, 12):
        read(pid)
    assert _wait(lambda: shipper.backlog >= 1 and shipper.stats.reachable is False)
    mgr.start()  # it comes back: the spool drains, oldest first
    assert _wait(lambda: shipper.stats.sent["alerts"] == 11 and shipper.backlog == 0, 30)
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
    assert _wait(lambda: again.stats.sent["alerts"] == 1)
    again.close()
    mgr.stop()
    assert [a.rule for a in mgr.alerts()] == ["x"]
