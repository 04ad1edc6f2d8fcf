"""docker containers: metadata from the daemon's files under /var/lib/docker/containers/<id>/."""

from __future__ import annotations

import os
from typing import Any

import orjson

from stockade.sensor.containers.info import ContainerInfo, mount_dict, parse_rfc3339_ns, split_image

__all__ = ["DOCKER_ROOT", "docker_info"]

DOCKER_ROOT = "/var/lib/docker/containers"


def _load(path: str) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            data = orjson.loads(f.read())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def docker_info(cid: str, root: str = DOCKER_ROOT) -> ContainerInfo | None:
    """Metadata from config.v2.json and hostconfig.json, or None when docker does not know `cid`."""
    cfg = _load(os.path.join(root, cid, "config.v2.json"))
    if cfg is None:
        return None
    host = _load(os.path.join(root, cid, "hostconfig.json")) or {}
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
    for m in (cfg.get("MountPoints") or {}).values():
        if isinstance(m, dict):
            info.mounts.append(
                mount_dict(
                    str(m.get("Source", "")),
                    str(m.get("Destination", "")),
                    bool(m.get("RW")),
                    str(m.get("Propagation") or ""),
                    str(m.get("Mode") or ""),
                )
            )
    state = cfg.get("State") or {}
    info.start_ns = parse_rfc3339_ns(state.get("StartedAt"))
    pid = state.get("Pid")
    info.init_pid = pid if isinstance(pid, int) and pid > 0 else None
    return info
