"""The NetworkPolicy export: the golden file, the Kubernetes API's validation rules, the mappings.

``k8s_errors`` checks what the API server's validation of a networking.k8s.io/v1 NetworkPolicy
checks (ValidateNetworkPolicy): ports 1-65535 (or a port name), ``endPort`` only with a numeric
``port`` and not below it, protocols TCP/UDP/SCTP, a peer with either an ``ipBlock`` or selectors,
a valid ``cidr`` whose ``except`` entries are valid CIDRs strictly inside it, label keys and values
of the allowed shape, ``policyTypes`` among Ingress and Egress. (checkov has no check of the
NetworkPolicy itself; benchmarks/export_checkov.py runs its pod-to-policy check on the export.)
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from stockade.policy.export import ExportError, ExportResult, export
from stockade.policy.model import WorkloadPolicy

DATA = Path(__file__).parent / "data" / "export"

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def policy(**spec: Any) -> WorkloadPolicy:
    spec.setdefault("workload", "k8s/shop/deployment/web")
    return WorkloadPolicy.model_validate(
        {
            "apiVersion": "stockade.dev/v1alpha1",
            "kind": "WorkloadPolicy",
            "metadata": {"name": "p"},
            "spec": spec,
        }
    )


# -- the API server's rules ------------------------------------------------------------------------
def _label_errors(labels: dict[str, Any], where: str) -> list[str]:
    errors = []
    for k, v in labels.items():
        prefix, _, name = str(k).rpartition("/")
        if (
            (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)))
            or len(name) > 63
            or not _LABEL_NAME.match(name)
        ):
            errors.append(f"{where}: bad label key {k!r}")
        if not isinstance(v, str) or len(v) > 63 or not _LABEL_VALUE.match(v):
            errors.append(f"{where}: bad label value {v!r}")
    return errors


def _selector_errors(sel: Any, where: str) -> list[str]:
    if not isinstance(sel, dict) or set(sel) - {"matchLabels", "matchExpressions"}:
        return [f"{where}: not a label selector"]
    return _label_errors(sel.get("matchLabels", {}), where)


def _port_errors(port: dict[str, Any], where: str) -> list[str]:
    errors = []
    if set(port) - {"protocol", "port", "endPort"}:
        errors.append(f"{where}: unknown field")
    if port.get("protocol", "TCP") not in ("TCP", "UDP", "SCTP"):
        errors.append(f"{where}: protocol {port.get('protocol')!r}")
    p, end = port.get("port"), port.get("endPort")
    if isinstance(p, int) and not isinstance(p, bool):
        if not 1 <= p <= 65535:
            errors.append(f"{where}: port {p} not 1-65535")
    elif p is not None and not (isinstance(p, str) and len(p) <= 15 and _PORT_NAME.match(p)):
        errors.append(f"{where}: port {p!r}")
    if end is not None and (not isinstance(p, int) or not isinstance(end, int) or not p <= end <= 65535):
        errors.append(f"{where}: endPort {end!r} with port {p!r}")
    return errors


def _ip_block_errors(block: Any, where: str) -> list[str]:
    try:
        cidr = ipaddress.ip_network(block["cidr"], strict=False)
    except (KeyError, TypeError, ValueError):
        return [f"{where}: cidr {block.get('cidr')!r}"]
    errors = []
    for e in block.get("except", []):
        try:
            net = ipaddress.ip_network(e, strict=False)
        except ValueError:
            errors.append(f"{where}: except {e!r}")
            continue
        if net.version != cidr.version or net == cidr or not net.subnet_of(cidr):  # type: ignore[arg-type]
            errors.append(f"{where}: except {e} not strictly inside {cidr}")
    return errors


def _peer_errors(peer: Any, where: str) -> list[str]:
    if not isinstance(peer, dict) or not peer or set(peer) - {"podSelector", "namespaceSelector", "ipBlock"}:
        return [f"{where}: bad peer {peer!r}"]
    if "ipBlock" in peer:
        if len(peer) > 1:
            return [f"{where}: ipBlock with selectors"]
        return _ip_block_errors(peer["ipBlock"], where)
    return [
        e
        for k in ("podSelector", "namespaceSelector")
        if k in peer
        for e in _selector_errors(peer[k], f"{where}/{k}")
    ]


def k8s_errors(doc: dict[str, Any]) -> list[str]:
    """What the API server would reject in NetworkPolicy `doc` (module docstring)."""
    errors = []
    if doc.get("apiVersion") != "networking.k8s.io/v1" or doc.get("kind") != "NetworkPolicy":
        errors.append("not a networking.k8s.io/v1 NetworkPolicy")
    meta = doc.get("metadata", {})
    if not _DNS_SUBDOMAIN.match(str(meta.get("name", ""))) or not _DNS_SUBDOMAIN.match(
        str(meta.get("namespace", ""))
    ):
        errors.append("metadata: name and namespace must be DNS names")
    errors += _label_errors(meta.get("labels", {}), "metadata.labels")
    spec = doc.get("spec", {})
    if set(spec) - {"podSelector", "policyTypes", "ingress", "egress"} or "podSelector" not in spec:
        errors.append("spec: unknown field or no podSelector")
    errors += _selector_errors(spec.get("podSelector"), "spec.podSelector")
    if not set(spec.get("policyTypes", [])) <= {"Ingress", "Egress"}:
        errors.append("spec.policyTypes")
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(spec.get(direction) or []):
            where = f"spec.{direction}[{i}]"
            if set(rule) - {peers_key, "ports"}:
                errors.append(f"{where}: unknown field")
            for j, peer in enumerate(rule.get(peers_key, [])):
                errors += _peer_errors(peer, f"{where}.{peers_key}[{j}]")
            for j, port in enumerate(rule.get("ports", [])):
                errors += _port_errors(port, f"{where}.ports[{j}]")
    return errors


def np(p: WorkloadPolicy, **options: Any) -> tuple[dict[str, Any], ExportResult]:
    r = export(p, "networkpolicy", **options)
    doc: dict[str, Any] = yaml.safe_load(r.text)
    assert k8s_errors(doc) == []
    return doc, r


@pytest.mark.parametrize(
    ("rule", "error"),
    [
        ({"ports": [{"protocol": "TCP", "port": 0}]}, "port 0 not 1-65535"),
        ({"ports": [{"protocol": "TCP", "port": 70000}]}, "not 1-65535"),
        ({"ports": [{"protocol": "ICMP"}]}, "protocol 'ICMP'"),
        ({"ports": [{"protocol": "TCP", "port": 90, "endPort": 80}]}, "endPort 80 with port 90"),
        ({"ports": [{"protocol": "TCP", "port": "http", "endPort": 80}]}, "endPort 80 with port 'http'"),
        ({"to": [{"ipBlock": {"cidr": "10.0.0.0/33"}}]}, "cidr"),
        ({"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}}]}, "not strictly inside"),
        ({"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0/8"]}}]}, "not strictly inside"),
        ({"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}, "ipBlock with selectors"),
        ({"to": [{"podSelector": {"matchLabels": {"app": "-web"}}}]}, "bad label value"),
        ({"to": [{"podSelector": {"matchLabels": {"a/b/c": "x"}}}]}, "bad label key"),
        ({"to": [{}]}, "bad peer"),
    ],
)
def test_the_api_rules_reject_what_the_api_server_rejects(rule: dict[str, Any], error: str) -> None:
    doc: dict[str, Any] = yaml.safe_load((DATA / "web.networkpolicy.yaml").read_text())
    assert k8s_errors(doc) == []
    doc["spec"]["egress"].append(rule)
    assert any(error in e for e in k8s_errors(doc)), k8s_errors(doc)


# -- the export ------------------------------------------------------------------------------------
def test_golden() -> None:
    p = WorkloadPolicy.model_validate(yaml.safe_load((DATA / "web.policy.yaml").read_text()))
    r = export(p, "networkpolicy")
    assert r.text == (DATA / "web.networkpolicy.yaml").read_text()
    assert k8s_errors(yaml.safe_load(r.text)) == []
    assert r.warnings == (
        "network rule upstream: DNS name 'api.example.com' cannot be a NetworkPolicy peer: left out",
    )


def test_ports_per_protocol_ipv6_and_peer_labels() -> None:
    doc, r = np(
        policy(
            network=[
                {"peer": {"cidr": "2001:db8::1"}, "ports": ["5000-5010", 53]},
                {"peer": {"workload": "k8s/db/statefulset/pg"}, "ports": [5432], "protocol": "tcp"},
                {"direction": "ingress", "peer": {"cidr": "192.168.1.7/24"}, "protocol": "udp"},
            ]
        ),
        peer_labels={"k8s/db/statefulset/pg": {"app.kubernetes.io/name": "postgres"}},
    )
    egress = doc["spec"]["egress"]
    assert egress[1] == {
        "to": [{"ipBlock": {"cidr": "2001:db8::1/128"}}],
        "ports": [
            {"protocol": "TCP", "port": 5000, "endPort": 5010},
            {"protocol": "UDP", "port": 5000, "endPort": 5010},
            {"protocol": "TCP", "port": 53},
            {"protocol": "UDP", "port": 53},
        ],
    }
    assert egress[2]["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "db"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "postgres"}},
        }
    ]
    assert doc["spec"]["ingress"] == [
        {"from": [{"ipBlock": {"cidr": "192.168.1.0/24"}}], "ports": [{"protocol": "UDP"}]}
    ]
    assert r.warnings == ()


def test_cluster_dns_is_allowed_only_with_egress() -> None:
    doc, _ = np(policy(network=[{"direction": "ingress", "ports": [80]}]))
    assert doc["spec"]["egress"] == []  # no egress at all: denied, lookups too
    doc, r = np(
        policy(network=[{"peer": {"dns": "api.example.com"}, "ports": [443]}]),
        dns_labels={"k8s-app": "coredns"},
    )
    assert doc["spec"]["egress"] == [
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "coredns"}},
                }
            ],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        }
    ]
    assert "cannot be a NetworkPolicy peer" in r.warnings[0]


def test_listened_ports_are_open_to_all_unless_an_ingress_rule_says_who() -> None:
    frontend = {"workload": "k8s/shop/deployment/frontend"}
    doc, _ = np(
        policy(
            network=[
                {"direction": "listen", "ports": [80, 9090, "7000-7002"], "protocol": "tcp"},
                {"direction": "ingress", "peer": frontend, "ports": [80], "protocol": "tcp"},
                {"direction": "ingress", "peer": {"cidr": "10.0.0.0/8"}, "ports": ["7000-7010"]},
            ]
        )
    )
    assert doc["spec"]["ingress"][2:] == [{"ports": [{"protocol": "TCP", "port": 9090}]}]
    doc, _ = np(policy(network=[{"direction": "listen"}]))
    assert doc["spec"]["ingress"] == [{}]  # may listen on any port: ingress from anyone


def test_block_rules_carve_excepts_out_of_allowed_cidrs_or_warn() -> None:
    doc, r = np(
        policy(
            network=[
                {"peer": {"cidr": "10.0.0.0/8"}, "ports": [443]},
                {"ports": [53], "protocol": "udp"},
                {"name": "meta", "peer": {"cidr": "10.1.0.0/16"}, "ports": [443], "action": "block"},
                {"name": "far", "peer": {"cidr": "172.16.0.0/12"}, "action": "block"},
                {"name": "v6", "peer": {"cidr": "fd00::/8"}, "protocol": "tcp", "action": "block"},
            ]
        )
    )
    assert doc["spec"]["egress"][1]["to"] == [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]
    assert "network rule meta: the except blocks every port and protocol of 10.1.0.0/16" in r.warnings
    # far and v6 overlap the UDP/53 rule to any peer: a NetworkPolicy cannot take them out of it
    assert [w.split(":")[0] for w in r.warnings if "cannot deny" in w] == [
        "network rule far",
        "network rule v6",
    ]


def test_a_block_rule_that_overlaps_nothing_allowed_needs_no_warning() -> None:
    _, r = np(
        policy(
            network=[
                {"peer": {"cidr": "10.0.0.0/8"}},
                {"peer": {"cidr": "192.168.0.0/16"}, "action": "block"},
                {"direction": "ingress", "peer": {"workload": "k8s/x/deployment/y"}, "action": "block"},
            ]
        )
    )
    assert r.warnings == ()


def test_audit_is_denied_and_allow_lets_everything_through() -> None:
    doc, r = np(policy(action="audit", network=[{"peer": {"cidr": "10.0.0.0/8"}, "action": "audit"}]))
    assert doc["spec"]["egress"][1] == {"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}
    assert r.warnings == (
        "spec.action audit: a NetworkPolicy cannot audit: what no rule allows is denied",
        "network rule network-1: a NetworkPolicy cannot audit: allowed without a report",
    )
    doc, r = np(
        policy(action="allow", network=[{"peer": {"cidr": "10.0.0.0/8"}, "action": "block", "name": "x"}])
    )
    assert (doc["spec"]["ingress"], doc["spec"]["egress"]) == ([{}], [{}])
    assert r.warnings == (
        "network rule x: a NetworkPolicy cannot deny traffic it allows elsewhere: left out",
    )


def test_the_pods_are_selected_by_the_labels_option() -> None:
    doc, _ = np(policy(workload="k8s/shop/statefulset/db"), labels={"app": "db", "tier": "data"})
    assert doc["spec"]["podSelector"] == {"matchLabels": {"app": "db", "tier": "data"}}
    assert doc["metadata"]["namespace"] == "shop"
    assert (doc["spec"]["ingress"], doc["spec"]["egress"]) == ([], [])


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"workload": "container/localhost/web/web"}, "is not a Kubernetes workload"),
        ({"workload": "host"}, "is not a Kubernetes workload"),
        ({"network": [{"ports": [0]}]}, "network rule network-1: port 0 is not within 1-65535"),
        ({"network": [{"ports": ["80-70"]}]}, "is not within 1-65535"),
        ({"network": [{"ports": ["http"]}]}, "port 'http' is not a number or a range LOW-HIGH"),
        ({"network": [{"peer": {"cidr": "10.0.0.300/8"}}]}, "'10.0.0.300/8' is not an IP address or CIDR"),
    ],
)
def test_what_cannot_be_exported_is_an_error(spec: dict[str, Any], error: str) -> None:
    with pytest.raises(ExportError, match=re.escape(error)):
        export(policy(**spec), "networkpolicy")
