"""Incidents through the API: alerts delivered by the runtime are grouped, ranked, updated by a
responder (recorded on the timeline) and reported in Markdown and HTML."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from stockade.model.alert import Alert
from stockade.model.timeutil import now_ns

S = 1_000_000_000


def _alert(
    rule: str, t: int, tags: list[str], *, priority: str = "Warning", container: str = "abc123def456"
) -> Alert:
    return Alert(
        time_ns=t,
        rule=rule,
        priority=priority,
        output=f"{rule} (container={container})",
        output_fields={"container.id": container, "proc.pid": 4321},
        source="syscall",
        tags=tags,
        hostname="api-test",
        workload="container/localhost/web",
    )


def _deliver(runtime: Any, alerts: list[Alert]) -> None:
    runtime.ingest_alerts(alerts)
    runtime.pipeline.tick()
    assert runtime.incident_service.drain(10.0)


def test_alerts_become_a_ranked_incident_that_a_responder_updates(runtime: Any, client: TestClient) -> None:
    t = now_ns()
    chain = [
        _alert("Terminal shell in container", t, ["mitre_execution", "T1059"]),
        _alert("Read sensitive file untrusted", t + S, ["mitre_credential_access"], priority="Error"),
        _alert("Outbound connection", t + 2 * S, ["mitre_command_and_control"]),
    ]
    noise = _alert("Noisy", t, ["mitre_discovery"], priority="Notice", container="ffff00001111")
    noise.workload = "container/localhost/other"
    noise.output_fields["proc.pid"] = 9999  # another process tree
    _deliver(runtime, [*chain, noise])

    r = client.get("/api/v1/incidents")
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["workload"] for i in items] == ["container/localhost/web", "container/localhost/other"]
    top = items[0]
    assert top["alerts"] == [a.id for a in chain]
    assert top["containers"] == ["abc123def456"]
    assert top["tactics"] == ["execution", "credential_access", "command_and_control"]
    assert top["status"] == "open" and top["score"] > items[1]["score"]
    assert top["notify_by"] is not None

    suffix = top["id"].rsplit("-", 1)[1]
    r = client.patch(
        f"/api/v1/incidents/{suffix}",
        json={"status": "investigating", "owner": "alice", "note": "looking", "who": "alice@ops"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "investigating" and r.json()["owner"] == "alice"

    d = client.get(f"/api/v1/incidents/{top['id']}").json()
    kinds = [e["kind"] for e in d["timeline"]]
    assert kinds.count("alert") == 3 and "note" in kinds
    assert any(
        e["kind"] == "state" and e["data"].get("to") == "investigating" and e["actor"] == "alice@ops"
        for e in d["timeline"]
    )

    md = client.get(f"/api/v1/incidents/{top['id']}/report")
    assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
    assert f"# Incident {top['id']}" in md.text and "Notification clock" in md.text and "looking" in md.text
    page = client.get(f"/api/v1/incidents/{top['id']}/report", params={"format": "html"})
    assert page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text and "Read sensitive file untrusted" in page.text

    # resolved: it sinks below the active one, and new alerts of the workload open another
    client.patch(f"/api/v1/incidents/{top['id']}", json={"status": "resolved"})
    _deliver(runtime, [_alert("Terminal shell in container", t + 3 * S, ["mitre_execution"])])
    items = client.get("/api/v1/incidents").json()["items"]
    assert len(items) == 3 and items[-1]["id"] == top["id"]
    assert client.get("/api/v1/incidents", params={"status": "resolved"}).json()["total"] == 1


def test_bad_requests_are_problems(runtime: Any, client: TestClient) -> None:
    assert client.get("/api/v1/incidents/inc-nope").status_code == 404
    _deliver(runtime, [_alert("Terminal shell in container", now_ns(), ["mitre_execution"])])
    inc = client.get("/api/v1/incidents").json()["items"][0]["id"]
    assert client.patch(f"/api/v1/incidents/{inc}", json={"status": "done"}).status_code == 422
    assert client.patch(f"/api/v1/incidents/{inc}", json={}).status_code == 422
    assert client.patch(f"/api/v1/incidents/{inc}", json={"bogus": 1}).status_code == 422
    assert client.get("/api/v1/incidents", params={"min_score": 500}).status_code == 422
    assert client.get(f"/api/v1/incidents/{inc}/report", params={"format": "pdf"}).status_code == 422


def test_the_respond_api_refuses_where_there_is_no_responder(client: TestClient) -> None:
    r = client.post("/api/v1/respond/isolate", json={"container": "web"})
    assert r.status_code == 409 and r.json()["type"].endswith("no-responder"), r.text
    r = client.post("/api/v1/respond/isolate", json={"container": "web", "allow": ["10.0.0.1:x"]})
    assert r.status_code == 422 and "bad port" in r.text
    assert client.post("/api/v1/respond/explode", json={"container": "web"}).status_code == 422
