"""The zero-trust endpoints (/api/v1/workloads, /profiles, /modes, /policies, /enforcement) over the
real runtime and store, events sent through /ingest/events; ids with slashes, encoded or not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from fastapi.testclient import TestClient

from stockade.runtime.zerotrust import ZeroTrust
from stockade.storage.behavior import BehaviorStore

WID = "container/localhost/web/web"
NDJSON = {"Content-Type": "application/x-ndjson"}
BASE: dict[str, Any] = {
    "container.id": "abc123abc123",
    "container.full_id": "abc123abc123" + "0" * 52,
    "container.name": "web-1",
    "container.image.repository": "localhost/web",
    "container.image.digest": "sha256:1111",
    "proc.pid": 7,
    "proc.name": "httpd",
    "proc.exepath": "/usr/sbin/httpd",
    "evt.rawres": 0,
}


def events(*items: dict[str, Any]) -> bytes:
    return b"\n".join(orjson.dumps({**BASE, **e}) for e in items)


LEARN = events(
    {"evt.type": "execve", "proc.pexepath": "/dev/fd/6"},
    {"evt.type": "openat", "evt.rawres": 3, "fd.name": "/srv/index.html", "evt.arg.flags": "O_RDONLY"},
)
SHADOW = events(
    {"evt.type": "openat", "evt.rawres": 3, "fd.name": "/etc/shadow", "evt.arg.flags": "O_RDONLY"}
)


@pytest.fixture
def zt_client(runtime: Any) -> Iterator[TestClient]:
    """The API over a runtime with zero trust (no enforcers: they are tested for real elsewhere)."""
    from stockade.api.app import create_app

    zt = ZeroTrust(
        runtime.cfg,
        BehaviorStore(runtime.store),
        lambda a: runtime.pipeline.ingest_alerts(a, external=False),
        enforce=False,
        discover=list,
    )
    zt.start()
    runtime.zt = zt
    runtime.pipeline.observer = zt.observe
    with TestClient(create_app(runtime.store, runtime)) as c:
        yield c
    zt.close()


def test_without_a_sensor_zero_trust_answers_409(client: TestClient) -> None:
    r = client.get("/api/v1/workloads")
    assert r.status_code == 409 and r.headers["content-type"].startswith("application/problem+json")
    assert "zero trust runs where the sensor runs" in r.json()["detail"]


def test_learn_monitor_and_protect_through_the_api(zt_client: TestClient) -> None:
    c = zt_client
    assert c.post("/api/v1/ingest/events", content=LEARN, headers=NDJSON).status_code == 200
    [w] = c.get("/api/v1/workloads").json()["items"]
    assert (w["id"], w["mode"], w["containers"]) == (WID, "discover", [])
    for path in (f"/api/v1/workloads/{WID}", f"/api/v1/workloads/{quote(WID, safe='')}"):
        assert c.get(path).json()["id"] == WID
    prof = c.get(f"/api/v1/profiles/{WID}").json()
    assert {e[0] for e in prof["processes"]} == {"/usr/sbin/httpd"}
    assert c.get("/api/v1/workloads/container/none/none").status_code == 404
    assert "path: /srv/index.html" in c.post(f"/api/v1/policies/generate/{WID}").json()["policy"]
    assert c.get(f"/api/v1/policies/{WID}").status_code == 404  # learning: no policy in force yet

    r = c.put(
        f"/api/v1/modes/{quote(WID, safe='')}", json={"mode": "monitor", "why": "learned", "who": "alice"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["change"]["new"] == "monitor"
    c.post("/api/v1/ingest/events", content=SHADOW, headers=NDJSON)
    alerts = [a for a in c.get("/api/v1/alerts").json()["items"] if a["rule"] == "Workload policy deviation"]
    assert [a["output_fields"]["stockade.target"] for a in alerts] == ["/etc/shadow (read)"]

    refused = c.put(f"/api/v1/modes/{WID}", json={"mode": "protect"})
    assert refused.status_code == 409 and "would be denied" in refused.json()["detail"]
    forced = c.put(f"/api/v1/modes/{WID}", json={"mode": "protect", "force": True})
    assert forced.status_code == 200 and forced.json()["workload"]["mode"] == "protect"
    history = c.get(f"/api/v1/workloads/{WID}").json()["history"]
    assert [(h["new"], h["who"]) for h in history] == [("protect", "api"), ("monitor", "alice")]
    assert c.put(f"/api/v1/modes/{WID}", json={"mode": "lockdown"}).status_code == 422


def test_policies_apply_with_located_errors(zt_client: TestClient) -> None:
    c = zt_client
    text = f"""apiVersion: stockade.dev/v1alpha1
kind: WorkloadPolicy
metadata: {{name: web}}
spec:
  workload: {WID}
  file:
    - path: /srv/**
      access: [reed]
"""
    bad = c.put("/api/v1/policies", json={"policy": text, "origin": "web.yaml"})
    assert bad.status_code == 400 and "web.yaml:8:" in bad.json()["detail"], bad.text
    good = c.put("/api/v1/policies", json={"policy": text.replace("reed", "read"), "origin": "web.yaml"})
    assert good.status_code == 200 and good.json() == {
        "policy": "web",
        "workload": WID,
        "mode": "discover",
        "warnings": [],
    }
    assert "name: web" in c.get(f"/api/v1/policies/{WID}").json()["policy"]
    support = c.get("/api/v1/enforcement").json()
    assert support["workloads"] == 1 and support["enforcement"] is None


def test_the_openapi_document_lists_the_zero_trust_endpoints(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for p in (
        "/api/v1/workloads",
        "/api/v1/workloads/{workload_id}",
        "/api/v1/profiles/{workload_id}",
        "/api/v1/modes/{workload_id}",
        "/api/v1/policies",
        "/api/v1/policies/{workload_id}",
        "/api/v1/policies/generate/{workload_id}",
        "/api/v1/enforcement",
    ):
        assert p in paths, sorted(paths)
