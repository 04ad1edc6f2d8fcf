"""Read endpoints: health, alerts, events, status, OpenAPI, problem documents (no engine needed)."""

from __future__ import annotations

import time
import uuid
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient

from stockade.api.app import create_app
from stockade.api.interface import RuntimeView
from stockade.model.alert import Alert
from stockade.model.event import Event
from stockade.model.timeutil import format_time_ns

NOW = time.time_ns()
MIN = 60 * 1_000_000_000
PRIOS = ["Critical", "Warning", "Notice", "Informational", "Error"]


def make_alerts(n: int, now: int = NOW) -> list[Alert]:
    """Alert i at `now` - i minutes (and one 3 days old)."""
    out = []
    for i in range(n):
        container = "c1" if i % 3 == 0 else "c2"
        out.append(
            Alert(
                time_ns=now - i * MIN,
                rule="Rule A" if i % 2 == 0 else "Rule B",
                priority=PRIOS[i % len(PRIOS)],
                output=f"alert number {i} in container {container} marker{i}x",
                output_fields={"container.id": container, "proc.name": "bash" if i % 2 else "cat"},
                source="syscall",
                tags=["t"],
                hostname="h",
            )
        )
    # one old alert, from another source
    out.append(
        Alert(
            time_ns=now - 3 * 86400 * 10**9,
            rule="K8s Rule",
            priority="Notice",
            output="old k8s alert",
            output_fields={},
            source="k8s_audit",
            tags=[],
            hostname="h",
        )
    )
    return out


@pytest.fixture
def seeded(store: Any) -> list[Alert]:
    # relative to this test's time: "since 10m" is measured from the request, moments later
    alerts = make_alerts(25, time.time_ns())
    store.add_alerts(alerts)
    return alerts


def test_healthz(bare_client: TestClient) -> None:
    r = bare_client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_healthz_reports_unreachable_store(store: Any, problem: Any) -> None:
    """A store that cannot answer (here: closed) makes /healthz, and reads, a 503 problem."""
    with TestClient(create_app(store, None)) as c:
        assert c.get("/healthz").status_code == 200
        store.close()
        body = problem(c.get("/healthz"), 503)
        assert "unreachable" in body["detail"]
        problem(c.get("/api/v1/alerts"), 503)


@pytest.mark.usefixtures("seeded")
def test_alerts_pagination_newest_first(bare_client: TestClient) -> None:
    r = bare_client.get("/api/v1/alerts", params={"limit": 10})
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 26 and page["limit"] == 10 and page["offset"] == 0
    times = [a["time"] for a in page["items"]]
    assert times == sorted(times, reverse=True)
    assert page["items"][0]["output"].startswith("alert number 0 ")
    seen = [a["stockade"]["id"] for a in page["items"]]
    for offset in (10, 20):
        more = bare_client.get("/api/v1/alerts", params={"limit": 10, "offset": offset}).json()
        seen += [a["stockade"]["id"] for a in more["items"]]
    assert len(seen) == 26 and len(set(seen)) == 26
    last = bare_client.get("/api/v1/alerts", params={"limit": 10, "offset": 20}).json()
    assert len(last["items"]) == 6 and last["total"] == 26


def test_alert_items_are_falco_json(bare_client: TestClient, seeded: list[Alert]) -> None:
    item = bare_client.get("/api/v1/alerts", params={"limit": 1}).json()["items"][0]
    assert set(item) >= {"time", "rule", "priority", "output", "output_fields", "source", "tags", "hostname"}
    assert item["time"] == format_time_ns(seeded[0].time_ns)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"rule": "Rule A"}, 13),
        ({"rule": "Nope"}, 0),
        ({"source": "k8s_audit"}, 1),
        ({"container": "c1"}, 9),
        ({"q": "marker7x"}, 1),
        ({"priority": "critical"}, 5),  # Critical only (nothing more severe seeded)
        ({"priority": "ERROR"}, 10),  # Critical + Error
        ({"priority": "warning"}, 15),
        ({"priority": "info"}, 26),
        ({"since": "1h"}, 25),
        ({"since": "10m"}, 10),  # i = 0..9: the request's "now" is later than NOW
        ({"until": "1d"}, 1),
        ({"since": -(4 * MIN + 1)}, 5),  # an absolute time: the newest alert's, less 4 min 1 ns
        ({"rule": "Rule B", "container": "c2", "since": "1h"}, 8),
    ],
)
def test_alert_filters(
    bare_client: TestClient, seeded: list[Alert], params: dict[str, Any], expected: int
) -> None:
    params = {
        k: format_time_ns(seeded[0].time_ns + v) if isinstance(v, int) else v for k, v in params.items()
    }
    r = bare_client.get("/api/v1/alerts", params={**params, "limit": 100})
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["total"] == expected
    assert len(page["items"]) == page["total"]


