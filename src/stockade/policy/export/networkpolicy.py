"""WorkloadPolicy -> Kubernetes NetworkPolicy (``networking.k8s.io/v1``), for Kubernetes workloads.

The pods are selected by their labels (option `labels`; the id does not carry them, the default is
``app: <owner>``); ``policyTypes`` is always ``[Ingress, Egress]``. A NetworkPolicy only allows,
and what none of the policies selecting a pod allows is denied:

* ``spec.action: block``: the allow (and audit) rules are the allowed traffic, in the policy's
  order. Peers: ``{workload: k8s/<ns>/<kind>/<owner>}`` is a ``podSelector`` (option
  `peer_labels` ``{workload id: labels}``, default ``app: <owner>``) with a ``namespaceSelector``
  on ``kubernetes.io/metadata.name``; ``{cidr: ...}`` is an ``ipBlock``; no peer is any peer.
  Ports are ``port``/``endPort`` per protocol (``any``: TCP and UDP). A listen rule allows
  ingress from any peer to the ports it names that no ingress rule already covers (an ingress
  rule says who may connect; a listened port no ingress rule names stays open to all).
  A block rule towards a CIDR inside an allowed ``ipBlock`` of the same direction becomes an
  ``except`` of it; a block rule that overlaps any other allowed traffic cannot be expressed.
* ``spec.action: audit``: as ``block`` (a NetworkPolicy cannot audit: what Stockade would only
  report is denied; a warning says so).
* ``spec.action: allow``: every peer is allowed both ways; block rules cannot be expressed.

DNS names cannot be peers (a NetworkPolicy has no FQDN). When the policy allows any egress or
names any DNS peer, egress to the cluster's DNS (options `dns_namespace`, default ``kube-system``,
and `dns_labels`, default ``k8s-app: kube-dns``) on port 53 UDP and TCP is always allowed, first:
without it every name lookup of an allowed connection fails.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stockade.policy.export._common import (
    Target,
    comment_header,
    dump_yaml,
    named,
    network_of,
    port_ranges,
    target_of,
)
from stockade.policy.export.interface import ExportError, ExportResult
from stockade.policy.model import NetworkRule, Peer, WorkloadPolicy

__all__ = ["export"]

_NS_LABEL = "kubernetes.io/metadata.name"
_PROTOCOLS = {"tcp": ("TCP",), "udp": ("UDP",), "any": ("TCP", "UDP")}
_Net = ipaddress.IPv4Network | ipaddress.IPv6Network
_Range = tuple[str, int, int]  # protocol, first port, last port


@dataclass
class _Allowed:
    """One allowed NetworkPolicy rule, with what block rules may carve out of it."""

    direction: str
    peer: dict[str, Any] | None
    ports: list[dict[str, Any]] | None
    net: _Net | None = None
    excepts: list[str] = field(default_factory=list)

    def to_doc(self) -> dict[str, Any]:
        """The rule as it is written in the NetworkPolicy."""
        out: dict[str, Any] = {}
        if self.peer is not None:
            peer = self.peer
            if self.excepts:
                peer = {"ipBlock": {**peer["ipBlock"], "except": sorted(self.excepts)}}
            out["from" if self.direction == "ingress" else "to"] = [peer]
        if self.ports:
            out["ports"] = self.ports
        return out


class _Builder:
    def __init__(self, policy: WorkloadPolicy, peer_labels: Mapping[str, Mapping[str, str]]) -> None:
        self.policy = policy
        self.peer_labels = peer_labels
        self.allowed: list[_Allowed] = []
        self.listen: list[tuple[str, list[dict[str, Any]] | None, list[_Range] | None]] = []
        self.warnings: list[str] = []
        self.dns_peer = False

    def peer(self, where: str, peer: Peer | None) -> tuple[dict[str, Any] | None, _Net | None] | None:
        """The NetworkPolicy peer of a rule's peer (None, None: any), or None when it has none."""
        if peer is None:
            return None, None
        if peer.cidr:
            net = network_of(peer.cidr, where)
            return {"ipBlock": {"cidr": str(net)}}, net
        if peer.dns:
            self.dns_peer = True
            self.warnings.append(f"{where}: DNS name {peer.dns!r} cannot be a NetworkPolicy peer: left out")
            return None
        wid = peer.workload or ""
        t = target_of(wid) if wid.startswith("k8s/") else None
        if t is None:
            self.warnings.append(f"{where}: peer {wid!r} is not a Kubernetes workload: left out")
            return None
        labels = dict(self.peer_labels.get(wid) or {"app": t.owner})
        return {
            "namespaceSelector": {"matchLabels": {_NS_LABEL: t.namespace}},
            "podSelector": {"matchLabels": labels},
        }, None

    @staticmethod
    def ports(rule: NetworkRule, where: str) -> tuple[list[dict[str, Any]] | None, list[_Range] | None]:
        """The rule's ports as NetworkPolicy ports (None: every port of every protocol) and as
        (protocol, first, last) ranges (None: all)."""
        ranges = port_ranges(rule.ports, where)
        protos = _PROTOCOLS[rule.protocol]
        if ranges is None:
            if rule.protocol == "any":
                return None, None
            return [{"protocol": p} for p in protos], [(p, 1, 65535) for p in protos]
        out: list[dict[str, Any]] = []
        for lo, hi in ranges:
            for p in protos:
                out.append({"protocol": p, "port": lo, **({"endPort": hi} if hi > lo else {})})
        return out, [(p, lo, hi) for lo, hi in ranges for p in protos]

    def allow(self, name: str, rule: NetworkRule) -> None:
        """An allow or audit rule."""
        where = f"network rule {name}"
        if rule.action == "audit":
            self.warnings.append(f"{where}: a NetworkPolicy cannot audit: allowed without a report")
        ports, ranges = self.ports(rule, where)
        if rule.direction == "listen":
            if rule.peer is not None:
                self.warnings.append(f"{where}: a listen rule's peer cannot be expressed: any peer")
            self.listen.append((where, ports, ranges))
            return
        peer = self.peer(where, rule.peer)
        if peer is None:
            return
        self.allowed.append(_Allowed(rule.direction, peer[0], ports, peer[1]))

    def block(self, name: str, rule: NetworkRule) -> None:
        """A block rule: an ``except`` of an allowed ipBlock, or a warning when it overlaps."""
        where = f"network rule {name}"
        net = network_of(rule.peer.cidr, where) if rule.peer and rule.peer.cidr else None
        same = [a for a in self.allowed if a.direction == rule.direction]
        if net is not None:
            outer = [a for a in same if a.net is not None and a.net.version == net.version and net != a.net]
            inside = [a for a in outer if net.subnet_of(a.net)]  # type: ignore[arg-type]
            for a in inside:
                a.excepts.append(str(net))
            if inside and (rule.ports or rule.protocol != "any"):
                self.warnings.append(f"{where}: the except blocks every port and protocol of {net}")
            if inside:
                return
        if self.policy.spec.action == "allow" or any(self.overlaps(rule, net, a) for a in same):
            self.warnings.append(
                f"{where}: a NetworkPolicy cannot deny traffic it allows elsewhere: left out"
            )

    @staticmethod
    def overlaps(rule: NetworkRule, net: _Net | None, a: _Allowed) -> bool:
        """Whether block `rule` may name traffic allowed by `a`."""
        if a.peer is None or rule.peer is None:
            return True
        if net is not None and a.net is not None:
            return net.version == a.net.version and net.overlaps(a.net)
        if rule.peer.workload and "podSelector" in a.peer:
            t = target_of(rule.peer.workload) if rule.peer.workload.startswith("k8s/") else None
            return t is None or a.peer["namespaceSelector"]["matchLabels"][_NS_LABEL] == t.namespace
        return False

    def listen_rules(self) -> list[_Allowed]:
        """Ingress from any peer to each listened port no ingress rule covers."""
        covered = [r for a in self.allowed if a.direction == "ingress" for r in _ranges_of(a)]
        out: list[_Allowed] = []
        for _where, ports, ranges in self.listen:
            if ranges is None:
                if not any(c == ("*", 1, 65535) for c in covered):
                    out.append(_Allowed("ingress", None, None))
                continue
            keep = [
                p
                for p, (proto, lo, hi) in zip(ports or [], ranges, strict=True)
                if not any(_covers(c, (proto, lo, hi)) for c in covered)
            ]
            if keep:
                out.append(_Allowed("ingress", None, keep))
        return out


