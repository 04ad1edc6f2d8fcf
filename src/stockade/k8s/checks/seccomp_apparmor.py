"""Seccomp and AppArmor: the kernel confinement profiles of the pod and its containers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from stockade.k8s.catalogue import Context, Violation, check
from stockade.k8s.checks._pod import container_sc, pod_of, pod_sc, sc_path, windows
from stockade.k8s.objects import K8sObject, Path, PodTemplate

#: the profile types PSS allows for seccompProfile.type and appArmorProfile.type
CONFINED: Final = frozenset({"RuntimeDefault", "Localhost"})
#: the pre-1.30 AppArmor annotation, per container
APPARMOR_ANNOTATION: Final = "container.apparmor.security.beta.kubernetes.io/"


def _profile_type(sc: dict[str, Any], key: str) -> tuple[bool, Any]:
    """(whether `key` is set, its type) of a securityContext."""
    profile = sc.get(key)
    if profile is None:
        return False, None
    return True, profile.get("type") if isinstance(profile, dict) else None


def _bad_profiles(pod: PodTemplate, key: str) -> Iterator[tuple[str, Any, Path]]:
    """(who, type, path) of every explicitly set `key` whose type is not RuntimeDefault/Localhost."""
    is_set, t = _profile_type(pod_sc(pod), key)
    if is_set and t not in CONFINED:
        yield "the pod", t, pod.at("securityContext", key, "type")
    for c in pod.containers():
        is_set, t = _profile_type(container_sc(c), key)
        if is_set and t not in CONFINED:
            yield f"container {c.name!r}", t, sc_path(c, key, "type")


@check(
    "seccomp-unconfined",
    severity="MEDIUM",
    title="Seccomp profile set to Unconfined",
    description=(
        "An Unconfined seccomp profile gives the container every system call, including the "
        "rarely used ones most kernel exploits go through."
    ),
    remediation="Set seccompProfile.type to RuntimeDefault (or Localhost with a profile), or remove it.",
    fix="securityContext:\n  seccompProfile:\n    type: RuntimeDefault\n",
    controls=("pss:baseline:seccomp",),
    nsa=True,
    cis=("5.7.2",),
)
def seccomp_unconfined(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """seccompProfile.type set (pod or any container) to anything but RuntimeDefault or Localhost."""
    pod = pod_of(obj, ctx)
    if pod is None:
        return
    for who, t, path in _bad_profiles(pod, "seccompProfile"):
        yield Violation(f"{who} sets seccompProfile.type={t}", path)


@check(
    "seccomp-profile-missing",
    severity="MEDIUM",
    title="No seccomp profile",
    description=(
        "The restricted profile requires a seccomp profile (RuntimeDefault or Localhost) for "
        "every container, set on the pod or on each container."
    ),
    remediation="Set spec.securityContext.seccompProfile.type: RuntimeDefault on the pod.",
    fix="securityContext:\n  seccompProfile:\n    type: RuntimeDefault\n",
    controls=("pss:restricted:seccomp",),
    nsa=True,
    cis=("5.7.2",),
)
def seccomp_profile_missing(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """A bad seccompProfile anywhere, or a container that sets none while the pod sets no valid one
    (Windows pods are exempt)."""
    pod = pod_of(obj, ctx)
    if pod is None or windows(pod):
        return
    for who, t, path in _bad_profiles(pod, "seccompProfile"):
        yield Violation(f"{who} must not set seccompProfile.type={t}", path)
    pod_set, pod_type = _profile_type(pod_sc(pod), "seccompProfile")
    if pod_set and pod_type in CONFINED:
        return
    for c in pod.containers():
        if not _profile_type(container_sc(c), "seccompProfile")[0]:
            where = sc_path(c, "seccompProfile") if "securityContext" in c.body else c.path
            yield Violation(
                f"pod or container {c.name!r} must set seccompProfile.type to RuntimeDefault or Localhost",
                where,
            )


@check(
    "apparmor-profile",
    severity="MEDIUM",
    title="AppArmor profile disabled or overridden",
    description=(
        "An Unconfined AppArmor profile (field or annotation) removes the runtime's default "
        "AppArmor confinement from the container."
    ),
    remediation=(
        "Set appArmorProfile.type to RuntimeDefault or Localhost (or leave it unset); annotations "
        "must be runtime/default or localhost/<profile>."
    ),
    fix="securityContext:\n  appArmorProfile:\n    type: RuntimeDefault\n",
    controls=("pss:baseline:apparmor",),
    nsa=True,
)
def apparmor_profile(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """appArmorProfile.type (pod, every container) other than RuntimeDefault/Localhost, and AppArmor
    annotations other than empty, runtime/default or localhost/*."""
    pod = pod_of(obj, ctx)
    if pod is None:
        return
    for who, t, path in _bad_profiles(pod, "appArmorProfile"):
        yield Violation(f"{who} sets appArmorProfile.type={t}", path)
    for key, value in pod.annotations.items():
        if not str(key).startswith(APPARMOR_ANNOTATION):
            continue
        v = "" if value is None else str(value)
        if v and v != "runtime/default" and not v.startswith("localhost/"):
            yield Violation(f"annotation {key}={v!r}", (*pod.metadata_path, "annotations", key))
