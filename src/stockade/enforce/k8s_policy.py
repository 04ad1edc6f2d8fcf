"""The Kubernetes side of network isolation: a deny-all ``NetworkPolicy`` for one pod, letting
through only the forensics allow-list, to show or to apply (``kubectl apply -f``).

A NetworkPolicy selects pods by label: every pod matching `labels` is isolated, so pass labels only
the compromised pod has (a Deployment's replicas share theirs): the usual way is to label the pod
first (``kubectl label pod NAME stockade.dev/quarantine=NAME``, :data:`QUARANTINE_LABEL`) and select
on that label alone (:func:`quarantine_labels`). The policy is enforced by the cluster's network
plugin: whether it cuts connections already established depends on the plugin (many keep them:
the node's own isolation layers cut them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from stockade.enforce.interface import EnforceError
from stockade.model.allowlist import AllowEntry, parse_allow

__all__ = ["QUARANTINE_LABEL", "network_policy", "network_policy_yaml", "quarantine_labels"]

QUARANTINE_LABEL = "stockade.dev/quarantine"


def quarantine_labels(pod: str) -> dict[str, str]:
    """The label selecting pod `pod` alone once it carries it."""
    return {QUARANTINE_LABEL: pod[:63]}


def _peers(allow: Sequence[AllowEntry], direction: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for e in allow:
        rule: dict[str, Any] = {direction: [{"ipBlock": {"cidr": str(e.network)}}]}
        if e.ports is not None:
            lo, hi = e.ports
            ports: list[dict[str, Any]] = []
            for proto in ("TCP", "UDP"):
                p: dict[str, Any] = {"protocol": proto, "port": lo}
                if hi != lo:
                    p["endPort"] = hi
                ports.append(p)
            rule["ports"] = ports
        out.append(rule)
    return out


def network_policy(
    pod: str,
    namespace: str,
    labels: Mapping[str, str],
    allow: Sequence[AllowEntry | str] = (),
    *,
    name: str | None = None,
) -> dict[str, Any]:
    """A NetworkPolicy (as a dict) denying all ingress and egress of the pods matching `labels` in
    `namespace` but to and from the networks of `allow` (with their ports: the pod's port for
    ingress, the peer's for egress)."""
    if not labels:
        raise EnforceError(
            f"pod {namespace}/{pod}: no labels to select it by (an empty selector is every pod)"
        )
    entries = parse_allow(allow)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name or f"stockade-isolate-{pod}"[:253],
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "stockade"},
            "annotations": {"stockade.dev/isolated-pod": pod},
        },
        "spec": {
            "podSelector": {"matchLabels": dict(labels)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": _peers(entries, "from"),
            "egress": _peers(entries, "to"),
        },
    }


def network_policy_yaml(policy: Mapping[str, Any]) -> str:
    """`policy` as YAML (what ``kubectl apply -f`` reads)."""
    return yaml.safe_dump(dict(policy), sort_keys=False)