def _ranges_of(a: _Allowed) -> list[_Range]:
    if a.ports is None:
        return [("*", 1, 65535)]
    return [(p["protocol"], p.get("port", 1), p.get("endPort", p.get("port", 65535))) for p in a.ports]


def _covers(c: _Range, r: _Range) -> bool:
    return c[0] in ("*", r[0]) and c[1] <= r[1] and r[2] <= c[2]


def _dns_rule(namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    return {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {_NS_LABEL: namespace}},
                "podSelector": {"matchLabels": dict(labels)},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }


def _unique(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for r in rules:
        if r not in out:
            out.append(r)
    return out


def _rules(policy: WorkloadPolicy, b: _Builder, dns: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """The ingress and egress rules."""
    if policy.spec.action == "allow":
        return [{}], [{}]
    allowed = b.allowed + b.listen_rules()
    ingress = _unique([a.to_doc() for a in allowed if a.direction == "ingress"])
    egress = _unique([a.to_doc() for a in allowed if a.direction == "egress"])
    if egress or b.dns_peer:
        egress = _unique([dns, *egress])
    return ingress, egress


def export(
    policy: WorkloadPolicy,
    *,
    labels: Mapping[str, str] | None = None,
    peer_labels: Mapping[str, Mapping[str, str]] | None = None,
    dns_namespace: str = "kube-system",
    dns_labels: Mapping[str, str] | None = None,
) -> ExportResult:
    """`policy` as a NetworkPolicy (module docstring)."""
    target: Target = target_of(policy.spec.workload)
    if target.kind != "k8s":
        raise ExportError(
            f"networkpolicy: workload {target.id} is not a Kubernetes workload (a NetworkPolicy selects pods)"
        )
    b = _Builder(policy, peer_labels or {})
    rules = list(named(policy.spec.network, "network"))
    for name, r in rules:
        if r.action != "block" and policy.spec.action != "allow":
            b.allow(name, r)
    for name, r in rules:
        if r.action == "block":
            b.block(name, r)
    if policy.spec.action == "audit":
        b.warnings.insert(0, "spec.action audit: a NetworkPolicy cannot audit: what no rule allows is denied")
    dns = _dns_rule(dns_namespace, dns_labels or {"k8s-app": "kube-dns"})
    ingress, egress = _rules(policy, b, dns)
    doc = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": policy.metadata.name,
            "namespace": target.namespace,
            "labels": {"app.kubernetes.io/managed-by": "stockade"},
        },
        "spec": {
            "podSelector": {"matchLabels": dict(labels or {"app": target.owner})},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    }
    notes = ["NetworkPolicy allows only: what no rule here allows is denied."]
    if egress and egress[0] == dns:
        notes.append(f"Egress to the cluster DNS ({dns_namespace}) on port 53 is always allowed.")
    header = comment_header(policy, "Kubernetes NetworkPolicy", notes, b.warnings)
    return ExportResult(header + dump_yaml(doc), tuple(b.warnings))
