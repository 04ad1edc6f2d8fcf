"""What several pod checks share: security contexts with their paths, the effective value of a
container setting that falls back to the pod's, the capability lists, hostPath volumes and the
containers mounting them, image references.

The Pod Security Standards (``k8s.io/pod-security-admission/policy``) visit every container of
``containers``, ``initContainers`` and ``ephemeralContainers``; checks that are not PSS controls
choose their lists (ephemeral containers take no resources or probes).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, cast

from stockade.k8s.catalogue import Context
from stockade.k8s.objects import Container, K8sObject, Path, PodTemplate, pod_template
from stockade.model.images import split_image

__all__ = [
    "APP_CONTAINERS",
    "BASELINE_CAPABILITIES",
    "HostPathVolume",
    "ImageRef",
    "added",
    "container_sc",
    "dropped",
    "effective",
    "host_path_volumes",
    "parse_image",
    "pod_of",
    "pod_sc",
    "sc_path",
    "user_namespaced",
    "windows",
]

#: the lists of long-running containers (no ephemeral debug containers)
APP_CONTAINERS: Final = ("containers", "initContainers")

#: PSS baseline "Capabilities": what a container may add (check_capabilities_baseline.go)
BASELINE_CAPABILITIES: Final = frozenset(
    {
        "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
        "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
    }
)  # fmt: skip


_TEMPLATES = "pod.templates"


def pod_of(obj: K8sObject, ctx: Context) -> PodTemplate | None:
    """The pod template of `obj`, found once per scan: every pod check asks for it, and finding it
    is half the cost of the catalogue (kept in ``ctx.cache`` with the object, so an id is never
    mistaken for another object's)."""
    cache = cast("dict[int, tuple[K8sObject, PodTemplate | None]] | None", ctx.cache.get(_TEMPLATES))
    if cache is None:
        cache = {}
        ctx.cache[_TEMPLATES] = cache
    hit = cache.get(id(obj))
    if hit is not None and hit[0] is obj:
        return hit[1]
    pod = pod_template(obj)
    cache[id(obj)] = (obj, pod)
    return pod


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def pod_sc(pod: PodTemplate) -> dict[str, Any]:
    """The pod-level securityContext (empty when missing)."""
    return _mapping(pod.spec.get("securityContext"))


def container_sc(c: Container) -> dict[str, Any]:
    """The container's securityContext (empty when missing)."""
    return _mapping(c.body.get("securityContext"))


def sc_path(c: Container, *keys: str | int) -> Path:
    """The path of ``securityContext.<keys>`` of container `c`."""
    return (*c.path, "securityContext", *keys)


def effective(pod: PodTemplate, c: Container, key: str) -> tuple[Any, Path]:
    """The value of securityContext `key` for container `c`: its own when set, else the pod's (the
    inheritance Kubernetes applies to runAsUser, runAsGroup, runAsNonRoot, seccompProfile,
    seLinuxOptions, appArmorProfile, windowsOptions), and the path where it was found (the
    container's securityContext path when neither sets it)."""
    own = container_sc(c).get(key)
    if own is not None:
        return own, sc_path(c, key)
    inherited = pod_sc(pod).get(key)
    if inherited is not None:
        return inherited, pod.at("securityContext", key)
    return None, sc_path(c, key) if "securityContext" in c.body else c.path


def windows(pod: PodTemplate) -> bool:
    """Whether the pod declares ``spec.os.name: windows`` (PSS restricted exempts Linux-only fields)."""
    return bool(pod.get("os", "name") == "windows")


def user_namespaced(pod: PodTemplate) -> bool:
    """Whether the pod runs in a user namespace (``hostUsers: false``): PSS relaxes runAsNonRoot,
    runAsUser and the baseline procMount for it (policy v1.35)."""
    return pod.spec.get("hostUsers") is False


def _caps(c: Container, which: str) -> list[Any]:
    caps = container_sc(c).get("capabilities")
    value = caps.get(which) if isinstance(caps, dict) else None
    return value if isinstance(value, list) else []


def added(c: Container) -> list[Any]:
    """``capabilities.add`` of container `c`, as written."""
    return _caps(c, "add")


def dropped(c: Container) -> list[Any]:
    """``capabilities.drop`` of container `c`, as written."""
    return _caps(c, "drop")


@dataclass(frozen=True, slots=True)
class HostPathVolume:
    """A hostPath volume: its name, its normalised host path, its index and path in the object."""

    name: str
    host_path: str
    index: int
    path: Path

    def mounts(self, pod: PodTemplate) -> Iterator[tuple[Container, dict[str, Any], Path]]:
        """Every volumeMount of this volume: the container, the mount and its path."""
        for c in pod.containers():
            mounts = c.body.get("volumeMounts")
            if not isinstance(mounts, list):
                continue
            for i, m in enumerate(mounts):
                if isinstance(m, dict) and m.get("name") == self.name:
                    yield c, m, (*c.path, "volumeMounts", i)


def host_path_volumes(pod: PodTemplate) -> Iterator[HostPathVolume]:
    """The hostPath volumes of the pod, their host path normalised (``/var/run/`` -> ``/var/run``)."""
    volumes = pod.spec.get("volumes")
    if not isinstance(volumes, list):
        return
    for i, v in enumerate(volumes):
        if not isinstance(v, dict) or v.get("hostPath") is None:
            continue
        hp = v["hostPath"]
        raw = hp.get("path") if isinstance(hp, dict) else None
        host = posixpath.normpath(str(raw)) if raw else ""
        if host.startswith("//"):
            host = host[1:]
        yield HostPathVolume(str(v.get("name") or ""), host, i, pod.at("volumes", i, "hostPath"))


@dataclass(frozen=True, slots=True)
class ImageRef:
    """An image reference split the way registries read it."""

    registry: str  # docker.io for short names
    repository: str  # library/nginx, acme/app
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """``registry/repository``."""
        return f"{self.registry}/{self.repository}"


def parse_image(image: str) -> ImageRef:
    """Split ``[registry/]repository[:tag][@digest]`` (Docker's rules: the first component is a
    registry when it has a dot or a colon or is ``localhost``; short names are on docker.io)."""
    repo, tag, digest = split_image(image)
    first, sep, remainder = (repo or "").partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first.lower(), remainder
    else:
        registry, repository = "docker.io", repo or ""
        if "/" not in repository:
            repository = f"library/{repository}"
    return ImageRef(registry, repository, tag, digest)