def test_get_alert_and_404(bare_client: TestClient, seeded: list[Alert], problem: Any) -> None:
    a = seeded[3]
    r = bare_client.get(f"/api/v1/alerts/{a.id}")
    assert r.status_code == 200
    assert r.json()["stockade"]["id"] == a.id and r.json()["rule"] == a.rule
    body = problem(bare_client.get("/api/v1/alerts/does-not-exist"), 404)
    assert body["instance"] == "/api/v1/alerts/does-not-exist"


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"priority": "loud"}, "priority"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2024-13-45T00:00:00Z"}, "until"),
        ({"limit": "0"}, "limit"),
        ({"limit": "100000"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"rules": "typo"}, "rules"),
        ({"since": "99999999999999999999999999"}, "since"),
        ({"since": "9999999999d"}, "since"),
        ({"until": "-5"}, "until"),
        ({"offset": "99999999999999999999999999"}, "offset"),
    ],
)
def test_alert_bad_params_are_422_problems(
    bare_client: TestClient, params: dict[str, str], where: str, problem: Any
) -> None:
    body = problem(bare_client.get("/api/v1/alerts", params=params), 422)
    assert where in body["detail"]
    assert body["errors"] and where in body["errors"][0]["where"]


def _event(i: int, name: str, container: str) -> Event:
    return Event(
        "syscall",
        {
            "evt.time": NOW - i * MIN,
            "evt.type": "execve",
            "evt.dir": "<",
            "proc.name": name,
            "container.id": container,
        },
        origin=f"test:{i}",
        id=uuid.uuid4().hex,
    )


@pytest.fixture
def seeded_events(store: Any) -> list[Event]:
    evs = [_event(i, "bash" if i % 2 else "cat", "c1" if i < 6 else "c2") for i in range(12)]
    store.add_events(evs)
    return evs


@pytest.mark.usefixtures("seeded_events")
def test_events_query_and_filters(bare_client: TestClient) -> None:
    page = bare_client.get("/api/v1/events").json()
    assert len(page["items"]) == 12 and page["has_more"] is False
    first = page["items"][0]
    assert set(first) >= {"id", "source", "time", "origin", "data"}
    assert first["source"] == "syscall" and first["data"]["evt.type"] == "execve"
    assert first["time"] == format_time_ns(NOW)

    bash = bare_client.get("/api/v1/events", params={"where": "proc.name:bash"}).json()["items"]
    assert len(bash) == 6 and all(e["data"]["proc.name"] == "bash" for e in bash)
    dotted = bare_client.get("/api/v1/events", params={"proc.name": "bash", "container.id": "c2"}).json()
    assert {e["data"]["container.id"] for e in dotted["items"]} == {"c2"} and len(dotted["items"]) == 3
    both = bare_client.get(
        "/api/v1/events", params=[("where", "proc.name=cat"), ("where", "container.id:c1")]
    ).json()["items"]
    assert len(both) == 3

    recent = bare_client.get("/api/v1/events", params={"since": format_time_ns(NOW - 2 * MIN - 1)}).json()
    assert len(recent["items"]) == 3
    assert bare_client.get("/api/v1/events", params={"source": "k8s_audit"}).json()["items"] == []


def test_events_pagination(bare_client: TestClient, seeded_events: list[Event]) -> None:
    p1 = bare_client.get("/api/v1/events", params={"limit": 5}).json()
    p3 = bare_client.get("/api/v1/events", params={"limit": 5, "offset": 10}).json()
    assert p1["has_more"] is True and len(p1["items"]) == 5
    assert p3["has_more"] is False and len(p3["items"]) == 2
    assert p1["items"][0]["id"] == seeded_events[0].id
    assert p3["items"][-1]["id"] == seeded_events[-1].id


def test_get_event_and_404(bare_client: TestClient, seeded_events: list[Event], problem: Any) -> None:
    ev = seeded_events[4]
    r = bare_client.get(f"/api/v1/events/{ev.id}")
    assert r.status_code == 200
    assert r.json()["data"] == ev.data and r.json()["origin"] == "test:4"
    problem(bare_client.get("/api/v1/events/nope"), 404)


@pytest.mark.parametrize(
    "params",
    [
        {"where": "no-separator"},
        {"where": ["proc.name:a", "proc.name:b"]},
        {"limit": "-3"},
        {"nonsense": "1"},
    ],
)
def test_events_bad_params(bare_client: TestClient, params: dict[str, Any], problem: Any) -> None:
    problem(bare_client.get("/api/v1/events", params=params), 422)


