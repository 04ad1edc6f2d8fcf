"""Service accounts: the API credentials a pod gets without asking."""

from __future__ import annotations

from collections.abc import Iterator

from stockade.k8s.catalogue import Context, Violation, check
from stockade.k8s.checks._pod import pod_of
from stockade.k8s.objects import K8sObject


@check(
    "automount-service-account-token",
    severity="MEDIUM",
    title="Service account token mounted",
    description=(
        "Unless automountServiceAccountToken is false, every container gets an API token: an "
        "intruder in the pod talks to the API server with the service account's rights."
    ),
    remediation="Set spec.automountServiceAccountToken: false unless the pod calls the API.",
    fix="spec:\n  automountServiceAccountToken: false\n",
    nsa=True,
    cis=("5.1.6",),
)
def automount_service_account_token(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """Pod specs whose automountServiceAccountToken is not false."""
    pod = pod_of(obj, ctx)
    if pod is None:
        return
    value = pod.spec.get("automountServiceAccountToken")
    if value is not False:
        where = pod.at("automountServiceAccountToken") if value is not None else pod.path
        yield Violation(
            "the pod mounts a service account token (automountServiceAccountToken is not false)", where
        )


@check(
    "default-service-account",
    severity="LOW",
    title="Pod uses the default service account",
    description=(
        "Pods on the namespace's default service account share its rights with every other such "
        "pod; a grant made for one is a grant for all."
    ),
    remediation="Create a service account per workload and set spec.serviceAccountName.",
    fix="spec:\n  serviceAccountName: app\n",
    cis=("5.1.5",),
)
def default_service_account(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """serviceAccountName (or the deprecated serviceAccount) absent or "default"."""
    pod = pod_of(obj, ctx)
    if pod is None:
        return
    for key in ("serviceAccountName", "serviceAccount"):
        name = pod.spec.get(key)
        if name:
            if name == "default":
                yield Violation("the pod uses the default service account", pod.at(key))
            return
    yield Violation("the pod names no service account (it gets the default one)", pod.path)
