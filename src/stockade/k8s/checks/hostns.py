"""Host namespaces, host ports and Windows HostProcess: what shares the node with the pod."""

from __future__ import annotations

from collections.abc import Iterator

from stockade.k8s.catalogue import Context, Violation, check
from stockade.k8s.checks._pod import container_sc, pod_of, pod_sc, sc_path
from stockade.k8s.objects import K8sObject

_HOST_NS = "pss:baseline:host-namespaces"


@check(
    "host-process",
    severity="CRITICAL",
    title="Windows HostProcess container",
    description=(
        "A HostProcess container runs directly on the Windows node, outside any container "
        "isolation, with the node's network and file system: it is administrator on the node."
    ),
    remediation="Remove securityContext.windowsOptions.hostProcess (pod and containers) or set it to false.",
    fix="securityContext:\n  windowsOptions:\n    hostProcess: false\n",
    controls=("pss:baseline:host-process",),
    cis=("5.2.11",),
)
def host_process(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """windowsOptions.hostProcess true on the pod or any container (undefined and false pass)."""
    pod = pod_of(obj, ctx)
    if pod is None:
        return
    wo = pod_sc(pod).get("windowsOptions")
    if isinstance(wo, dict) and wo.get("hostProcess") is True:
        yield Violation(
            "the pod sets windowsOptions.hostProcess=true",
            pod.at("securityContext", "windowsOptions", "hostProcess"),
        )
    for c in pod.containers():
        wo = container_sc(c).get("windowsOptions")
        if isinstance(wo, dict) and wo.get("hostProcess") is True:
            yield Violation(
                f"container {c.name!r} sets windowsOptions.hostProcess=true",
                sc_path(c, "windowsOptions", "hostProcess"),
            )


def _host_namespace(obj: K8sObject, ctx: Context, key: str, what: str) -> Iterator[Violation]:
    pod = pod_of(obj, ctx)
    if pod is not None and pod.spec.get(key) is True:
        yield Violation(f"the pod shares the node's {what} ({key}: true)", pod.at(key))


@check(
    "host-network",
    severity="HIGH",
    title="Pod shares the host network namespace",
    description=(
        "With hostNetwork the pod sees every interface of the node, can bind its ports, sniff its "
        "traffic and reach services listening on the node's loopback (kubelet, etcd, metadata)."
    ),
    remediation="Remove spec.hostNetwork or set it to false.",
    fix="spec:\n  hostNetwork: false\n",
    controls=(_HOST_NS,),
    nsa=True,
    cis=("5.2.5",),
)
def host_network(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """spec.hostNetwork true."""
    yield from _host_namespace(obj, ctx, "hostNetwork", "network namespace")


@check(
    "host-pid",
    severity="HIGH",
    title="Pod shares the host PID namespace",
    description=(
        "With hostPID the pod sees every process of the node, reads their environment and, with "
        "ptrace, enters them: a short step to the node."
    ),
    remediation="Remove spec.hostPID or set it to false.",
    fix="spec:\n  hostPID: false\n",
    controls=(_HOST_NS,),
    nsa=True,
    cis=("5.2.3",),
)
def host_pid(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """spec.hostPID true."""
    yield from _host_namespace(obj, ctx, "hostPID", "PID namespace")


@check(
    "host-ipc",
    severity="MEDIUM",
    title="Pod shares the host IPC namespace",
    description=(
        "With hostIPC the pod reads and writes the shared memory and message queues of every "
        "process on the node."
    ),
    remediation="Remove spec.hostIPC or set it to false.",
    fix="spec:\n  hostIPC: false\n",
    controls=(_HOST_NS,),
    nsa=True,
    cis=("5.2.4",),
)
def host_ipc(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """spec.hostIPC true."""
    yield from _host_namespace(obj, ctx, "hostIPC", "IPC namespace")


@check(
    "host-port",
    severity="MEDIUM",
    title="Container binds a host port",
    description=(
        "A hostPort opens a port on the node's own addresses, bypassing Services and "
        "NetworkPolicies, and ties the pod to nodes where the port is free."
    ),
    remediation="Remove ports[].hostPort (or set it to 0) and expose the pod through a Service.",
    fix="ports:\n  - containerPort: 8080\n",
    controls=("pss:baseline:host-ports",),
    nsa=True,
    cis=("5.2.13",),
)
def host_port(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """ports[*].hostPort other than undefined or 0, in every container list."""
    pod = pod_of(obj, ctx)
    if pod is None:
        return
    for c in pod.containers():
        ports = c.body.get("ports")
        if not isinstance(ports, list):
            continue
        for i, p in enumerate(ports):
            hp = p.get("hostPort") if isinstance(p, dict) else None
            if hp not in (None, 0, "0"):
                yield Violation(f"container {c.name!r} uses hostPort {hp}", (*c.path, "ports", i, "hostPort"))
