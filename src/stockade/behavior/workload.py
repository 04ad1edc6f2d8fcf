"""Workload identity: one id per unit of policy, computed from an event's container fields.

* Kubernetes: ``k8s/<namespace>/<kind>/<owner>``, kind one of ``deployment``, ``statefulset``,
  ``daemonset``, ``job``, ``cronjob``, ``pod`` (a bare pod is its own owner). The owner comes from
  the pod's labels when the runtime reports them (``pod-template-hash``, ``controller-revision-hash``
  with ``statefulset.kubernetes.io/pod-name`` or ``pod-template-generation``, ``job-name``), else
  from the shape of the pod's name, which the controllers generate (``web-7d9c8b6f5-x2k4p``,
  ``db-0``, ``agent-x2k4p``, ``backup-28934520-x2k4p``); the random parts use Kubernetes' own
  alphabet (``bcdfghjklmnpqrstvwxz2456789``).
* Plain containers: ``container/<image repository>/<name>`` with a replica suffix removed from the
  name (``web-1``, ``web_2``, ``proj_web_3`` -> ``web``, ``proj_web``); compose projects by their
  labels (``<project>-<service>``). Without a name, the repository alone.
* Host processes: ``host``.

Replicas therefore share one workload (and one profile and policy).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

__all__ = [
    "HOST",
    "OwnerKind",
    "WorkloadRef",
    "is_workload_id",
    "owner_of_pod",
    "parse_workload_id",
    "workload_of_event",
]

HOST = "host"
OwnerKind = Literal["deployment", "statefulset", "daemonset", "job", "cronjob", "pod"]

_K8S_RAND = "[bcdfghjklmnpqrstvwxz2456789]"
_DEPLOY = re.compile(rf"^(.+)-{_K8S_RAND}{{6,10}}-{_K8S_RAND}{{5}}$")
_CRON = re.compile(rf"^(.+)-\d{{8,10}}-{_K8S_RAND}{{5}}$")
_STATEFUL = re.compile(r"^(.+)-\d+$")
_SUFFIXED = re.compile(rf"^(.+)-{_K8S_RAND}{{5}}$")
_CRON_JOB = re.compile(r"^(.+)-\d{8,10}$")
_REPLICA = re.compile(r"^(.+?)[-_.]\d+$")


@dataclass(frozen=True, slots=True)
class WorkloadRef:
    """A workload's id and what it was derived from."""

    id: str
    kind: Literal["k8s", "container", "host"]
    namespace: str | None = None
    owner_kind: OwnerKind | None = None
    owner: str | None = None
    image_repository: str | None = None
    #: a plain container's name (replica suffix removed)
    name: str | None = None


_OWNER_KINDS = frozenset(get_args(OwnerKind))


def parse_workload_id(text: str) -> WorkloadRef | None:
    """The parts of a workload id (``host``, ``k8s/NS/KIND/OWNER``, ``container/REPO[/NAME]``, the
    repository possibly holding ``/``); None when `text` is not one."""
    if text == HOST:
        return WorkloadRef(HOST, "host")
    parts = text.split("/")
    if len(parts) < 2 or not all(parts[1:]):
        return None
    if parts[0] == "k8s" and len(parts) == 4 and parts[2] in _OWNER_KINDS:
        return WorkloadRef(text, "k8s", parts[1], cast("OwnerKind", parts[2]), parts[3])
    if parts[0] == "container":
        if len(parts) == 2:
            return WorkloadRef(text, "container", image_repository=parts[1])
        return WorkloadRef(text, "container", image_repository="/".join(parts[1:-1]), name=parts[-1])
    return None


def is_workload_id(text: str) -> bool:
    """Whether `text` is a workload id (:func:`parse_workload_id`)."""
    return parse_workload_id(text) is not None


def owner_of_pod(pod: str, labels: Mapping[str, str] | None = None) -> tuple[OwnerKind, str]:
    """The controller that owns pod `pod` (its kind and name), from its labels or its name."""
    lab = labels or {}
    job = lab.get("batch.kubernetes.io/job-name") or lab.get("job-name")
    if job:
        m = _CRON_JOB.match(job)
        return ("cronjob", m.group(1)) if m else ("job", job)
    h = lab.get("pod-template-hash")
    if h and pod.count("-") >= 2:
        return "deployment", pod.rsplit("-", 2)[0]
    if "controller-revision-hash" in lab:
        if "statefulset.kubernetes.io/pod-name" in lab:
            return ("statefulset", pod.rsplit("-", 1)[0])
        return ("daemonset", pod.rsplit("-", 1)[0])
    return _owner_from_name(pod)


def _owner_from_name(pod: str) -> tuple[OwnerKind, str]:
    for rx, kind in ((_CRON, "cronjob"), (_DEPLOY, "deployment"), (_STATEFUL, "statefulset")):
        m = rx.match(pod)
        if m:
            return kind, m.group(1)  # type: ignore[return-value]
    m = _SUFFIXED.match(pod)
    if m:
        # a daemonset's or a job's pod: the name alone cannot tell which; both own replicas alike
        return "daemonset", m.group(1)
    return "pod", pod


def _plain_name(name: str, labels: Mapping[str, str]) -> str:
    project = labels.get("com.docker.compose.project")
    service = labels.get("com.docker.compose.service")
    if project and service:
        return f"{project}-{service}"
    m = _REPLICA.match(name)
    return m.group(1) if m else name


def workload_of_event(data: Mapping[str, Any]) -> WorkloadRef:
    """The workload a syscall event (Falco fields) belongs to."""
    cid = data.get("container.id")
    if not cid or cid == HOST:
        return WorkloadRef(HOST, "host")
    labels = data.get("container.labels")
    labels = labels if isinstance(labels, Mapping) else {}
    ns, pod = data.get("k8s.ns.name"), data.get("k8s.pod.name")
    if ns and pod:
        kind, owner = owner_of_pod(str(pod), labels)
        return WorkloadRef(f"k8s/{ns}/{kind}/{owner}", "k8s", str(ns), kind, owner)
    repo = str(data.get("container.image.repository") or data.get("container.image") or "unknown")
    name = data.get("container.name")
    wid = f"container/{repo}/{_plain_name(str(name), labels)}" if name else f"container/{repo}"
    return WorkloadRef(wid, "container", image_repository=repo)