@pytest.mark.usefixtures("seeded")
def test_status_and_rules_without_runtime(bare_client: TestClient, problem: Any) -> None:
    st = bare_client.get("/api/v1/status").json()
    assert st["runtime"] is None and isinstance(st["store"], dict)
    body = problem(bare_client.get("/api/v1/rules"), 503)
    assert "runtime" in body["detail"]
    problem(bare_client.post("/api/v1/ingest/events", content=b'{"evt.type": "open"}'), 503)


def test_unknown_path_and_method_are_problems(bare_client: TestClient, problem: Any) -> None:
    problem(bare_client.get("/api/v1/nothing-here"), 404)
    problem(bare_client.delete("/api/v1/alerts"), 405)


def test_openapi_lists_every_path(bare_client: TestClient) -> None:
    spec = bare_client.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert paths >= {
        "/healthz",
        "/api/v1/alerts",
        "/api/v1/alerts/{alert_id}",
        "/api/v1/events",
        "/api/v1/events/{event_id}",
        "/api/v1/rules",
        "/api/v1/status",
        "/api/v1/ingest/falco",
        "/api/v1/ingest/k8s-audit",
        "/api/v1/ingest/events",
    }
    falco = spec["paths"]["/api/v1/ingest/falco"]["post"]
    assert "application/json" in falco["requestBody"]["content"]
    assert set(falco["responses"]["415"]["content"]) == {"application/problem+json"}
    alerts = spec["paths"]["/api/v1/alerts"]["get"]
    assert set(alerts["responses"]["422"]["content"]) == {"application/problem+json"}
    assert {p["name"] for p in alerts["parameters"]} >= {"since", "until", "rule", "priority", "q", "limit"}
    assert "HTTPValidationError" not in str(spec)
    assert bare_client.get("/docs").status_code == 200


class _Explodes:
    """A runtime whose status() fails unexpectedly (a bug), to check the 500 path: /status asks no
    more of it."""

    def status(self) -> dict[str, Any]:
        raise RuntimeError("secret internal detail /etc/stockade/token")


def test_unexpected_error_is_generic_500(store: Any, problem: Any, caplog: pytest.LogCaptureFixture) -> None:
    with TestClient(create_app(store, cast(RuntimeView, _Explodes())), raise_server_exceptions=False) as c:
        r = c.get("/api/v1/status")
    body = problem(r, 500)
    assert "secret" not in r.text and "RuntimeError" not in r.text
    assert "internal error" in body["detail"]
    assert any("secret internal detail" in str(rec.exc_info) for rec in caplog.records if rec.exc_info)


class TestAuth:
    TOKEN = "s3cr3t-token-value"

    @pytest.fixture
    def c(self, store: Any) -> Any:
        with TestClient(create_app(store, None, token=self.TOKEN)) as c:
            yield c

    def test_healthz_stays_open(self, c: TestClient) -> None:
        assert c.get("/healthz").status_code == 200

    @pytest.mark.parametrize(
        "headers",
        [
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": "Bearer s3cr3t-token-valu"},
            {"Authorization": "Basic czNjcjN0LXRva2VuLXZhbHVl"},
            {"Authorization": "s3cr3t-token-value"},
        ],
    )
    def test_api_requires_token(self, c: TestClient, headers: dict[str, str], problem: Any) -> None:
        for path in ("/api/v1/alerts", "/api/v1/events", "/api/v1/status", "/api/v1/alerts/x"):
            r = c.get(path, headers=headers)
            problem(r, 401)
            assert r.headers["www-authenticate"].startswith("Bearer")
        problem(c.post("/api/v1/ingest/events", content=b"{}", headers=headers), 401)

    def test_right_token_passes(self, c: TestClient) -> None:
        r = c.get("/api/v1/alerts", headers={"Authorization": f"Bearer {self.TOKEN}"})
        assert r.status_code == 200 and r.json()["total"] == 0
        r = c.get("/api/v1/alerts", headers={"authorization": f"bearer {self.TOKEN}"})
        assert r.status_code == 200

    def test_access_token_query_only_on_ingest(self, c: TestClient, problem: Any) -> None:
        """Falco's http_output cannot set headers: ingestion takes ?access_token=, reads do not."""
        body = b'{"evt.type": "open"}'
        # no runtime attached: past authentication the answer is 503, not 401
        problem(c.post("/api/v1/ingest/events", params={"access_token": self.TOKEN}, content=body), 503)
        problem(c.post("/api/v1/ingest/events", params={"access_token": "nope"}, content=body), 401)
        problem(c.get("/api/v1/alerts", params={"access_token": self.TOKEN}), 401)
