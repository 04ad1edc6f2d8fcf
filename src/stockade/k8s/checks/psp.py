"""PodSecurityPolicy objects (removed in Kubernetes 1.25, still in old manifests and charts) that
allow what the baseline forbids."""

from __future__ import annotations

from collections.abc import Iterator

from stockade.k8s.catalogue import Context, Violation, check
from stockade.k8s.objects import K8sObject


@check(
    "psp-permissive",
    severity="HIGH",
    title="Permissive PodSecurityPolicy",
    description=(
        "A PodSecurityPolicy that allows privileged pods, host namespaces, every volume type, "
        "every capability or any user admits exactly the pods the baseline exists to stop."
    ),
    remediation=(
        "Replace PodSecurityPolicy by Pod Security Admission labels (baseline or restricted); "
        "until then set privileged, hostNetwork, hostPID, hostIPC false, list volumes and "
        "capabilities explicitly and require MustRunAsNonRoot."
    ),
    fix="metadata:\n  labels:\n    pod-security.kubernetes.io/enforce: restricted\n",
    kinds=("PodSecurityPolicy",),
)
def psp_permissive(obj: K8sObject, _ctx: Context) -> Iterator[Violation]:
    """privileged, host namespaces, '*' volumes or hostPath, '*' capabilities, runAsUser RunAsAny,
    allowPrivilegeEscalation not false."""
    spec = obj.body.get("spec")
    if not isinstance(spec, dict):
        return
    for key in ("privileged", "hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key) is True:
            yield Violation(f"allows {key}", ("spec", key))
    for key, what in (("volumes", "every volume type"), ("allowedCapabilities", "every capability")):
        items = spec.get(key)
        if isinstance(items, list):
            for i, item in enumerate(items):
                if item == "*":
                    yield Violation(f"allows {what} ('*')", ("spec", key, i))
                elif key == "volumes" and item == "hostPath":
                    yield Violation("allows hostPath volumes", ("spec", key, i))
    rule = spec.get("runAsUser", {}).get("rule") if isinstance(spec.get("runAsUser"), dict) else None
    if rule == "RunAsAny":
        yield Violation("allows any user, root included (runAsUser RunAsAny)", ("spec", "runAsUser", "rule"))
    if spec.get("allowPrivilegeEscalation") is not False:
        where = ("spec", "allowPrivilegeEscalation") if "allowPrivilegeEscalation" in spec else ("spec",)
        yield Violation("allows privilege escalation", where)
