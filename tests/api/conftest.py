"""Fixtures for the API tests: the real runtime (engine, pipeline, SQLite store) in tmp_path."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

#: an event Falco's "Read sensitive file untrusted" rule fires on
SHADOW_READ: dict[str, Any] = {
    "evt.time": 1732300000000000000,
    "evt.type": "openat",
    "evt.dir": "<",
    "evt.is_open_read": True,
    "fd.name": "/etc/shadow",
    "fd.num": 3,
    "proc.name": "cat",
    "proc.exepath": "/usr/bin/cat",
    "proc.pname": "bash",
    "proc.cmdline": "cat /etc/shadow",
    "container.id": "3ad7b26ded6d",
    "user.name": "root",
    "user.uid": 0,
}

#: what falcosidekick / Falco http_output POST for one alert
FALCO_ALERT: dict[str, Any] = {
    "hostname": "node-1",
    "output": "18:13:20.123456789: Warning Sensitive file opened for reading by non-trusted program "
    "(file=/etc/shadow process=cat container_id=3ad7b26ded6d)",
    "priority": "Warning",
    "rule": "Read sensitive file untrusted",
    "source": "syscall",
    "tags": ["filesystem", "mitre_credential_access", "T1555"],
    "time": "2024-11-22T18:13:20.123456789Z",
    "output_fields": {
        "container.id": "3ad7b26ded6d",
        "evt.time": 1732299200123456789,
        "evt.type": "openat",
        "fd.name": "/etc/shadow",
        "proc.cmdline": "cat /etc/shadow",
        "proc.name": "cat",
        "proc.pname": "bash",
        "user.name": "root",
        "user.uid": 0,
    },
}


def make_runtime(data_dir: Path, rules: list[Path]) -> Any:
    """The real runtime (engine, pipeline, store) over `rules`, storing every event, no aggregation.

    The Kubernetes audit rules join when the engine can load them (their fields may not exist yet).
    """
    from stockade.config import load_config
    from stockade.runtime.service import Runtime

    cfg = load_config(
        None,
        {
            "data_dir": str(data_dir),
            "hostname": "api-test",
            "engine": {"aggregate_window_s": 0},
            "storage": {"record_events": "all"},
        },
        environ={},
    )
    try:
        return Runtime(cfg, rules=[str(p) for p in rules])
    except Exception:
        if len(rules) < 2:
            raise
        return Runtime(cfg, rules=[str(rules[0])])


@pytest.fixture(scope="session")
def runtime_factory() -> Any:
    """make_runtime(data_dir, rules) for fixtures of a wider scope."""
    return make_runtime


@pytest.fixture(scope="session")
def rule_files(falco_rules_path: Path, k8s_audit_rules_path: Path) -> list[Path]:
    return [falco_rules_path, k8s_audit_rules_path]


@pytest.fixture
def runtime(tmp_path: Path, rule_files: list[Path]) -> Iterator[Any]:
    rt = make_runtime(tmp_path, rule_files)
    try:
        yield rt
    finally:
        rt.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    """A store of its own (for the read tests, without a runtime)."""
    from stockade.storage.store import Store

    s = Store(f"sqlite:///{tmp_path / 'read.db'}")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def client(runtime: Any) -> Iterator[TestClient]:
    """The API over the real runtime, with a 64 KiB body limit."""
    from stockade.api.app import create_app

    with TestClient(create_app(runtime.store, runtime, max_body_bytes=64 * 1024)) as c:
        yield c


@pytest.fixture
def ingest_client(client: TestClient) -> TestClient:
    return client


@pytest.fixture
def bare_client(store: Any) -> Iterator[TestClient]:
    """An API over the store only (no runtime)."""
    from stockade.api.app import create_app

    with TestClient(create_app(store, None)) as c:
        yield c


def _assert_problem(resp: Any, status: int) -> dict[str, Any]:
    """`resp` is an RFC 9457 problem with `status`; returns its body."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.headers
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert "Traceback" not in resp.text
    return body


@pytest.fixture
def problem() -> Any:
    """assert_problem(resp, status) -> body."""
    return _assert_problem


@pytest.fixture
def shadow_read() -> dict[str, Any]:
    return copy.deepcopy(SHADOW_READ)


@pytest.fixture
def falco_alert() -> dict[str, Any]:
    return copy.deepcopy(FALCO_ALERT)
