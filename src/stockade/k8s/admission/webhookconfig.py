"""The ValidatingWebhookConfiguration that registers the webhook: one webhook per policy, at
``/validate/<policy>``, with the policy's selectors, failure policy and rules, and the caBundle.

kube-apiserver filters by namespace labels itself: a policy's ``namespaces`` and
``excludedNamespaces`` become a ``kubernetes.io/metadata.name`` expression of the webhook's
namespaceSelector, beside the policy's own namespaceSelector.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from stockade.k8s.admission.load import LoadedAdmissionPolicy
from stockade.k8s.admission.policy import LabelSelector
from stockade.k8s.catalogue import WORKLOADS

__all__ = ["RESOURCES", "webhook_configuration"]

#: kind -> (API group, resource) of the kinds policies match
RESOURCES: dict[str, tuple[str, str]] = {
    "Pod": ("", "pods"),
    "PodTemplate": ("", "podtemplates"),
    "ReplicationController": ("", "replicationcontrollers"),
    "Deployment": ("apps", "deployments"),
    "StatefulSet": ("apps", "statefulsets"),
    "DaemonSet": ("apps", "daemonsets"),
    "ReplicaSet": ("apps", "replicasets"),
    "Job": ("batch", "jobs"),
    "CronJob": ("batch", "cronjobs"),
}
_NAME_LABEL = "kubernetes.io/metadata.name"


def _selector(sel: LabelSelector | None) -> dict[str, Any]:
    if sel is None:
        return {}
    return sel.model_dump(mode="json", exclude_defaults=True)


def _namespace_selector(lp: LoadedAdmissionPolicy) -> dict[str, Any]:
    m = lp.policy.spec.match
    out = _selector(m.namespaceSelector)
    exprs = list(out.get("matchExpressions", []))
    if m.namespaces is not None:
        exprs.append({"key": _NAME_LABEL, "operator": "In", "values": list(m.namespaces)})
    if m.excludedNamespaces:
        exprs.append({"key": _NAME_LABEL, "operator": "NotIn", "values": list(m.excludedNamespaces)})
    if exprs:
        out["matchExpressions"] = exprs
    return out


def _rules(lp: LoadedAdmissionPolicy) -> list[dict[str, Any]]:
    m = lp.policy.spec.match
    kinds = sorted(m.kinds if m.kinds is not None else WORKLOADS)
    by_group: dict[str, list[str]] = {}
    for k in kinds:
        group, resource = RESOURCES.get(k, ("*", k.lower() + "s"))
        by_group.setdefault(group, []).append(resource)
    return [
        {
            "apiGroups": [g],
            "apiVersions": ["*"],
            "operations": list(m.operations),
            "resources": sorted(rs),
            "scope": "Namespaced",
        }
        for g, rs in sorted(by_group.items())
    ]


def webhook_configuration(
    policies: Sequence[LoadedAdmissionPolicy],
    ca_pem: bytes,
    *,
    service: str | None = None,
    url: str | None = None,
    port: int = 443,
    name: str = "stockade-admission",
    timeout: int = 5,
    fail_closed: bool | None = None,
) -> dict[str, Any]:
    """The configuration document (`service` ``NS/NAME`` or `url`, the server's base URL)."""
    webhooks = []
    for lp in policies:
        path = f"/validate/{lp.name}"
        client: dict[str, Any]
        if url is not None:
            client = {"url": url.rstrip("/") + path}
        else:
            ns, _, svc = (service or "stockade/stockade-admission").partition("/")
            client = {"service": {"namespace": ns, "name": svc, "path": path, "port": port}}
        client["caBundle"] = base64.b64encode(ca_pem).decode()
        closed = lp.policy.spec.failurePolicy == "Fail" if fail_closed is None else fail_closed
        hook: dict[str, Any] = {
            "name": f"{lp.name}.admission.stockade.dev",
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Fail" if closed else "Ignore",
            "matchPolicy": "Equivalent",
            "timeoutSeconds": timeout,
            "clientConfig": client,
            "rules": _rules(lp),
            "namespaceSelector": _namespace_selector(lp),
            "objectSelector": _selector(lp.policy.spec.match.objectSelector),
        }
        webhooks.append(hook)
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "stockade"}},
        "webhooks": webhooks,
    }
