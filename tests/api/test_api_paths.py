"""The API's paths have one home (stockade.model.apipaths), and a route's signature is the one list
of the query parameters it takes."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from stockade.api.app import create_app
from stockade.model import apipaths

#: the paths of the manager API as documented (docs/api.md): a contract, spelled out here on purpose
DOCUMENTED = {
    "/healthz",
    "/metrics",
    "/api/v1/alerts",
    "/api/v1/alerts/{alert_id}",
    "/api/v1/events",
    "/api/v1/events/{event_id}",
    "/api/v1/rules",
    "/api/v1/rules/reload",
    "/api/v1/status",
    "/api/v1/mutes",
    "/api/v1/mutes/{mute_id}",
    "/api/v1/ingest/falco",
    "/api/v1/ingest/k8s-audit",
    "/api/v1/ingest/events",
    "/api/v1/ingest/alerts",
    "/api/v1/workloads",
    "/api/v1/workloads/{workload_id}",
    "/api/v1/profiles/{workload_id}",
    "/api/v1/modes/{workload_id}",
    "/api/v1/policies",
    "/api/v1/policies/{workload_id}",
    "/api/v1/policies/generate/{workload_id}",
    "/api/v1/enforcement",
    "/api/v1/resources",
    "/api/v1/resources/{container_id}",
    "/api/v1/resources/baselines/{workload_id}",
    "/api/v1/incidents",
    "/api/v1/incidents/{incident_id}",
    "/api/v1/incidents/{incident_id}/report",
    "/api/v1/incidents/{incident_id}/actions/{action_id}/{decision}",
    "/api/v1/respond/{action}",
    "/api/v1/response",
    "/api/v1/audit",
    "/api/v1/audit/verify",
    "/api/v1/audit/checkpoints",
    "/api/v1/evidence",
    "/api/v1/evidence/{bundle_id}",
    "/api/v1/evidence/{bundle_id}/verify",
    "/api/v1/certs",
    "/api/v1/containers/{container_id}/drift",
    "/api/v1/inventory",
    "/api/v1/inventory/hosts",
    "/api/v1/inventory/containers",
    "/api/v1/inventory/images",
    "/api/v1/inventory/ports",
    "/api/v1/inventory/graph",
    "/api/v1/vulnerabilities",
    "/api/v1/inventory/find",
}


def _routes(store: Any) -> set[str]:
    """The paths the app serves, as its OpenAPI document lists them."""
    return set(create_app(store, None).openapi()["paths"])


def test_the_app_serves_the_documented_paths(store: Any) -> None:
    assert _routes(store) == DOCUMENTED


def test_every_path_is_one_of_apipaths(store: Any) -> None:
    """A route declared with a literal path (not from apipaths) would be missing here."""
    names = [n for n in dir(apipaths) if n.isupper() and n not in ("API_PREFIX", "INGEST")]
    outside = {apipaths.HEALTHZ, apipaths.METRICS}
    declared = {getattr(apipaths, n) for n in names}
    from_module = {p if p in outside else apipaths.API_PREFIX + p for p in declared}
    assert from_module == _routes(store)


@pytest.mark.parametrize(
    ("route", "params", "expected"),
    [
        (apipaths.STATUS, {}, "/api/v1/status"),
        (apipaths.MUTE, {"mute_id": "5f0c2a9d"}, "/api/v1/mutes/5f0c2a9d"),
        # an id is one path segment, whatever it holds
        (apipaths.MUTE, {"mute_id": "a/../b c"}, "/api/v1/mutes/a%2F..%2Fb%20c"),
        (apipaths.ALERT, {"alert_id": "x?y#z"}, "/api/v1/alerts/x%3Fy%23z"),
    ],
)
def test_api_path_fills_and_quotes_placeholders(route: str, params: dict[str, str], expected: str) -> None:
    assert apipaths.api_path(route, **params) == expected


@pytest.mark.parametrize(
    ("path", "known"),
    [
        ("/api/v1/alerts", "container, limit, offset, priority, q, rule, since, source, until"),
        ("/api/v1/events", "limit, offset, since, source, until, where"),
    ],
)
def test_an_undeclared_query_parameter_is_refused_naming_the_declared_ones(
    bare_client: TestClient, problem: Any, path: str, known: str
) -> None:
    body = problem(bare_client.get(path, params={"limt": "5"}), 422)
    assert body["detail"] == f"query parameter 'limt': unknown query parameter; known: {known} (got '5')"


def test_the_rules_and_mutes_parameters_come_from_their_signatures(client: TestClient, problem: Any) -> None:
    body = problem(client.get("/api/v1/rules", params={"tags": "x"}), 422)
    assert (
        body["detail"]
        == "query parameter 'tags': unknown query parameter; known: enabled, source, tag (got 'x')"
    )
    body = problem(client.get("/api/v1/mutes", params={"al": "true"}), 422)
    assert body["detail"] == "query parameter 'al': unknown query parameter; known: all (got 'true')"
    assert (
        client.get("/api/v1/rules", params={"tag": "mitre_execution", "enabled": "true"}).status_code == 200
    )


def test_dotted_query_parameters_are_field_filters_on_events(bare_client: TestClient) -> None:
    r = bare_client.get("/api/v1/events", params={"proc.name": "bash", "proc.aname[2]": "sshd"})
    assert r.status_code == 200, r.text
    assert r.json()["items"] == []
