"""Kubernetes containers (containerd, CRI-O): metadata from the CRI, or from the OCI bundle.

Two ways, the first that answers wins:

* the OCI bundle the runtime wrote (no socket needed): containerd keeps it at
  ``/run/containerd/io.containerd.runtime.v2.task/<namespace>/<id>/config.json``, CRI-O at
  ``/run/containers/storage/overlay-containers/<id>/userdata/config.json``; their annotations name
  the container, the pod, the namespace and the image (``io.kubernetes.cri.*`` for containerd,
  ``io.kubernetes.pod.*`` and ``io.kubernetes.cri-o.*`` for CRI-O);
* ``crictl inspect`` against a CRI socket (``/run/containerd/containerd.sock``,
  ``/run/crio/crio.sock``) when both the socket and crictl exist; skipped otherwise.
"""

from __future__ import annotations

import glob
import os
import shutil
import stat
import subprocess
from typing import Any

import orjson

from stockade.sensor.containers.info import (
    ContainerInfo,
    mount_dict,
    parse_rfc3339_ns,
    read_json_object,
    split_image,
)
from stockade.sensor.containers.runc import oci_mounts, oci_privileged

__all__ = ["BUNDLE_GLOBS", "CRI_SOCKETS", "CriClient", "info_from_bundle", "info_from_crictl"]

CRI_SOCKETS = ("/run/containerd/containerd.sock", "/run/crio/crio.sock", "/var/run/cri-dockerd.sock")
BUNDLE_GLOBS = (
    "/run/containerd/io.containerd.runtime.v2.task/*/{id}/config.json",
    "/run/containers/storage/overlay-containers/{id}/userdata/config.json",
    "/var/lib/containers/storage/overlay-containers/{id}/userdata/config.json",
)


def info_from_bundle(cid: str, spec: dict[str, Any], runtime: str) -> ContainerInfo:
    """Metadata from an OCI spec written by containerd's CRI plugin or CRI-O."""
    ann = spec.get("annotations") or {}
    ann = {str(k): str(v) for k, v in ann.items()} if isinstance(ann, dict) else {}
    info = ContainerInfo(full_id=cid, runtime=runtime, origin="cri bundle", complete=True)
    if "io.kubernetes.cri.container-name" in ann or "io.kubernetes.cri.sandbox-name" in ann:
        info.runtime = "containerd"
        info.name = ann.get("io.kubernetes.cri.container-name")
        info.image = ann.get("io.kubernetes.cri.image-name")
        info.k8s_pod_name = ann.get("io.kubernetes.cri.sandbox-name")
        info.k8s_ns_name = ann.get("io.kubernetes.cri.sandbox-namespace")
        info.k8s_pod_uid = ann.get("io.kubernetes.cri.sandbox-uid")
    else:
        if "io.kubernetes.cri-o.ContainerType" in ann:
            info.runtime = "cri-o"
        info.name = ann.get("io.kubernetes.container.name") or ann.get("io.kubernetes.cri-o.Name")
        info.image = ann.get("io.kubernetes.cri-o.ImageName") or ann.get("io.kubernetes.cri-o.Image")
        info.k8s_pod_name = ann.get("io.kubernetes.pod.name")
        info.k8s_ns_name = ann.get("io.kubernetes.pod.namespace")
        info.k8s_pod_uid = ann.get("io.kubernetes.pod.uid")
        raw_labels = ann.get("io.kubernetes.cri-o.Labels")
        if raw_labels:
            try:
                labels = orjson.loads(raw_labels)
                if isinstance(labels, dict):
                    info.labels = {str(k): str(v) for k, v in labels.items()}
            except orjson.JSONDecodeError:
                pass
        info.start_ns = parse_rfc3339_ns(ann.get("io.kubernetes.cri-o.Created"))
    if not info.labels:
        info.labels = ann
    if info.image:
        info.image_repository, info.image_tag, info.image_digest = split_image(info.image)
    info.mounts = oci_mounts(spec)
    info.privileged = oci_privileged(spec)
    root = spec.get("root") or {}
    if isinstance(root.get("path"), str) and root["path"].startswith("/"):
        info.rootfs = root["path"]
    return info


