"""Alerts for what a workload did outside its policy, in Falco's shape.

Two rules, so that responders can route them apart:

* :data:`DEVIATION_RULE` (Warning): seen and let through (Monitor mode, an ``audit`` rule, or an
  operation this node cannot deny);
* :data:`DENIAL_RULE` (Critical): denied by the kernel (Protect mode).

Each names the workload, the policy and the policy's rule, and what was attempted
(``output_fields``: ``stockade.workload``, ``stockade.policy``, ``stockade.policy_rule``,
``stockade.action``, ``stockade.operation``, ``stockade.target`` plus the process and container
fields known).
"""

from __future__ import annotations

from typing import Any

from stockade.enforce.interface import Denial
from stockade.model.alert import Alert
from stockade.policy.decision import Verdict

__all__ = ["DENIAL_RULE", "DEVIATION_RULE", "FACTS", "RULES", "denial_alert", "deviation_alert"]

DEVIATION_RULE = "Workload policy deviation"
DENIAL_RULE = "Workload policy denial"
RULES = (DEVIATION_RULE, DENIAL_RULE)
_TAGS = ["stockade", "zero_trust", "workload_policy"]
#: the process and container fields an alert about a workload's operation carries
FACTS = (
    "proc.name",
    "proc.pid",
    "proc.exepath",
    "proc.cmdline",
    "proc.pname",
    "user.name",
    "container.id",
    "container.name",
    "container.image.repository",
    "k8s.ns.name",
    "k8s.pod.name",
)


def _alert(
    *,
    blocked: bool,
    workload: str,
    verdict: Verdict,
    operation: str,
    target: str,
    time_ns: int,
    hostname: str,
    facts: dict[str, Any],
) -> Alert:
    what = "denied" if blocked else "not allowed by"
    proc = facts.get("proc.name") or facts.get("proc.exepath") or "?"
    where = facts.get("container.name") or facts.get("container.id") or "host"
    output = (
        f"{operation} {target} {what} policy {verdict.policy} (rule {verdict.rule}, action "
        f"{verdict.action}) in workload {workload} (process {proc} pid {facts.get('proc.pid', '?')}, "
        f"container {where})"
    )
    fields = {
        **{k: v for k, v in facts.items() if v is not None},
        "stockade.workload": workload,
        "stockade.policy": verdict.policy,
        "stockade.policy_rule": verdict.rule,
        "stockade.action": verdict.action,
        "stockade.blocked": blocked,
        "stockade.operation": operation,
        "stockade.target": target,
    }
    return Alert(
        time_ns=time_ns,
        rule=DENIAL_RULE if blocked else DEVIATION_RULE,
        priority="Critical" if blocked else "Warning",
        output=output,
        output_fields=fields,
        source="syscall",
        tags=list(_TAGS),
        hostname=hostname,
        workload=workload,
    )


def deviation_alert(
    data: dict[str, Any],
    workload: str,
    verdict: Verdict,
    operation: str,
    target: str,
    hostname: str,
    time_ns: int,
) -> Alert:
    """The alert for an event (seen by the sensor) that its workload's policy does not allow."""
    facts = {k: data.get(k) for k in FACTS}
    return _alert(
        blocked=False,
        workload=workload,
        verdict=verdict,
        operation=operation,
        target=target,
        time_ns=time_ns,
        hostname=hostname,
        facts=facts,
    )


def denial_alert(d: Denial, workload: str, hostname: str, container_name: str | None) -> Alert:
    """The alert for an enforcer's decision (denied, or audited where it could not deny)."""
    facts: dict[str, Any] = {
        "proc.pid": d.pid,
        "proc.name": d.comm,
        "proc.exepath": d.exe,
        "container.id": d.container[:12] if d.container else "host",
        "container.full_id": d.container or None,
        "container.name": container_name,
    }
    return _alert(
        blocked=d.blocked,
        workload=workload,
        verdict=d.verdict,
        operation=d.kind,
        target=d.target,
        time_ns=d.time_ns,
        hostname=hostname,
        facts=facts,
    )
