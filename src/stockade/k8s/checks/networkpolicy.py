"""NetworkPolicy coverage: a pod no NetworkPolicy selects accepts traffic from every pod of the
cluster and reaches any address. Needs the whole object set (silent at admission)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from stockade.k8s.catalogue import Context, Violation, check
from stockade.k8s.checks._pod import pod_of
from stockade.k8s.objects import K8sObject
from stockade.k8s.selectors import selects

_INDEX = "networkpolicy.selectors"


def _ns(obj: K8sObject) -> str:
    return obj.namespace or "default"


def _selectors(ctx: Context) -> dict[str, list[Mapping[str, Any]]]:
    """The podSelectors of the NetworkPolicies of the scan, by namespace (built once per scan)."""
    cached = ctx.cache.get(_INDEX)
    if isinstance(cached, dict):
        return cached
    index: dict[str, list[Mapping[str, Any]]] = {}
    for o in ctx.objects:
        if o.kind == "NetworkPolicy":
            sel = o.get(("spec", "podSelector"))
            index.setdefault(_ns(o), []).append(sel if isinstance(sel, Mapping) else {})
    ctx.cache[_INDEX] = index
    return index


@check(
    "network-policy-coverage",
    severity="MEDIUM",
    title="No NetworkPolicy selects the pods",
    description=(
        "Pods that no NetworkPolicy of their namespace selects take traffic from every pod in the "
        "cluster and may connect anywhere: one compromised pod reaches them all."
    ),
    remediation=(
        "Add a NetworkPolicy selecting the pods (a default-deny policy with podSelector: {} in "
        "every namespace, then allow-lists)."
    ),
    fix=(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: default-deny\n"
        "spec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]\n"
    ),
    nsa=True,
    cis=("5.3.2",),
    needs_all=True,
)
def network_policy_coverage(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """Workloads whose pod labels no NetworkPolicy podSelector of their namespace matches."""
    pod = pod_of(obj, ctx)
    if pod is None:
        return
    labels = pod.metadata.get("labels")
    labels = labels if isinstance(labels, Mapping) else {}
    if not any(selects(s, labels) for s in _selectors(ctx).get(_ns(obj), ())):
        yield Violation(
            f"no NetworkPolicy in namespace {_ns(obj)!r} selects the pods of {obj.kind} {obj.name!r}",
            (*pod.metadata_path, "labels") if labels else pod.metadata_path,
        )
