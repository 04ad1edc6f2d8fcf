"""Volumes: hostPath (any, writable, container runtime sockets, sensitive node paths) and the
volume types the restricted profile allows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from stockade.k8s.catalogue import Context, Violation, check
from stockade.k8s.checks._pod import HostPathVolume, host_path_volumes, pod_of
from stockade.k8s.objects import K8sObject, PodTemplate

#: PSS restricted "Volume Types" (check_restrictedVolumes.go; ``image`` since 1.33)
ALLOWED_VOLUME_TYPES: Final = frozenset(
    {
        "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image",
        "persistentVolumeClaim", "projected", "secret",
    }
)  # fmt: skip

#: the API sockets of container runtimes; a hostPath of one of them, or of a directory holding
#: one, hands the pod the runtime (and so the node)
RUNTIME_SOCKETS: Final = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/containerd/containerd.sock",
    "/run/containerd/containerd.sock",
    "/var/run/crio/crio.sock",
    "/run/crio/crio.sock",
    "/var/run/podman/podman.sock",
    "/run/podman/podman.sock",
    "/var/run/cri-dockerd.sock",
    "/run/cri-dockerd.sock",
    "/var/run/dockershim.sock",
    "/run/k3s/containerd/containerd.sock",
)
_SOCKET_PATHS: Final = frozenset(
    [
        s
        for sock in RUNTIME_SOCKETS
        for s in [sock, *(sock[:i] for i, ch in enumerate(sock) if ch == "/" and i)]
    ]
    + ["/"]
)

#: node paths whose exposure gives away the node: themselves or anything under them (``/`` only
#: itself)
SENSITIVE_PATHS: Final = (
    "/etc",
    "/proc",
    "/sys",
    "/dev",
    "/root",
    "/home",
    "/boot",
    "/lib/modules",
    "/var/lib/kubelet",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/lib/etcd",
    "/etc/kubernetes",
    "/var/run",
    "/run",
)


def _writable_mounts(pod: PodTemplate, v: HostPathVolume) -> Iterator[Violation]:
    for c, m, path in v.mounts(pod):
        if m.get("readOnly") is not True:
            yield Violation(
                f"container {c.name!r} mounts hostPath {v.host_path or v.name!r} writable "
                f"at {m.get('mountPath')}",
                (*path, "readOnly") if "readOnly" in m else path,
            )


@check(
    "host-path-volume",
    severity="HIGH",
    title="Pod mounts a hostPath volume",
    description=(
        "A hostPath volume exposes a directory or file of the node to the pod: node credentials, "
        "other pods' data, and with write access a way onto the node."
    ),
    remediation="Replace the hostPath volume by an emptyDir, configMap, secret or a PersistentVolumeClaim.",
    fix="volumes:\n  - name: data\n    emptyDir: {}\n",
    controls=("pss:baseline:host-path",),
    nsa=True,
    cis=("5.2.12",),
)
def host_path_volume(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """Every volume with a hostPath source."""
    pod = pod_of(obj, ctx)
    if pod is None:
        return
    for v in host_path_volumes(pod):
        yield Violation(f"volume {v.name!r} is hostPath {v.host_path or '(no path)'}", v.path)


@check(
    "volume-types",
    severity="MEDIUM",
    title="Volume of a type the restricted profile forbids",
    description=(
        "The restricted profile allows only configMap, csi, downwardAPI, emptyDir, ephemeral, "
        "image, persistentVolumeClaim, projected and secret volumes; other types (hostPath, nfs, "
        "iscsi, gitRepo, ...) reach storage directly, outside PersistentVolume administration."
    ),
    remediation="Use a PersistentVolumeClaim (or one of the allowed types) instead.",
    fix="volumes:\n  - name: data\n    persistentVolumeClaim:\n      claimName: data\n",
    controls=("pss:restricted:volume-types",),
)
def volume_types(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """Volumes with no source of the allowed types (a volume with no source at all counts)."""
    pod = pod_of(obj, ctx)
    if pod is None:
        return
    volumes = pod.spec.get("volumes")
    if not isinstance(volumes, list):
        return
    for i, v in enumerate(volumes):
        if not isinstance(v, dict):
            continue
        sources = [k for k, val in v.items() if k != "name" and val is not None]
        if not any(k in ALLOWED_VOLUME_TYPES for k in sources):
            bad = next((k for k in sources if k not in ALLOWED_VOLUME_TYPES), None)
            kind = bad or "no source"
            where = pod.at("volumes", i, bad) if bad else pod.at("volumes", i)
            yield Violation(f"volume {v.get('name')!r} has restricted type {kind}", where)


@check(
    "writable-host-path",
    severity="HIGH",
    title="hostPath volume mounted writable",
    description=(
        "A hostPath mounted without readOnly lets the pod change the node's files: plant a "
        "binary, a cron job or a static pod manifest and own the node."
    ),
    remediation="Set readOnly: true on every volumeMount of a hostPath volume (or drop the volume).",
    fix="volumeMounts:\n  - name: logs\n    mountPath: /var/log/node\n    readOnly: true\n",
    nsa=True,
    cis=("5.2.12",),
)
def writable_host_path(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """volumeMounts of hostPath volumes without readOnly: true."""
    pod = pod_of(obj, ctx)
    if pod is None:
        return
    for v in host_path_volumes(pod):
        yield from _writable_mounts(pod, v)


@check(
    "runtime-socket-mount",
    severity="CRITICAL",
    title="Container runtime socket mounted",
    description=(
        "The docker, containerd, CRI-O or podman socket (or a directory holding it) gives the pod "
        "the container runtime's API: it can start a privileged container on the node."
    ),
    remediation="Remove the hostPath volume of the runtime socket; use the Kubernetes API instead.",
    fix="volumes:\n  - name: data\n    emptyDir: {}\n",
    nsa=True,
    cis=("5.2.12",),
)
def runtime_socket_mount(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """hostPath volumes of a runtime socket or of a directory that holds one (``/var/run``, ``/``)."""
    pod = pod_of(obj, ctx)
    if pod is None:
        return
    for v in host_path_volumes(pod):
        if v.host_path in _SOCKET_PATHS:
            yield Violation(f"volume {v.name!r} exposes the container runtime socket ({v.host_path})", v.path)


@check(
    "sensitive-host-path",
    severity="HIGH",
    title="Sensitive node path mounted",
    description=(
        "The node's root, /etc, /proc, /sys, /dev, /root, /boot, the kubelet's and runtimes' state "
        "and /var/run hold credentials, kernel interfaces and other pods' data."
    ),
    remediation="Do not mount these node paths; mount the one file needed read-only if unavoidable.",
    fix="volumes:\n  - name: data\n    emptyDir: {}\n",
    nsa=True,
    cis=("5.2.12",),
)
def sensitive_host_path(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """hostPath volumes of ``/`` or of a sensitive path or anything under one."""
    pod = pod_of(obj, ctx)
    if pod is None:
        return
    for v in host_path_volumes(pod):
        p = v.host_path
        if p == "/" or any(p == s or p.startswith(s + "/") for s in SENSITIVE_PATHS):
            yield Violation(f"volume {v.name!r} mounts the node's {p}", v.path)
