"""The workloads this node runs, as the zero-trust runtime tracks them: identity, mode, running
containers, one learner per image digest, the policy in force, and recent operations.

Pure state with no threads; :mod:`stockade.runtime.zerotrust` drives it under one lock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from stockade.behavior.learn import Learner
from stockade.behavior.workload import WorkloadRef
from stockade.config import Mode
from stockade.policy.compile import CompiledPolicy
from stockade.policy.model import WorkloadPolicy
from stockade.sensor.containers.discover import RunningContainer
from stockade.sensor.containers.info import ContainerInfo

__all__ = ["KEPT_FIELDS", "Tracked", "WorkloadState", "trimmed"]

#: the fields of an event kept for the dry run that gates Protect (what operation_of reads, and
#: what says where it happened)
KEPT_FIELDS = (
    "evt.time",
    "evt.type",
    "evt.rawres",
    "evt.failed",
    "evt.arg.flags",
    "evt.arg.type",
    "evt.is_open_read",
    "evt.is_open_write",
    "evt.is_open_exec",
    "fd.name",
    "fd.l4proto",
    "fd.sip",
    "fd.sport",
    "fd.cip",
    "fd.lip",
    "fd.lport",
    "proc.name",
    "proc.pid",
    "proc.exepath",
    "proc.pexepath",
    "proc.args",
    "container.id",
    "container.full_id",
    "container.name",
    "container.image.repository",
    "container.image.digest",
    "k8s.ns.name",
    "k8s.pod.name",
)


def trimmed(data: dict[str, Any]) -> dict[str, Any]:
    """The kept fields of an event."""
    return {k: data[k] for k in KEPT_FIELDS if k in data}


@dataclass(slots=True)
class Tracked:
    """A running container of a workload."""

    running: RunningContainer
    info: ContainerInfo
    #: its own IP addresses (none when it shares the host's network namespace)
    addresses: frozenset[str] = frozenset()
    #: when its oldest process started (ns since the epoch; 0 unknown)
    started_ns: int = 0

    @property
    def digest(self) -> str:
        """Its image digest ("" unknown)."""
        return self.info.image_digest or ""


@dataclass(slots=True)
class WorkloadState:
    """One workload (module docstring)."""

    ref: WorkloadRef
    mode: Mode
    mode_since_ns: int
    created_ns: int
    last_seen_ns: int = 0
    #: the newest image digest seen ("" unknown)
    digest: str = ""
    learners: dict[str, Learner] = field(default_factory=dict)
    containers: dict[str, Tracked] = field(default_factory=dict)
    policy: WorkloadPolicy | None = None
    policy_source: str | None = None
    compiled: CompiledPolicy | None = None
    #: the workload and DNS peers its policy names (``workload:ID``, ``dns:NAME``)
    peer_refs: set[str] = field(default_factory=set)
    recent: deque[dict[str, Any]] = field(default_factory=deque)
    #: per image digest (after the first): what that version did that its base did not
    new_by_digest: dict[str, list[str]] = field(default_factory=dict)
    #: profiles changed since they were last saved
    dirty: set[str] = field(default_factory=set)
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The workload id."""
        return self.ref.id

    def learner(self) -> Learner | None:
        """The learner of the newest image digest."""
        return self.learners.get(self.digest)
