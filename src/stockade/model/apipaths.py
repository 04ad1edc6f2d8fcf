"""The manager API's paths: the one place the server's routes and its clients take them from.

The routes (``stockade.api.routes_*``) are declared relative to :data:`API_PREFIX`; clients (the
CLI's commands that talk to a running instance, the agent's shipper) ask for
``api_path(route, **params)``. It lives in the model, the lowest layer, so that the runtime (the
shipper) and the CLI can use it without importing the web framework.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import quote

#: every endpoint but /healthz and /metrics is under this prefix (and behind the bearer token)
API_PREFIX: Final = "/api/v1"

#: liveness and storage check, never behind the token
HEALTHZ: Final = "/healthz"
#: Prometheus metrics (behind the token like the API)
METRICS: Final = "/metrics"

# -- under API_PREFIX ----------------------------------------------------------------------------
ALERTS: Final = "/alerts"
ALERT: Final = "/alerts/{alert_id}"
EVENTS: Final = "/events"
EVENT: Final = "/events/{event_id}"
RULES: Final = "/rules"
RULES_RELOAD: Final = "/rules/reload"
STATUS: Final = "/status"
MUTES: Final = "/mutes"
MUTE: Final = "/mutes/{mute_id}"
#: zero trust: workloads, profiles, modes, policies, enforcement (ids may hold "/": quoted as %2F)
WORKLOADS: Final = "/workloads"
WORKLOAD: Final = "/workloads/{workload_id}"
PROFILE: Final = "/profiles/{workload_id}"
MODE: Final = "/modes/{workload_id}"
POLICIES: Final = "/policies"
POLICY: Final = "/policies/{workload_id}"
POLICY_GENERATE: Final = "/policies/generate/{workload_id}"
ENFORCEMENT: Final = "/enforcement"
#: resources: the latest sample of every running container, one container's history
RESOURCES: Final = "/resources"
RESOURCE: Final = "/resources/{container_id}"
#: a workload's learned resource baseline (DELETE: learn it again)
RESOURCE_BASELINE: Final = "/resources/baselines/{workload_id}"
#: certificates found on the node's disks and served on its ports; a running container's drift
CERTS: Final = "/certs"
CONTAINER_DRIFT: Final = "/containers/{container_id}/drift"
#: incidents: ranked list, one incident with its timeline (PATCH: status, owner, note), its report
INCIDENTS: Final = "/incidents"
INCIDENT: Final = "/incidents/{incident_id}"
INCIDENT_REPORT: Final = "/incidents/{incident_id}/report"
#: response actions on a container (isolate, unisolate, freeze, thaw, capture, kill), pending
#: playbook actions approved or rejected, and the response status (playbooks, capabilities)
RESPOND: Final = "/respond/{action}"
RESPONSE: Final = "/response"
INCIDENT_ACTION: Final = "/incidents/{incident_id}/actions/{action_id}/{decision}"
#: the audit log: its records (newest first), a verification, a checkpoint signed now (POST)
AUDIT: Final = "/audit"
AUDIT_VERIFY: Final = "/audit/verify"
AUDIT_CHECKPOINTS: Final = "/audit/checkpoints"
#: evidence bundles: capture (POST) and list; one bundle; its verification
EVIDENCE: Final = "/evidence"
EVIDENCE_BUNDLE: Final = "/evidence/{bundle_id}"
EVIDENCE_VERIFY: Final = "/evidence/{bundle_id}/verify"
#: the live inventory: a summary, hosts, containers, images, listening ports, the network graph
INVENTORY: Final = "/inventory"
INVENTORY_HOSTS: Final = "/inventory/hosts"
INVENTORY_CONTAINERS: Final = "/inventory/containers"
INVENTORY_IMAGES: Final = "/inventory/images"
INVENTORY_PORTS: Final = "/inventory/ports"
INVENTORY_GRAPH: Final = "/inventory/graph"
#: ingestion: Falco, the Kubernetes audit webhook, agents (events and alerts)
INGEST: Final = "/ingest"
INGEST_FALCO: Final = INGEST + "/falco"
INGEST_K8S_AUDIT: Final = INGEST + "/k8s-audit"
INGEST_EVENTS: Final = INGEST + "/events"
INGEST_ALERTS: Final = INGEST + "/alerts"


#: runtime-aware vulnerabilities: ranked findings of what runs here; the emergency question
VULNERABILITIES: Final = "/vulnerabilities"
INVENTORY_FIND: Final = "/inventory/find"


def api_path(route: str, **params: str) -> str:
    """The path a client requests for `route`: the prefix, and its ``{placeholders}`` filled with
    `params` (each quoted as one path segment)."""
    return API_PREFIX + route.format_map({k: quote(v, safe="") for k, v in params.items()})
