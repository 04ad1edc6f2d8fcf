"""The operations endpoints: /metrics (Prometheus text, behind the token), /api/v1/mutes,
POST /api/v1/rules/reload, and the OpenAPI pages served without any CDN."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from stockade.api.app import create_app
from stockade.config import load_config
from stockade.runtime.service import Runtime

RULES = """
- rule: Shadow read
  desc: d
  condition: evt.type = openat and fd.name = /etc/shadow
  output: shadow read by %proc.name (container=%container.id)
  priority: WARNING
"""
TOKEN = "ops-token"
EVENT = {"evt.type": "openat", "fd.name": "/etc/shadow", "proc.name": "cat", "container.id": "3ad7b26ded6d"}


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    p = tmp_path / "rules.yaml"
    p.write_text(RULES)
    return p


@pytest.fixture
def rt(tmp_path: Path, rules_file: Path) -> Iterator[Runtime]:
    cfg = load_config(
        None,
        {"data_dir": str(tmp_path / "data"), "engine": {"aggregate_window_s": 0, "falco_rules_paths": []}},
        environ={},
    )
    r = Runtime(cfg, rules=[str(rules_file)])
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def http(rt: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(rt.store, rt, token=TOKEN), headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


def _ingest(http: TestClient, n: int = 1) -> None:
    body = b"".join(orjson.dumps(EVENT) + b"\n" for _ in range(n))
    r = http.post("/api/v1/ingest/events", content=body, headers={"Content-Type": "application/x-ndjson"})
    assert r.status_code == 200, r.text


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[s.name, tuple(sorted(s.labels.items()))] = s.value
    return out


def test_metrics_in_prometheus_format(http: TestClient) -> None:
    _ingest(http, 3)
    http.post("/api/v1/mutes", json={"rule": "Shadow read", "reason": "r", "for": "1h"})
    _ingest(http, 2)
    r = http.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=")
    got = _samples(r.text)
    assert got["stockade_events_total", (("source", "syscall"),)] == 5
    assert got["stockade_alerts_total", (("priority", "Warning"), ("rule", "Shadow read"))] == 3
    assert got["stockade_alerts_muted_total", (("rule", "Shadow read"),)] == 2
    assert got["stockade_mutes_active", ()] == 1
    assert got["stockade_rules_active", ()] == 1
    assert ("stockade_pipeline_failures_total", (("cause", "storage"),)) in got
    assert got["stockade_rules_reloads_total", (("result", "failed"),)] == 0
    assert "process_cpu_seconds_total" in {n for n, _ in got}
    # enforcement does not exist yet: the family is declared, with no series
    assert "# TYPE stockade_enforcement_decisions_total counter" in r.text
    assert not any(n.startswith("stockade_enforcement_decisions") for n, _ in got)


def test_metrics_require_the_token(http: TestClient) -> None:
    r = http.get("/metrics", headers={"Authorization": ""})
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    assert http.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_mutes_api(http: TestClient) -> None:
    r = http.post(
        "/api/v1/mutes",
        json={
            "rule": "Shadow read",
            "reason": "backup job",
            "workload": "container:3ad7b26ded6d",
            "for": "2h",
        },
    )
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["active"] is True and m["workload"] == "container:3ad7b26ded6d" and m["hits"] == 0
    _ingest(http)
    page = http.get("/api/v1/mutes").json()
    assert page["total"] == 1 and page["items"][0]["hits"] == 1
    assert http.get("/api/v1/alerts").json()["total"] == 0
    for body, where in [
        ({"rule": "Nope", "reason": "r", "for": "1h"}, "no loaded rule"),
        ({"rule": "Shadow read", "reason": "r"}, "needs one expiry"),
        ({"rule": "Shadow read", "reason": "r", "for": "1h", "workload": "pod:x"}, "workload"),
        ({"rule": "Shadow read", "for": "1h"}, "reason"),
    ]:
        bad = http.post("/api/v1/mutes", json=body)
        assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
        assert where in bad.json()["detail"], bad.json()
    gone = http.delete(f"/api/v1/mutes/{m['id'][:8]}")
    assert gone.status_code == 200 and gone.json()["id"] == m["id"] and gone.json()["active"] is False
    assert http.delete(f"/api/v1/mutes/{m['id']}").status_code == 404
    _ingest(http)
    assert http.get("/api/v1/alerts").json()["total"] == 1
    assert http.get("/api/v1/mutes", params={"bogus": 1}).status_code == 422


def test_reload_api(http: TestClient, rules_file: Path) -> None:
    ok = http.post("/api/v1/rules/reload")
    assert ok.status_code == 200 and ok.json()["ok"] is True
    rules_file.write_text(RULES.replace("fd.name =", "fd.nam ="))
    bad = http.post("/api/v1/rules/reload")
    assert bad.status_code == 422 and bad.json()["type"].endswith("/invalid-rules")
    assert re.search(rf"{re.escape(str(rules_file))}:4:\d+ .*: error: .*fd\.nam", bad.json()["errors"][0])
    st = http.get("/api/v1/status").json()["runtime"]["rules"]
    assert st["last_reload"]["ok"] is False and st["reloads"] == {"ok": 1, "failed": 1}
    _ingest(http)  # the running rules still fire
    assert http.get("/api/v1/alerts").json()["total"] == 1


def _assets(html: str) -> list[str]:
    return re.findall(r'<(?:script|link)[^>]*?(?:src|href)="([^"]+)"', html)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_their_assets_from_the_package(http: TestClient, page: str) -> None:
    r = http.get(page, headers={"Authorization": ""})
    assert r.status_code == 200
    urls = _assets(r.text)
    assert any(u.endswith(".js") for u in urls), urls
    for u in urls:
        assert u.startswith("/"), f"{page} loads {u} from elsewhere"
        got = http.get(u, headers={"Authorization": ""})
        assert got.status_code == 200 and len(got.content) > 100, u
        if u.endswith(".js"):
            assert b"function" in got.content[:5000]
    assert "cdn" not in r.text.lower()
    assert http.get("/openapi.json", headers={"Authorization": ""}).status_code == 200


def test_openapi_lists_the_new_paths(http: TestClient) -> None:
    paths: dict[str, Any] = http.get("/openapi.json").json()["paths"]
    assert {"/api/v1/mutes", "/api/v1/mutes/{mute_id}", "/api/v1/rules/reload", "/metrics"} <= set(paths)
