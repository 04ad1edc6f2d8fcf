"""podman containers: metadata from ``podman container inspect``."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import orjson

from stockade.model.errorlog import ErrorLog
from stockade.sensor.containers.info import (
    ContainerInfo,
    engine_mounts,
    init_pid,
    parse_rfc3339_ns,
    split_image,
)

__all__ = ["PodmanClient", "info_from_inspect"]


class PodmanClient:
    """Runs ``podman container inspect`` (the environment, CONTAINERS_CONF included, is inherited)."""

    def __init__(self, binary: str | None = None, timeout_s: float = 10.0) -> None:
        self.binary = binary or shutil.which("podman")
        self.timeout_s = timeout_s
        self.calls = 0
        #: why inspect calls failed (the latest kept)
        self.problems = ErrorLog("podman")

    @property
    def available(self) -> bool:
        """Whether podman is installed."""
        return self.binary is not None

    @property
    def errors(self) -> list[str]:
        """The latest failures, oldest first."""
        return self.problems.errors

    def inspect(self, cid: str) -> dict[str, Any] | None:
        """The inspect object of a container, or None (podman missing, no such container)."""
        if self.binary is None:
            return None
        self.calls += 1
        try:
            proc = subprocess.run(
                [self.binary, "container", "inspect", "--format", "json", cid],
                capture_output=True,
                timeout=self.timeout_s,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            self._error(f"podman inspect {cid[:12]}: {e}")
            return None
        if proc.returncode != 0:
            self._error(f"podman inspect {cid[:12]}: {proc.stderr.decode('utf-8', 'replace').strip()[:200]}")
            return None
        try:
            data = orjson.loads(proc.stdout)
        except orjson.JSONDecodeError as e:
            self._error(f"podman inspect {cid[:12]}: not JSON: {e}")
            return None
        if isinstance(data, list) and data and isinstance(data[0], dict):
            return data[0]
        return None

    def _error(self, msg: str) -> None:
        self.problems.report(msg)


def info_from_inspect(d: dict[str, Any]) -> ContainerInfo:
    """Metadata from one ``podman inspect`` object."""
    info = ContainerInfo(
        full_id=str(d.get("Id", "")), runtime="podman", origin="podman inspect", complete=True
    )
    name = d.get("Name")
    info.name = name if isinstance(name, str) and name else None
    image_name = d.get("ImageName")
    if isinstance(image_name, str) and image_name:
        info.image = image_name
        info.image_repository, info.image_tag, digest = split_image(image_name)
        info.image_digest = digest
    digest = d.get("ImageDigest")
    if isinstance(digest, str) and digest:
        info.image_digest = digest
    image_id = d.get("Image")
    info.image_id = image_id if isinstance(image_id, str) and image_id else None
    host = d.get("HostConfig") or {}
    info.privileged = bool(host.get("Privileged"))
    config = d.get("Config") or {}
    labels = config.get("Labels")
    info.labels = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}
    info.mounts = engine_mounts(d.get("Mounts") or [])
    state = d.get("State") or {}
    info.start_ns = parse_rfc3339_ns(state.get("StartedAt")) or parse_rfc3339_ns(d.get("Created"))
    info.init_pid = init_pid(state)
    data = (d.get("GraphDriver") or {}).get("Data") or {}
    if isinstance(data.get("UpperDir"), str):
        info.upperdir = data["UpperDir"]
    if isinstance(data.get("MergedDir"), str):
        info.rootfs = data["MergedDir"]
    elif isinstance(d.get("Rootfs"), str) and d["Rootfs"]:
        info.rootfs = d["Rootfs"]
    # pods made by `podman kube play` carry the Kubernetes names as labels/annotations
    ann = config.get("Annotations") or {}
    for src in (info.labels, ann if isinstance(ann, dict) else {}):
        info.k8s_pod_name = info.k8s_pod_name or src.get("io.kubernetes.pod.name")
        info.k8s_ns_name = info.k8s_ns_name or src.get("io.kubernetes.pod.namespace")
    return info
