"""Liveness and readiness probes: a hung container is restarted, an unready one gets no traffic."""

from __future__ import annotations

from collections.abc import Iterator

from stockade.k8s.catalogue import CheckFn, Context, Violation, check
from stockade.k8s.checks._pod import pod_of
from stockade.k8s.objects import K8sObject


def _probe(key: str) -> CheckFn:
    """The check that every container of ``containers`` has `key`."""

    def run(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
        pod = pod_of(obj, ctx)
        if pod is None:
            return
        for c in pod.containers(("containers",)):
            if not isinstance(c.body.get(key), dict):
                yield Violation(f"container {c.name!r} has no {key}", c.path)

    return run


check(
    "liveness-probe",
    severity="LOW",
    title="No liveness probe",
    description="Without a liveness probe a hung or half-compromised container keeps running unnoticed.",
    remediation="Add a livenessProbe to every container.",
    fix="livenessProbe:\n  httpGet:\n    path: /healthz\n    port: 8080\n",
)(_probe("livenessProbe"))

check(
    "readiness-probe",
    severity="LOW",
    title="No readiness probe",
    description="Without a readiness probe traffic reaches the container before it can serve it.",
    remediation="Add a readinessProbe to every container.",
    fix="readinessProbe:\n  httpGet:\n    path: /ready\n    port: 8080\n",
)(_probe("readinessProbe"))


_HANDLERS = (
    ("livenessProbe",),
    ("readinessProbe",),
    ("startupProbe",),
    ("lifecycle", "postStart"),
    ("lifecycle", "preStop"),
)


@check(
    "probe-host",
    severity="MEDIUM",
    title="Probe or lifecycle hook aimed at another host",
    description=(
        "A probe or lifecycle hook with httpGet.host or tcpSocket.host makes the kubelet connect "
        "from the node to any address the manifest names: the node's own services, the cloud "
        "metadata endpoint, other networks (the PSS baseline forbids it since Kubernetes 1.34)."
    ),
    remediation="Remove httpGet.host and tcpSocket.host: probes then target the pod's own IP.",
    fix="livenessProbe:\n  httpGet:\n    path: /healthz\n    port: 8080\n",
    controls=("pss:baseline:host-probes",),
)
def probe_host(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """A non-empty httpGet.host or tcpSocket.host in any probe or lifecycle hook of any container."""
    pod = pod_of(obj, ctx)
    if pod is None:
        return
    for c in pod.containers():
        for keys in _HANDLERS:
            handler = c.get(*keys)
            if not isinstance(handler, dict):
                continue
            for action in ("httpGet", "tcpSocket"):
                spec = handler.get(action)
                host = spec.get("host") if isinstance(spec, dict) else None
                if host:
                    yield Violation(
                        f"container {c.name!r} {'.'.join(keys)} {action} targets host {host}",
                        (*c.path, *keys, action, "host"),
                    )