def info_from_crictl(d: dict[str, Any], runtime: str) -> ContainerInfo | None:
    """Metadata from one ``crictl inspect`` object."""
    status = d.get("status")
    if not isinstance(status, dict) or not isinstance(status.get("id"), str):
        return None
    info = ContainerInfo(full_id=status["id"], runtime=runtime, origin="crictl inspect", complete=True)
    info.name = (status.get("metadata") or {}).get("name")
    info.image = (status.get("image") or {}).get("image")
    if info.image:
        info.image_repository, info.image_tag, info.image_digest = split_image(info.image)
    ref = status.get("imageRef")
    if isinstance(ref, str) and "@" in ref:
        info.image_digest = ref.split("@", 1)[1]
    elif isinstance(ref, str) and ref.startswith("sha256:"):
        info.image_id = ref[7:]
    labels = status.get("labels") or {}
    info.labels = {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}
    info.k8s_pod_name = info.labels.get("io.kubernetes.pod.name")
    info.k8s_ns_name = info.labels.get("io.kubernetes.pod.namespace")
    info.k8s_pod_uid = info.labels.get("io.kubernetes.pod.uid")
    for m in status.get("mounts") or []:
        if isinstance(m, dict):
            prop = str(m.get("propagation") or "").removeprefix("PROPAGATION_").lower()
            info.mounts.append(
                mount_dict(
                    str(m.get("hostPath", "")), str(m.get("containerPath", "")), not m.get("readonly"), prop
                )
            )
    started = status.get("startedAt") or status.get("createdAt")
    info.start_ns = parse_rfc3339_ns(started) if isinstance(started, str) else None
    if isinstance(started, int):
        info.start_ns = started
    extra = d.get("info") or {}
    priv = extra.get("privileged")
    if priv is None:
        priv = (((extra.get("config") or {}).get("linux") or {}).get("security_context") or {}).get(
            "privileged"
        )
    if priv is None and isinstance(extra.get("runtimeSpec"), dict):
        priv = oci_privileged(extra["runtimeSpec"])
    info.privileged = bool(priv)
    pid = extra.get("pid")
    info.init_pid = pid if isinstance(pid, int) and pid > 0 else None
    return info


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


class CriClient:
    """Reads CRI containers' metadata: the OCI bundle first, then crictl against a present socket."""

    def __init__(
        self,
        sockets: tuple[str, ...] = CRI_SOCKETS,
        bundle_globs: tuple[str, ...] = BUNDLE_GLOBS,
        crictl: str | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        self.sockets = sockets
        self.bundle_globs = bundle_globs
        self.crictl = crictl or shutil.which("crictl")
        self.timeout_s = timeout_s
        self.calls = 0

    def bundle(self, cid: str, runtime: str) -> ContainerInfo | None:
        """The container as its OCI bundle on disk describes it, if one is found."""
        for pattern in self.bundle_globs:
            for path in glob.glob(pattern.format(id=cid)):
                spec = read_json_object(path)
                if spec is not None:
                    return info_from_bundle(cid, spec, runtime)
        return None

    def inspect(self, cid: str, runtime: str) -> ContainerInfo | None:
        """The container as ``crictl inspect`` describes it, through the first CRI socket that knows it."""
        if self.crictl is None:
            return None
        for sock in self.sockets:
            if not _is_socket(sock):
                continue
            self.calls += 1
            try:
                proc = subprocess.run(
                    [self.crictl, "--runtime-endpoint", f"unix://{sock}", "inspect", "-o", "json", cid],
                    capture_output=True,
                    timeout=self.timeout_s,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired):
                continue
            if proc.returncode != 0:
                continue
            try:
                data = orjson.loads(proc.stdout)
            except orjson.JSONDecodeError:
                continue
            if isinstance(data, dict):
                info = info_from_crictl(data, "cri-o" if "crio" in sock else runtime)
                if info is not None:
                    return info
        return None

    def resolve(self, cid: str, runtime: str) -> ContainerInfo | None:
        """The bundle's description, else crictl's."""
        return self.bundle(cid, runtime) or self.inspect(cid, runtime)
