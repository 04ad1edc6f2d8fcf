"""One node item's verdict: pass, fail, warn (a manual item that needs a look, or a weak but
allowed value) or not-applicable (the component is not on this node), with the evidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

__all__ = ["STATUSES", "Evidence", "NodeResult", "cis_key"]

STATUSES: Final = ("fail", "warn", "pass", "not-applicable")


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where a value was read: the file (as on the node: /var/lib/kubelet/config.yaml, or
    /proc/PID/cmdline), its line when known, and the value found (None: not set there)."""

    file: str
    line: int | None = None
    value: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """``{"file", "line", "value"}``."""
        return {"file": self.file, "line": self.line, "value": self.value}

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return where if self.value is None else f"{where} = {self.value}"


@dataclass(frozen=True, slots=True)
class NodeResult:
    """The verdict on one item: its Stockade id, CIS Kubernetes benchmark id (``4.2.1``; another
    benchmark is prefixed, ``docker:2.2``; empty when none), what it checks, and why."""

    id: str
    cis: str
    component: str  # kubelet | apiserver | controller-manager | scheduler | etcd | containerd | ...
    title: str
    severity: str  # CRITICAL | HIGH | MEDIUM | LOW
    status: str  # one of STATUSES
    message: str
    remediation: str
    evidence: tuple[Evidence, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        """What ``stockade k8s node --output json`` prints, one per line."""
        return {
            "id": self.id,
            "cis": self.cis,
            "component": self.component,
            "title": self.title,
            "severity": self.severity,
            "status": self.status,
            "message": self.message,
            "remediation": self.remediation,
            "evidence": [e.as_dict() for e in self.evidence],
        }


def cis_key(cis: str) -> tuple[str, tuple[int, ...]]:
    """A sort key putting ``1.2.10`` after ``1.2.9`` (other benchmarks after CIS Kubernetes)."""
    prefix, _, num = cis.rpartition(":")
    parts = tuple(int(p) for p in num.split(".") if p.isdigit())
    return (prefix or "", parts) if parts else ("~", ())
