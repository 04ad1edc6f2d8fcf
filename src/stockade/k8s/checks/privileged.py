"""Privileged containers (the example every family module follows)."""

from __future__ import annotations

from collections.abc import Iterator

from stockade.k8s.catalogue import Context, Violation, check
from stockade.k8s.checks._pod import pod_of
from stockade.k8s.objects import K8sObject


@check(
    "privileged-container",
    severity="CRITICAL",
    title="Privileged container",
    description=(
        "A privileged container has every capability, every device and no seccomp or AppArmor "
        "confinement: it is root on the node."
    ),
    remediation="Remove securityContext.privileged or set it to false.",
    fix="securityContext:\n  privileged: false\n",
    controls=("pss:baseline:privileged",),
    nsa=True,
    cis=("5.2.2",),
)
def privileged_container(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """Containers with securityContext.privileged true."""
    # PSS baseline "Privileged Containers": containers, initContainers, ephemeralContainers;
    # allowed values: undefined/nil, false
    pod = pod_of(obj, ctx)
    if pod is None:
        return
    for c in pod.containers():
        if c.get("securityContext", "privileged") is True:
            yield Violation(f"container {c.name!r} is privileged", (*c.path, "securityContext", "privileged"))
