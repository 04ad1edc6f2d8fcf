"""The ``WorkloadPolicy`` document (``apiVersion: stockade.dev/v1alpha1``), as pydantic models.

::

    apiVersion: stockade.dev/v1alpha1
    kind: WorkloadPolicy
    metadata:
      name: web                      # the policy's name (alerts name it)
    spec:
      workload: container/localhost/web/web    # the workload id it applies to
      action: block                  # for what no rule names: allow | audit | block
      process:                       # executions
        - name: httpd                # rule name (generated when absent: process-1, ...)
          path: /usr/sbin/httpd      # executable: exact path or glob (* within a component, ** any depth)
          parent: /bin/sh            # optional: the parent's executable (glob)
          args: "-f *"               # optional: glob over the arguments joined by spaces
          action: allow              # allow (default) | audit | block
      file:
        - name: logs
          path: /var/log/app/**      # exact path or glob
          except: [/var/log/app/keys/**]   # optional: globs of paths this rule does not match
          access: [read, write]      # read | write | exec (default: all three)
          action: allow
      network:
        - name: api
          direction: egress          # egress | ingress | listen
          peer: {cidr: 10.0.0.0/8}   # or {workload: ID} or {dns: NAME}; absent: any peer
          ports: [443, "8000-8080"]  # absent: any port
          protocol: tcp              # tcp | udp | any (default)
          action: allow
      privileged:
        - name: drop-privileges
          operation: setuid          # one of stockade.behavior.model.PRIVILEGED_OPS
          action: allow
      syscalls: [read, write, openat]   # the syscalls used (seccomp export); absent: not restricted

Rules that block or audit are checked before allow rules, so an explicit deny wins over a broad
allow. What no rule matches gets ``spec.action`` and is reported as rule ``default``.
Loading with file/line/field errors is :mod:`stockade.policy.load`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from stockade.behavior.model import PRIVILEGED_OPS, FileAccess
from stockade.errors import StockadeError
from stockade.policy.decision import Action

__all__ = [
    "API_VERSION",
    "KIND",
    "FileRule",
    "Metadata",
    "NetworkRule",
    "Peer",
    "PolicyError",
    "PolicySpec",
    "PrivilegedRule",
    "ProcessRule",
    "WorkloadPolicy",
]

API_VERSION = "stockade.dev/v1alpha1"
KIND = "WorkloadPolicy"

_ALL_ACCESS: tuple[FileAccess, ...] = ("read", "write", "exec")
PrivilegedOp = Literal[PRIVILEGED_OPS]  # type: ignore[valid-type]


class PolicyError(StockadeError):
    """A WorkloadPolicy that cannot be used; the location names the file, line and field."""

    title = "Invalid policy"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProcessRule(_Strict):
    """An execution rule."""

    name: str | None = None
    path: str
    parent: str | None = None
    args: str | None = None
    action: Action = "allow"


class FileRule(_Strict):
    """A file access rule. ``except`` (``except_`` in Python, a keyword there) lists path globs:
    a path that `path` matches and one of them matches too is not matched by this rule (other
    rules, and ``spec.action``, decide it), whatever its ``action``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str | None = None
    path: str
    except_: list[str] | None = Field(default=None, validation_alias="except", serialization_alias="except")
    access: list[FileAccess] = Field(default_factory=lambda: list(_ALL_ACCESS))
    action: Action = "allow"


class Peer(_Strict):
    """The other end of a connection: exactly one of cidr, workload, dns."""

    cidr: str | None = None
    workload: str | None = None
    dns: str | None = None


class NetworkRule(_Strict):
    """A network rule."""

    name: str | None = None
    direction: Literal["egress", "ingress", "listen"] = "egress"
    peer: Peer | None = None
    ports: list[int | str] | None = None
    protocol: Literal["tcp", "udp", "any"] = "any"
    action: Action = "allow"


class PrivilegedRule(_Strict):
    """A privileged operation rule."""

    name: str | None = None
    operation: PrivilegedOp
    action: Action = "allow"


class PolicySpec(_Strict):
    """What the policy applies to and allows."""

    workload: str
    action: Action = "block"
    process: list[ProcessRule] = Field(default_factory=list)
    file: list[FileRule] = Field(default_factory=list)
    network: list[NetworkRule] = Field(default_factory=list)
    privileged: list[PrivilegedRule] = Field(default_factory=list)
    syscalls: list[str] | None = None


class Metadata(_Strict):
    """The policy's name and free-form labels/annotations."""

    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class WorkloadPolicy(_Strict):
    """One WorkloadPolicy document."""

    apiVersion: Literal["stockade.dev/v1alpha1"]
    kind: Literal["WorkloadPolicy"]
    metadata: Metadata
    spec: PolicySpec
