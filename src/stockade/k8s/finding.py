"""A failed check on one Kubernetes object: what `stockade k8s scan --output json` prints, one per
line, and what the admission webhook denies or warns with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["K8sFinding", "dotted"]


def dotted(path: tuple[str | int, ...]) -> str:
    """``("spec", "containers", 0, "image")`` -> ``spec.containers[0].image``."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


@dataclass(frozen=True, slots=True)
class K8sFinding:
    """One check failed by one object, at one field."""

    check: str
    severity: str  # CRITICAL | HIGH | MEDIUM | LOW
    controls: tuple[str, ...]  # Pod Security Standards ids (pss:baseline:privileged, ...)
    kind: str
    namespace: str | None
    name: str
    file: str | None
    line: int | None
    message: str
    remediation: str
    title: str = ""
    field: str = ""  # the offending field, dotted (spec.containers[0].securityContext.privileged)

    def as_dict(self) -> dict[str, Any]:
        """The JSON-lines contract: check, severity, controls, resource{kind, namespace, name},
        file, line, message, remediation (then title and field)."""
        return {
            "check": self.check,
            "severity": self.severity,
            "controls": list(self.controls),
            "resource": {"kind": self.kind, "namespace": self.namespace, "name": self.name},
            "file": self.file,
            "line": self.line,
            "message": self.message,
            "remediation": self.remediation,
            "title": self.title,
            "field": self.field,
        }
