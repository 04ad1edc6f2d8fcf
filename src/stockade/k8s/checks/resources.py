"""Resource requests and limits: without them one pod can starve its node."""

from __future__ import annotations

from collections.abc import Iterator

from stockade.k8s.catalogue import CheckFn, Context, Violation, check
from stockade.k8s.checks._pod import APP_CONTAINERS, pod_of
from stockade.k8s.objects import K8sObject


def _missing(which: str, resource: str) -> CheckFn:
    """The check for ``resources.<which>.<resource>`` in containers and init containers (ephemeral
    containers take no resources)."""
    noun = which[:-1]  # limits -> limit

    def run(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
        pod = pod_of(obj, ctx)
        if pod is None:
            return
        for c in pod.containers(APP_CONTAINERS):
            res = c.body.get("resources")
            section = res.get(which) if isinstance(res, dict) else None
            if isinstance(section, dict) and section.get(resource) not in (None, ""):
                continue
            limits = res.get("limits") if isinstance(res, dict) else None
            if which == "requests" and isinstance(limits, dict) and limits.get(resource) not in (None, ""):
                continue  # an unset request defaults to the limit (Kubernetes' defaulting)
            if isinstance(section, dict):
                where = (*c.path, "resources", which)
            else:
                where = (*c.path, "resources") if isinstance(res, dict) else c.path
            yield Violation(f"container {c.name!r} sets no {resource} {noun}", where)

    return run


check(
    "cpu-limits",
    severity="LOW",
    title="No CPU limit",
    description="A container without a CPU limit can take every core of its node from the other pods.",
    remediation="Set resources.limits.cpu on every container (or a LimitRange default).",
    fix="resources:\n  limits:\n    cpu: 500m\n",
    nsa=True,
)(_missing("limits", "cpu"))

check(
    "memory-limits",
    severity="MEDIUM",
    title="No memory limit",
    description=(
        "A container without a memory limit can exhaust its node's memory: the kernel then kills "
        "other pods' processes."
    ),
    remediation="Set resources.limits.memory on every container (or a LimitRange default).",
    fix="resources:\n  limits:\n    memory: 256Mi\n",
    nsa=True,
)(_missing("limits", "memory"))

check(
    "cpu-requests",
    severity="LOW",
    title="No CPU request",
    description="Without a CPU request the scheduler places the pod blind and it is first to be starved.",
    remediation="Set resources.requests.cpu on every container.",
    fix="resources:\n  requests:\n    cpu: 100m\n",
    nsa=True,
)(_missing("requests", "cpu"))

check(
    "memory-requests",
    severity="LOW",
    title="No memory request",
    description="Without a memory request the scheduler overcommits the node and the pod is evicted first.",
    remediation="Set resources.requests.memory on every container.",
    fix="resources:\n  requests:\n    memory: 128Mi\n",
    nsa=True,
)(_missing("requests", "memory"))
