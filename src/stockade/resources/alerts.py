"""Alerts for sustained resource deviations, in Falco's shape: one rule per metric (so each can be
routed, disabled or muted per workload like any rule), with ATT&CK tags and the evidence in the
output fields.

``output_fields``: the container's fields (``container.id``, ``container.full_id``,
``container.name``, ``container.image.repository``, ``k8s.ns.name``, ``k8s.pod.name``, as far as
known), ``stockade.workload``, ``stockade.metric``, ``stockade.unit``, ``stockade.value`` (the
latest sample), ``stockade.baseline.p50``, ``stockade.baseline.high``, ``stockade.baseline.limit``,
``stockade.baseline.samples`` (the baseline the value deviates from), ``stockade.window_s``,
``stockade.above`` (``"5/6"``: samples above the limit of the samples in the window) and
``stockade.evidence`` (the window's samples: ``[{"time": RFC 3339, "value": v}, ...]``).
The alert's ``source`` is ``resources``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from stockade.model.alert import Alert
from stockade.model.event import RESOURCES
from stockade.model.timeutil import format_time_ns
from stockade.resources.detector import Finding
from stockade.resources.metrics import UNITS, human

__all__ = ["CONTAINER_FIELDS", "RULES", "SOURCE", "ResourceRule", "resource_alert"]

SOURCE: Final = RESOURCES


@dataclass(frozen=True, slots=True)
class ResourceRule:
    """The rule a metric's deviations are raised under."""

    name: str
    #: what is measured, in the alert's text ("CPU", "egress")
    what: str
    priority: str
    tags: tuple[str, ...]


_COMMON = ("stockade", "container", "resources")

#: metric -> its rule
RULES: Final[dict[str, ResourceRule]] = {
    "cpu": ResourceRule(
        "Container CPU above workload baseline", "CPU", "Warning", (*_COMMON, "mitre_impact", "T1496")
    ),
    "memory": ResourceRule(
        "Container memory above workload baseline", "memory", "Warning", (*_COMMON, "mitre_impact", "T1496")
    ),
    "pids": ResourceRule(
        "Container process count above workload baseline",
        "process count",
        "Warning",
        (*_COMMON, "process", "mitre_impact", "T1499", "T1496"),
    ),
    "open_files": ResourceRule(
        "Container open files above workload baseline",
        "open files",
        "Warning",
        (*_COMMON, "filesystem", "mitre_impact", "T1499"),
    ),
    "rx_bps": ResourceRule(
        "Container network ingress above workload baseline",
        "network ingress",
        "Warning",
        (*_COMMON, "network", "mitre_impact", "T1498"),
    ),
    "tx_bps": ResourceRule(
        "Container network egress above workload baseline",
        "network egress",
        "Warning",
        (*_COMMON, "network", "mitre_exfiltration", "mitre_impact", "T1048", "T1496"),
    ),
}

#: the container fields an alert carries when they are known
CONTAINER_FIELDS: Final = (
    "container.id",
    "container.full_id",
    "container.name",
    "container.image.repository",
    "container.image.tag",
    "k8s.ns.name",
    "k8s.pod.name",
)


def resource_alert(f: Finding, container: Mapping[str, Any], hostname: str) -> Alert:
    """The alert for a sustained deviation `f` of the container whose fields are `container`."""
    rule = RULES[f.metric]
    b = f.baseline
    name = container.get("container.name") or f.container_id[:12]
    output = (
        f"{rule.what} of container {name} ({f.container_id[:12]}) at {human(f.metric, f.value)} for "
        f"{f.window_s:g}s ({f.above}/{f.total} samples above the limit), above its workload's baseline "
        f"(high {human(f.metric, b.high)}, limit {human(f.metric, b.limit)}, from {b.samples} samples) "
        f"in workload {f.workload}"
    )
    fields: dict[str, Any] = {k: container[k] for k in CONTAINER_FIELDS if container.get(k) is not None}
    fields.setdefault("container.id", f.container_id[:12])
    fields.setdefault("container.full_id", f.container_id)
    fields.update(
        {
            "stockade.workload": f.workload,
            "stockade.metric": f.metric,
            "stockade.unit": UNITS[f.metric],
            "stockade.value": round(f.value, 6),
            "stockade.baseline.p50": round(b.p50, 6),
            "stockade.baseline.high": round(b.high, 6),
            "stockade.baseline.limit": round(b.limit, 6),
            "stockade.baseline.samples": b.samples,
            "stockade.window_s": f.window_s,
            "stockade.above": f"{f.above}/{f.total}",
            "stockade.evidence": [{"time": format_time_ns(t), "value": round(v, 6)} for t, v in f.evidence],
        }
    )
    return Alert(
        time_ns=f.time_ns,
        rule=rule.name,
        priority=rule.priority,
        output=output,
        output_fields=fields,
        source=SOURCE,
        tags=list(rule.tags),
        hostname=hostname,
        workload=f.workload,
    )
