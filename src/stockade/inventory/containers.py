"""A running container as the inventory records it: identity, image, process, workload, pod and
owner, addresses and listening ports.

The container comes from the cgroup2 hierarchy (:func:`stockade.sensor.containers.discover.
running_containers`) and its runtime's description (:class:`stockade.sensor.containers.resolver.
ContainerResolver`: podman inspect, runc state, CRI bundle); its workload is the one zero trust
learns by (:func:`stockade.behavior.workload.workload_of_event` over the container's fields), and for
a Kubernetes pod the owner comes from the pod's labels or the shape of its name.
"""

from __future__ import annotations

from typing import Any

from stockade.behavior.workload import workload_of_event
from stockade.sensor.containers.discover import RunningContainer
from stockade.sensor.containers.info import ContainerInfo

__all__ = ["container_record"]


def container_record(
    c: RunningContainer, info: ContainerInfo, addresses: frozenset[str], started_ns: int | None
) -> dict[str, Any]:
    """The inventory's record of a running container (``ports`` filled by the port scan)."""
    ref = workload_of_event(info.fields()) if info.complete else None
    return {
        "id": c.full_id,
        "short_id": c.full_id[:12],
        "name": info.name,
        "runtime": info.runtime,
        "image": info.image,
        "image_repository": info.image_repository,
        "image_tag": info.image_tag,
        "image_id": info.image_id,
        "image_digest": info.image_digest,
        "pid": c.pid,
        "pids": len(c.pids),
        "state": "running",
        "started_ns": info.start_ns or started_ns,
        "stopped_ns": None,
        "workload": ref.id if ref is not None else None,
        "pod": info.k8s_pod_name,
        "namespace": info.k8s_ns_name,
        "pod_uid": info.k8s_pod_uid,
        "owner_kind": ref.owner_kind if ref is not None else None,
        "owner": ref.owner if ref is not None else None,
        "labels": dict(info.labels),
        "privileged": info.privileged,
        "addresses": sorted(addresses),
        "cgroup_id": c.cgroup_id,
        #: whether the runtime described it (False: only its id is known yet)
        "described": info.complete,
        "ports": [],
    }
