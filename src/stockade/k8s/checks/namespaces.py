"""Namespaces: objects left in (or defaulting to) the default namespace."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from stockade.k8s.catalogue import WORKLOADS, Context, Violation, check
from stockade.k8s.objects import K8sObject

#: the namespaced kinds the check looks at (cluster-scoped kinds have no namespace)
NAMESPACED: Final = WORKLOADS | frozenset(
    {
        "Service", "ConfigMap", "Secret", "ServiceAccount", "Role", "RoleBinding", "NetworkPolicy",
        "Ingress", "PersistentVolumeClaim", "HorizontalPodAutoscaler", "PodDisruptionBudget",
        "Endpoints", "EndpointSlice", "LimitRange", "ResourceQuota", "Lease",
    }
)  # fmt: skip


@check(
    "default-namespace",
    severity="LOW",
    title="Object in the default namespace",
    description=(
        "The default namespace is where everything lands by accident: quotas, network policies "
        "and RBAC written for a team's namespace do not cover it."
    ),
    remediation="Set metadata.namespace to the application's own namespace.",
    fix="metadata:\n  namespace: app\n",
    kinds=NAMESPACED,
    nsa=True,
    cis=("5.7.4",),
)
def default_namespace(obj: K8sObject, _ctx: Context) -> Iterator[Violation]:
    """metadata.namespace absent or "default"."""
    ns = obj.metadata.get("namespace")
    if ns == "default":
        yield Violation(f"{obj.kind} {obj.name!r} is in the default namespace", ("metadata", "namespace"))
    elif not ns:
        yield Violation(
            f"{obj.kind} {obj.name!r} names no namespace (default unless applied with -n)", ("metadata",)
        )
