"""What the running node writes to the audit log: every alert stored, every API request that changes
something (with its actor), mutes, rules reloads, zero trust's mode changes (promotions included)
and policies; the API's audit endpoints; and the chain stays intact through all of it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from stockade.api.app import create_app
from stockade.audit.chain import canonical_json
from stockade.audit.verify import verify
from stockade.config import StockadeConfig, load_config
from stockade.model.alert import Alert
from stockade.model.clock import FakeClock
from stockade.runtime.auditing import zero_trust_hook
from stockade.runtime.service import Runtime
from stockade.runtime.zerotrust import ZeroTrust
from stockade.storage.audit import AuditRow, AuditStore
from stockade.storage.behavior import BehaviorStore

RULES = """
- rule: Shadow read
  desc: d
  condition: evt.type = openat and fd.name = /etc/shadow
  output: shadow read by %proc.name (container=%container.id)
  priority: WARNING
"""
WEB = "container/localhost/web/web"
FULL = "abc123abc123" + "0" * 52


def _cfg(tmp_path: Path, **extra: Any) -> StockadeConfig:
    return load_config(
        None,
        {"data_dir": str(tmp_path / "data"), "audit": {"checkpoint_every": 1000}, **extra},
        environ={},
    )


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    rt = Runtime(_cfg(tmp_path), rules=[str(rules)])
    try:
        yield rt
    finally:
        rt.close()


def _records(rt: Runtime, kind: str | None = None) -> list[AuditRow]:
    return list(reversed(AuditStore(rt.store).recent(kind=kind, limit=1000)))


def _data(r: AuditRow) -> dict[str, Any]:
    d: dict[str, Any] = r.to_dict()["data"]
    return d


def test_alerts_api_changes_mutes_and_reloads_are_recorded(runtime: Runtime) -> None:
    shadow = {
        "evt.type": "openat",
        "fd.name": "/etc/shadow",
        "proc.name": "cat",
        "container.id": "3ad7b26ded6d",
    }
    with TestClient(create_app(runtime.store, runtime)) as c:
        assert c.post("/api/v1/ingest/events", json=[shadow]).status_code == 200
        runtime.pipeline.tick()
        m = c.post(
            "/api/v1/mutes",
            json={"rule": "Shadow read", "reason": "ticket 7", "for": "1h", "created_by": "alice"},
        ).json()
        assert c.delete(f"/api/v1/mutes/{m['id']}").status_code == 200
        assert c.post("/api/v1/rules/reload").status_code == 200
        assert c.post("/api/v1/mutes", json={"rule": "no such rule", "reason": "x"}).status_code == 422
        cp = c.post("/api/v1/audit/checkpoints")
        assert cp.status_code == 201 and cp.json()["head_seq"] >= 7
        report = c.get("/api/v1/audit/verify").json()
        listed = c.get("/api/v1/audit", params={"kind": "api"}).json()["items"]

    [alert_rec] = _records(runtime, "alert")
    [stored] = runtime.store.list_alerts()
    assert alert_rec.subject == stored.id
    assert _data(alert_rec) == {
        "rule": "Shadow read",
        "priority": "Warning",
        "workload": stored.workload,
        "container": "3ad7b26ded6d",
        "sha256": hashlib.sha256(canonical_json(stored.to_falco_json()).encode()).hexdigest(),
    }
    mutes = _records(runtime, "mute")
    assert [(r.actor, _data(r)["action"], r.subject) for r in mutes] == [
        ("alice", "added", m["id"]),
        ("alice", "removed", m["id"]),
    ]
    [reload] = _records(runtime, "rules")
    assert _data(reload)["ok"] is True and _data(reload)["rules_active"] == 1
    api = _records(runtime, "api")
    # ingestion is data, not a user's action; the refused mute (422) is recorded with its status
    assert [(r.subject, _data(r)["status"]) for r in api] == [
        ("POST /api/v1/mutes", 201),
        (f"DELETE /api/v1/mutes/{m['id']}", 200),
        ("POST /api/v1/rules/reload", 200),
        ("POST /api/v1/mutes", 422),
        ("POST /api/v1/audit/checkpoints", 201),
    ]
    assert {r.actor for r in api} == {"testclient"}
    assert listed[0]["subject"] == "POST /api/v1/audit/checkpoints"  # newest first
    assert report["ok"] is True and report["signatures_checked"] is True, report
    assert report["checkpoints"] == 1


def test_the_actor_is_the_token_holder_and_a_refused_request_is_recorded(runtime: Runtime) -> None:
    with TestClient(create_app(runtime.store, runtime, token="s3cret")) as c:
        assert c.post("/api/v1/rules/reload").status_code == 401
        ok = c.post("/api/v1/rules/reload", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
    api = _records(runtime, "api")
    assert [(r.actor, _data(r)["status"]) for r in api] == [("testclient", 401), ("token@testclient", 200)]


def test_the_runtime_signs_a_checkpoint_at_close_and_the_chain_verifies(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    rt = Runtime(_cfg(tmp_path), rules=[str(rules)])
    try:
        assert rt.audit is not None
        rec = rt.audit.append("response", "container 3ad7b26ded6d", {"action": "isolate"}, actor="bob")
        assert (rec.seq, rec.kind, rec.actor) == (1, "response", "bob")
        rt.ingest_alerts(
            [
                Alert(
                    time_ns=1,
                    rule="R",
                    priority="Warning",
                    output="o",
                    output_fields={},
                    source="syscall",
                    tags=[],
                    hostname="h",
                )
            ]
        )
    finally:
        rt.close()
    from stockade.storage.store import Store

    with Store(f"sqlite:///{tmp_path / 'data' / 'stockade.db'}", read_only=True) as s:
        key = rt.audit.key.public
        r = verify(s, key, checkpoint_file=tmp_path / "data" / "audit" / "checkpoints.jsonl")
    # the response record, the alert, and the incident the alert opened
    assert r.ok and (r.records, r.checkpoints, r.file_checkpoints) == (3, 1, 1), r.lines()
    assert r.last_checkpoint is not None and r.last_checkpoint.head_seq == 3


def _exec(exe: str) -> dict[str, Any]:
    return {
        "evt.type": "execve",
        "container.id": FULL[:12],
        "container.full_id": FULL,
        "container.name": "web-1",
        "container.image.repository": "localhost/web",
        "container.image.digest": "sha256:1111",
        "proc.pid": 10,
        "proc.name": exe.rsplit("/", 1)[-1],
        "proc.exepath": exe,
        "proc.pexepath": "/usr/sbin/httpd",
        "evt.rawres": 0,
    }


def test_zero_trust_mode_changes_promotions_and_policies_are_recorded(
    runtime: Runtime, tmp_path: Path
) -> None:
    cfg = _cfg(
        tmp_path,
        zero_trust={"promotion": {"to": "monitor", "quiet_s": 60, "min_observations": 1}},
        anomaly={"enabled": False},
    )
    clock = FakeClock()
    zt = ZeroTrust(
        cfg, BehaviorStore(runtime.store), lambda _a: None, clock=clock, enforce=False, discover=list
    )
    assert runtime.audit is not None
    zt.on_audit = zero_trust_hook(runtime.audit)
    zt.start()
    try:
        zt.observe(_exec("/usr/sbin/httpd"))
        clock.advance(120)
        zt.refresh()  # stable for 60 s: promoted to monitor by stockade
        zt.set_mode(WEB, "discover", who="alice", why="relearn")
    finally:
        zt.close()
    modes = [(r.subject, r.actor, _data(r)["old"], _data(r)["new"]) for r in _records(runtime, "mode")]
    assert modes == [(WEB, "stockade", "discover", "monitor"), (WEB, "alice", "monitor", "discover")]
    [policy] = _records(runtime, "policy")
    assert (
        policy.subject == WEB
        and _data(policy)["source"] == "generated"
        and len(_data(policy)["sha256"]) == 64
    )
