"""What the API server would refuse outright, for the kinds and fields the checks read.

Not a full OpenAPI validation: the kinds of the built-in API groups (``apps/v1`` has no
``Deployment2``) and the types of the fields the checks look at (``hostNetwork: "1"``,
``replicas: "2"``, ``runAsUser: "0"``). An object the API server would refuse cannot run, and a
check reading a string where Kubernetes has a boolean would judge it wrongly: the loader reports
it as an error at the field's line and does not scan it. ``null`` is always allowed (unset).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from stockade.k8s.finding import dotted
from stockade.k8s.objects import CONTAINER_LISTS, POD_TEMPLATE_PATHS, Path, value_at

__all__ = ["BUILTIN_KINDS", "problems"]

_CORE: Final = (
    "Pod PodTemplate ReplicationController Service ServiceAccount ConfigMap Secret Namespace Node "
    "PersistentVolume PersistentVolumeClaim Endpoints Event LimitRange ResourceQuota Binding "
    "ComponentStatus List"
)

#: the kinds of each built-in API group ("" is the core group, apiVersion ``v1``)
BUILTIN_KINDS: Final[dict[str, frozenset[str]]] = {
    group: frozenset(kinds.split())
    for group, kinds in {
        "": _CORE,
        "apps": "Deployment StatefulSet DaemonSet ReplicaSet ControllerRevision",
        "batch": "Job CronJob",
        "extensions": "Deployment DaemonSet ReplicaSet Ingress NetworkPolicy PodSecurityPolicy",
        "rbac.authorization.k8s.io": "Role ClusterRole RoleBinding ClusterRoleBinding",
        "networking.k8s.io": "NetworkPolicy Ingress IngressClass IPAddress ServiceCIDR",
        "policy": "PodDisruptionBudget PodSecurityPolicy Eviction",
        "autoscaling": "HorizontalPodAutoscaler Scale",
        "storage.k8s.io": (
            "StorageClass VolumeAttachment CSIDriver CSINode CSIStorageCapacity VolumeAttributesClass"
        ),
        "admissionregistration.k8s.io": (
            "ValidatingWebhookConfiguration MutatingWebhookConfiguration ValidatingAdmissionPolicy "
            "ValidatingAdmissionPolicyBinding MutatingAdmissionPolicy MutatingAdmissionPolicyBinding"
        ),
        "apiextensions.k8s.io": "CustomResourceDefinition",
        "scheduling.k8s.io": "PriorityClass",
        "coordination.k8s.io": "Lease LeaseCandidate",
        "node.k8s.io": "RuntimeClass",
        "discovery.k8s.io": "EndpointSlice",
        "certificates.k8s.io": "CertificateSigningRequest ClusterTrustBundle",
        "events.k8s.io": "Event",
        "flowcontrol.apiserver.k8s.io": "FlowSchema PriorityLevelConfiguration",
        "authentication.k8s.io": "TokenReview TokenRequest SelfSubjectReview",
        "authorization.k8s.io": (
            "SubjectAccessReview SelfSubjectAccessReview LocalSubjectAccessReview SelfSubjectRulesReview"
        ),
        "apiregistration.k8s.io": "APIService",
        "resource.k8s.io": "ResourceClaim ResourceClaimTemplate DeviceClass ResourceSlice",
    }.items()
}

_B, _I, _S, _L, _M = bool, int, str, list, dict

_METADATA: Final = {"name": _S, "namespace": _S, "generateName": _S, "labels": _M, "annotations": _M}
_POD_SPEC: Final = {
    "hostNetwork": _B,
    "hostPID": _B,
    "hostIPC": _B,
    "hostUsers": _B,
    "automountServiceAccountToken": _B,
    "shareProcessNamespace": _B,
    "serviceAccountName": _S,
    "serviceAccount": _S,
    "containers": _L,
    "initContainers": _L,
    "ephemeralContainers": _L,
    "volumes": _L,
    "securityContext": _M,
}
_SECURITY_CONTEXT: Final = {
    "runAsUser": _I,
    "runAsGroup": _I,
    "runAsNonRoot": _B,
    "seccompProfile": _M,
    "seLinuxOptions": _M,
    "appArmorProfile": _M,
    "windowsOptions": _M,
}
_POD_SECURITY_CONTEXT: Final = {**_SECURITY_CONTEXT, "fsGroup": _I, "supplementalGroups": _L, "sysctls": _L}
_CONTAINER: Final = {
    "name": _S,
    "image": _S,
    "imagePullPolicy": _S,
    "securityContext": _M,
    "ports": _L,
    "env": _L,
    "envFrom": _L,
    "volumeMounts": _L,
    "resources": _M,
}
_CONTAINER_SECURITY_CONTEXT: Final = {
    **_SECURITY_CONTEXT,
    "privileged": _B,
    "allowPrivilegeEscalation": _B,
    "readOnlyRootFilesystem": _B,
    "procMount": _S,
    "capabilities": _M,
}
_CAPABILITIES: Final = {"add": _L, "drop": _L}
_REPLICAS: Final = {"replicas": _I}
_NAMES: Final = {_B: "a boolean", _I: "an integer", _S: "a string", _L: "a list", _M: "a mapping"}


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def _fields(body: Any, path: Path, types: Mapping[str, type], out: list[tuple[Path, str]]) -> None:
    if not isinstance(body, dict):
        return
    for key, want in types.items():
        value = body.get(key)
        if value is None:
            continue
        ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
        if not ok:
            out.append(((*path, key), f"{dotted((*path, key))} must be {_NAMES[want]}, not {value!r}"))


def problems(body: dict[str, Any]) -> list[tuple[Path, str]]:
    """What the API server would refuse in `body`: (path, message) each; empty when nothing."""
    kind, api_version = str(body["kind"]), str(body["apiVersion"])
    group = _group(api_version)
    kinds = BUILTIN_KINDS.get(group)
    if kinds is not None and kind not in kinds and not kind.endswith("List"):
        return [(("kind",), f"{api_version} has no kind {kind!r}")]
    out: list[tuple[Path, str]] = []
    if "metadata" in body and body["metadata"] is not None and not isinstance(body["metadata"], dict):
        return [(("metadata",), "metadata must be a mapping")]
    _fields(body.get("metadata"), ("metadata",), _METADATA, out)
    where = POD_TEMPLATE_PATHS.get(kind)
    if where is None or kinds is None:
        return out
    spec_path = where[0]
    if kind in ("Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"):
        _fields(body.get("spec"), ("spec",), _REPLICAS, out)
    spec = value_at(body, spec_path)
    _fields(spec, spec_path, _POD_SPEC, out)
    if not isinstance(spec, dict):
        return out
    _fields(spec.get("securityContext"), (*spec_path, "securityContext"), _POD_SECURITY_CONTEXT, out)
    for list_name in CONTAINER_LISTS:
        containers = spec.get(list_name)
        for i, c in enumerate(containers if isinstance(containers, list) else ()):
            cpath = (*spec_path, list_name, i)
            if not isinstance(c, dict):
                out.append((cpath, f"{dotted(cpath)} must be a mapping, not {c!r}"))
                continue
            _fields(c, cpath, _CONTAINER, out)
            sc = c.get("securityContext")
            _fields(sc, (*cpath, "securityContext"), _CONTAINER_SECURITY_CONTEXT, out)
            if isinstance(sc, dict):
                _fields(
                    sc.get("capabilities"), (*cpath, "securityContext", "capabilities"), _CAPABILITIES, out
                )
    return out
