"""Ingestion endpoints: agent events, Falco alerts, the Kubernetes audit webhook; hostile bodies."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import SHARED_DATA, need_file

K8S_AUDIT_LOG = SHARED_DATA / "k8s" / "audit" / "demo.log"
NDJSON = {"Content-Type": "application/x-ndjson"}


def jsonl(*records: Any) -> bytes:
    return b"\n".join(r if isinstance(r, bytes) else orjson.dumps(r) for r in records) + b"\n"


# --- /ingest/events ----------------------------------------------------------------------------------


def test_events_jsonl_counts_and_reports_bad_lines(
    ingest_client: TestClient, shadow_read: dict[str, Any]
) -> None:
    body = jsonl(
        shadow_read,
        b'{"evt.type": "open", ',  # line 2: truncated
        [1, 2],  # line 3: not an object
        {"proc.name": "bash"},  # line 4: no evt.type
        {"evt.type": "execve", "evt.time": "2024-11-22T18:13:20.5Z", "proc.name": "sh"},  # line 5
        b"",  # line 6: blank, skipped
        {"evt.type": 7},  # line 7
        {"evt.type": "close", "evt.time": "last tuesday"},  # line 8
        b'{"evt.type": "close", "evt.time": 18446744073709551615}',  # line 9: beyond 2262
        {"evt.type": "close", "evt.time": "9999-12-31T00:00:00Z"},  # line 10
    )
    r = ingest_client.post("/api/v1/ingest/events", content=body, headers=NDJSON)
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["accepted"] == 2 and res["rejected"] == 7
    assert [e.split(":")[0] for e in res["errors"]] == [f"line {n}" for n in (2, 3, 4, 7, 8, 9, 10)]
    assert res["errors"][0].startswith("line 2: invalid JSON at column")
    assert res["errors"][2] == "line 4: missing 'evt.type'"

    items = ingest_client.get("/api/v1/events").json()["items"]
    assert len(items) == 2
    by_name = {e["data"]["proc.name"]: e for e in items}
    assert by_name["cat"]["data"]["fd.name"] == "/etc/shadow"
    assert by_name["cat"]["origin"] == "http:line 1"
    assert by_name["sh"]["data"]["evt.time"] == 1732299200500000000
    assert by_name["sh"]["time"] == "2024-11-22T18:13:20.500000000Z"


def test_events_all_bad_is_400_with_counts(ingest_client: TestClient, problem: Any) -> None:
    body = jsonl(b"not json", {"no": "type"})
    res = problem(ingest_client.post("/api/v1/ingest/events", content=body, headers=NDJSON), 400)
    assert res["accepted"] == 0 and res["rejected"] == 2
    assert res["errors"][0].startswith("line 1: invalid JSON")
    assert ingest_client.get("/api/v1/events").json()["items"] == []


def test_events_empty_body_is_400(ingest_client: TestClient, problem: Any) -> None:
    problem(ingest_client.post("/api/v1/ingest/events", content=b"\n\n", headers=NDJSON), 400)


def test_events_json_array(ingest_client: TestClient, shadow_read: dict[str, Any]) -> None:
    body = orjson.dumps([shadow_read, {"evt.type": "execve", "proc.name": "sh"}, "junk"])
    r = ingest_client.post(
        "/api/v1/ingest/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 200
    assert r.json()["accepted"] == 2 and r.json()["errors"] == ["item 3: expected an event object, got str"]
    # an event without evt.time gets the time it was received
    sh = ingest_client.get("/api/v1/events", params={"where": "proc.name:sh"}).json()["items"][0]
    assert isinstance(sh["data"]["evt.time"], int) and sh["time"] is not None


def test_events_single_pretty_object(ingest_client: TestClient) -> None:
    body = b'{\n  "evt.type": "execve",\n  "proc.name": "sh"\n}\n'
    r = ingest_client.post(
        "/api/v1/ingest/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 200 and r.json()["accepted"] == 1


def test_json_lines_labelled_as_json(ingest_client: TestClient, shadow_read: dict[str, Any]) -> None:
    body = jsonl(shadow_read, {"evt.type": "close"}, b"{broken")
    r = ingest_client.post(
        "/api/v1/ingest/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 200
    assert r.json()["accepted"] == 2 and r.json()["errors"][0].startswith("line 3: invalid JSON")


def test_invalid_json_array_says_where(ingest_client: TestClient, problem: Any) -> None:
    body = b'[{"evt.type": "open"},\n {"evt.type": }]'
    res = problem(
        ingest_client.post(
            "/api/v1/ingest/events", content=body, headers={"Content-Type": "application/json"}
        ),
        400,
    )
    assert res["line"] == 2 and res["column"] == 15
    assert "line 2, column 15" in res["detail"]


def test_events_gzip(ingest_client: TestClient, shadow_read: dict[str, Any]) -> None:
    body = gzip.compress(jsonl(*[dict(shadow_read, **{"evt.num": i}) for i in range(50)]))
    r = ingest_client.post(
        "/api/v1/ingest/events", content=body, headers={**NDJSON, "Content-Encoding": "gzip"}
    )
    assert r.status_code == 200 and r.json()["accepted"] == 50


def test_gzip_bomb_is_413(ingest_client: TestClient, problem: Any) -> None:
    # 64 KiB limit in the fixture; 10 MB of zeros compresses to ~10 KB
    body = gzip.compress(b"0" * 10_000_000)
    assert len(body) < 64 * 1024
    problem(
        ingest_client.post(
            "/api/v1/ingest/events", content=body, headers={**NDJSON, "Content-Encoding": "gzip"}
        ),
        413,
    )
    problem(
        ingest_client.post(
            "/api/v1/ingest/events", content=b"xx", headers={**NDJSON, "Content-Encoding": "br"}
        ),
        415,
    )
    problem(
        ingest_client.post(
            "/api/v1/ingest/events", content=b"xx", headers={**NDJSON, "Content-Encoding": "gzip"}
        ),
        400,
    )


@pytest.mark.parametrize(
    "path", ["/api/v1/ingest/events", "/api/v1/ingest/falco", "/api/v1/ingest/k8s-audit"]
)
@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_wrong_content_type_is_415(ingest_client: TestClient, path: str, ctype: str, problem: Any) -> None:
    res = problem(
        ingest_client.post(path, content=b'{"evt.type": "open"}', headers={"Content-Type": ctype}), 415
    )
    assert ctype in res["detail"]


@pytest.mark.parametrize(
    "path", ["/api/v1/ingest/events", "/api/v1/ingest/falco", "/api/v1/ingest/k8s-audit"]
)
def test_body_over_limit_is_413(ingest_client: TestClient, path: str, problem: Any) -> None:
    big = b"[" + b'{"evt.type": "open"},' * 5000 + b"{}]"  # > 64 KiB
    res = problem(ingest_client.post(path, content=big, headers={"Content-Type": "application/json"}), 413)
    assert "65536" in res["detail"]
    assert ingest_client.get("/api/v1/events").json()["items"] == []


def test_nothing_posted_to_read_endpoints(ingest_client: TestClient, problem: Any) -> None:
    problem(ingest_client.get("/api/v1/ingest/events"), 405)


# --- /ingest/falco -----------------------------------------------------------------------------------


def test_falco_single_alert_as_falcosidekick_sends(
    ingest_client: TestClient, falco_alert: dict[str, Any]
) -> None:
    r = ingest_client.post(
        "/api/v1/ingest/falco",
        content=orjson.dumps(falco_alert),
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "Falcosidekick"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1
    page = ingest_client.get("/api/v1/alerts").json()
    assert page["total"] == 1  # forwarded once, not also re-stored
    got = page["items"][0]
    for k in ("rule", "priority", "output", "source", "tags", "hostname", "time"):
        assert got[k] == falco_alert[k], k
    assert got["output_fields"]["fd.name"] == "/etc/shadow"
    # the alert's fields were also kept as an event
    ev = ingest_client.get("/api/v1/events", params={"where": "fd.name:/etc/shadow"}).json()["items"]
    assert len(ev) == 1 and ev[0]["origin"] == "http:falco" and ev[0]["data"]["proc.name"] == "cat"
    assert got["stockade"]["event_ids"] == [ev[0]["id"]]
    assert ev[0]["meta"]["falco_alert"]["rule"] == falco_alert["rule"]


def test_falco_array_and_jsonl(ingest_client: TestClient, falco_alert: dict[str, Any]) -> None:
    alerts = [dict(falco_alert, rule=f"R{i}") for i in range(3)]
    r = ingest_client.post("/api/v1/ingest/falco", content=orjson.dumps(alerts))
    assert r.status_code == 200 and r.json()["accepted"] == 3
    r = ingest_client.post("/api/v1/ingest/falco", content=jsonl(*alerts), headers=NDJSON)
    assert r.status_code == 200 and r.json()["accepted"] == 3
    assert ingest_client.get("/api/v1/alerts", params={"rule": "R1"}).json()["total"] == 2


def test_falco_alert_time_out_of_range(
    ingest_client: TestClient, falco_alert: dict[str, Any], problem: Any
) -> None:
    far = dict(falco_alert, time="9999-12-31T23:59:59Z", output_fields={"proc.name": "x"})
    res = problem(ingest_client.post("/api/v1/ingest/falco", content=orjson.dumps(far)), 400)
    assert res["errors"] == ["alert 1: time out of range"]
    r = ingest_client.post("/api/v1/ingest/falco", content=orjson.dumps([far, falco_alert]))
    assert r.status_code == 200 and r.json()["accepted"] == 1 and r.json()["rejected"] == 1


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2", b'"a string"', b"{}"])
def test_falco_garbage_is_400(ingest_client: TestClient, body: bytes, problem: Any) -> None:
    problem(
        ingest_client.post(
            "/api/v1/ingest/falco", content=body, headers={"Content-Type": "application/json"}
        ),
        400,
    )
    assert ingest_client.get("/api/v1/alerts").json()["total"] == 0


# --- /ingest/k8s-audit -------------------------------------------------------------------------------


def _event_list() -> dict[str, Any]:
    need_file(K8S_AUDIT_LOG)
    items = [orjson.loads(line) for line in K8S_AUDIT_LOG.read_bytes().splitlines() if line.strip()]
    return {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items}


EXEC_EVENT: dict[str, Any] = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "Request",
    "auditID": "5b1f6a8e-0c2e-4f43-9a0e-2a7c9f3c1d10",
    "stage": "ResponseStarted",
    "requestURI": "/api/v1/namespaces/default/pods/web-0/exec?command=sh&container=web&stdin=true&tty=true",
    "verb": "create",
    "user": {"username": "mallory", "groups": ["system:authenticated"]},
    "sourceIPs": ["10.0.0.7"],
    "objectRef": {
        "resource": "pods",
        "namespace": "default",
        "name": "web-0",
        "apiVersion": "v1",
        "subresource": "exec",
    },
    "requestReceivedTimestamp": "2024-11-22T18:13:20.000000Z",
    "stageTimestamp": "2024-11-22T18:13:20.050000Z",
}


def test_k8s_audit_webhook(ingest_client: TestClient, runtime: Any) -> None:
    event_list = _event_list()
    n = len(event_list["items"])
    event_list["items"].append(EXEC_EVENT)
    event_list["items"].append({"kind": "Event", "verb": "get"})  # no auditID: not usable
    r = ingest_client.post(
        "/api/v1/ingest/k8s-audit",
        content=orjson.dumps(event_list),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["accepted"] == n + 1 and res["rejected"] == 1
    assert len(res["errors"]) == 1 and "auditID" in res["errors"][0]
    stored = ingest_client.get("/api/v1/events", params={"source": "k8s_audit", "limit": 1000}).json()[
        "items"
    ]
    assert len(stored) == n + 1
    assert {e["data"]["auditID"] for e in stored} == {i["auditID"] for i in event_list["items"][:-1]}
    assert all(e["origin"] == "http:k8s-audit" for e in stored)
    assert any(r["source"] == "k8s_audit" for r in runtime.rules_info())
    # demo.log is reads by an allowed user: the exec into a pod is the one alert
    assert res["alerts"] == 1
    page = ingest_client.get("/api/v1/alerts", params={"source": "k8s_audit"}).json()
    assert [a["rule"] for a in page["items"]] == ["Attach/Exec Pod"]
    assert "user=mallory" in page["items"][0]["output"] and "pod=web-0" in page["items"][0]["output"]


def test_k8s_audit_empty_list_is_fine(ingest_client: TestClient) -> None:
    body = orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": []})
    r = ingest_client.post("/api/v1/ingest/k8s-audit", content=body)
    assert r.status_code == 200 and r.json()["accepted"] == 0


@pytest.mark.parametrize(
    "body", [b"{oops", b"[]" * 3, b'{"kind": "EventList", "items": [{"kind": "Event"}]}']
)
def test_k8s_audit_garbage_is_400(ingest_client: TestClient, body: bytes, problem: Any) -> None:
    problem(
        ingest_client.post(
            "/api/v1/ingest/k8s-audit", content=body, headers={"Content-Type": "application/json"}
        ),
        400,
    )


# --- with the real engine ----------------------------------------------------------------------------


def test_agent_event_produces_stored_alert(client: TestClient, shadow_read: dict[str, Any]) -> None:
    r = client.post(
        "/api/v1/ingest/events", content=jsonl(shadow_read, {"evt.type": "close"}), headers=NDJSON
    )
    assert r.status_code == 200
    assert r.json() == {"accepted": 2, "rejected": 0, "errors": [], "alerts": 1}
    page = client.get("/api/v1/alerts", params={"rule": "Read sensitive file untrusted"}).json()
    assert page["total"] == 1
    alert = page["items"][0]
    assert alert["priority"] == "Warning" and "/etc/shadow" in alert["output"]
    ev_id = alert["stockade"]["event_ids"][0]
    ev = client.get(f"/api/v1/events/{ev_id}").json()
    assert ev["data"]["proc.cmdline"] == "cat /etc/shadow"


def test_rules_and_status(client: TestClient, runtime: Any) -> None:
    all_rules = client.get("/api/v1/rules").json()
    assert all_rules["total"] == len(runtime.rules_info()) > 20
    names = {r["name"] for r in all_rules["items"]}
    assert "Read sensitive file untrusted" in names
    syscall = client.get("/api/v1/rules", params={"source": "syscall"}).json()["items"]
    assert syscall and all(r["source"] == "syscall" for r in syscall)
    k8s = client.get("/api/v1/rules", params={"source": "k8s_audit"}).json()["items"]
    assert all(r["source"] == "k8s_audit" for r in k8s)
    assert len(syscall) + len(k8s) == all_rules["total"]
    enabled = client.get("/api/v1/rules", params={"enabled": "true"}).json()["total"]
    disabled = client.get("/api/v1/rules", params={"enabled": "false"}).json()["total"]
    assert enabled + disabled == all_rules["total"] and enabled > 0
    tagged = client.get("/api/v1/rules", params={"tag": "filesystem"}).json()["items"]
    assert tagged and all("filesystem" in r["tags"] for r in tagged)
    assert client.get("/api/v1/rules", params={"enabled": "maybe"}).status_code == 422

    client.post("/api/v1/ingest/events", content=jsonl({"evt.type": "close"}), headers=NDJSON)
    st = client.get("/api/v1/status").json()
    assert st["runtime"]["hostname"] == "api-test" and st["runtime"]["events"]["total"] == 1
    assert st["store"]["events"] == 1 and st["store"]["alerts"] == 0


def test_falcosidekick_uuid_makes_retries_idempotent(
    ingest_client: TestClient, falco_alert: dict[str, Any]
) -> None:
    falco_alert["uuid"] = "0b9d2a5e-6a5f-4c61-9a3e-1f0f7c2b8d11"
    for _ in range(2):
        r = ingest_client.post("/api/v1/ingest/falco", content=orjson.dumps(falco_alert))
        assert r.status_code == 200
    page = ingest_client.get("/api/v1/alerts").json()
    assert page["total"] == 1 and page["items"][0]["stockade"]["id"] == falco_alert["uuid"]
    assert ingest_client.get(f"/api/v1/alerts/{falco_alert['uuid']}").status_code == 200


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    records=st.lists(
        st.dictionaries(
            st.sampled_from(["evt.type", "evt.time", "proc.name", "fd.name", "container.id", "x.y[1]", ""])
            | st.text(),
            _json,
            max_size=6,
        )
        | _json,
        max_size=5,
    )
)
def test_events_never_500(ingest_client: TestClient, records: list[Any]) -> None:
    """Whatever JSON an agent sends, the answer is 200 or a 400 problem, never a crash."""
    body = b"\n".join(orjson.dumps(r) for r in records)
    r = ingest_client.post("/api/v1/ingest/events", content=body, headers=NDJSON)
    assert r.status_code in (200, 400), r.text
    res = r.json()
    assert res["accepted"] + res["rejected"] == len(records)
    r = ingest_client.post(
        "/api/v1/ingest/events", content=orjson.dumps(records), headers={"Content-Type": "application/json"}
    )
    assert r.status_code in (200, 400), r.text
