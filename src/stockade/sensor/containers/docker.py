"""docker containers: metadata from the daemon's files under /var/lib/docker/containers/<id>/."""

from __future__ import annotations

import os

from stockade.sensor.containers.info import (
    ContainerInfo,
    engine_mounts,
    init_pid,
    parse_rfc3339_ns,
    read_json_object,
    split_image,
)

__all__ = ["DOCKER_ROOT", "docker_info"]

DOCKER_ROOT = "/var/lib/docker/containers"


def docker_info(cid: str, root: str = DOCKER_ROOT) -> ContainerInfo | None:
    """Metadata from config.v2.json and hostconfig.json, or None when docker does not know `cid`."""
    cfg = read_json_object(os.path.join(root, cid, "config.v2.json"))
    if cfg is None:
        return None
    host = read_json_object(os.path.join(root, cid, "hostconfig.json")) or {}
    info = ContainerInfo(full_id=cid, runtime="docker", origin="docker config", complete=True)
    name = cfg.get("Name")
    info.name = name.lstrip("/") if isinstance(name, str) else None
    config = cfg.get("Config") or {}
    info.image = config.get("Image") if isinstance(config.get("Image"), str) else None
    info.image_repository, info.image_tag, info.image_digest = split_image(info.image)
    image_id = cfg.get("Image")
    if isinstance(image_id, str):
        info.image_id = image_id.removeprefix("sha256:")
    labels = config.get("Labels") or {}
    info.labels = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}
    info.k8s_pod_name = info.labels.get("io.kubernetes.pod.name")
    info.k8s_ns_name = info.labels.get("io.kubernetes.pod.namespace")
    info.privileged = bool(host.get("Privileged"))
    info.mounts = engine_mounts((cfg.get("MountPoints") or {}).values())
    state = cfg.get("State") or {}
    info.start_ns = parse_rfc3339_ns(state.get("StartedAt"))
    info.init_pid = init_pid(state)
    return info
