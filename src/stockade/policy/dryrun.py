"""A policy's dry run: what it would have denied (and audited) on recorded events.

:func:`dry_run` decides every event as the policy would in Protect, and lists in event order each
one it would deny (verdict ``block``) or audit, with where the event came from (``file:line`` of
a recording, the Event's ``origin``), what it did (:func:`describe_operation`) and the rule that
decided. ``stockade policy test POLICY --against RECORDING`` prints it; promotion to Protect runs
it on the workload's recent events and refuses if anything would have been denied.

Which events count: by default those of the policy's own workload (``spec.workload``, against
:func:`stockade.behavior.workload.workload_of_event` of each event); ``workload`` names another
(a recording of the same service under another name), ``all_workloads`` takes every event, as if
the policy applied to all of them. Events of other sources than ``syscall`` (Kubernetes audit)
are not operations and are skipped, as are events that are no operation (a failed call, an exit).
Reading recordings is the caller's (:mod:`stockade.sources`); this takes events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from stockade.behavior.ops import FileOp, NetOp, Operation, PrivOp, ProcessOp, is_runtime, operation_of
from stockade.behavior.workload import workload_of_event
from stockade.model.event import SYSCALL, Event
from stockade.model.timeutil import event_time_ns
from stockade.policy.compile import CompiledPolicy, Resolver
from stockade.policy.decision import Verdict
from stockade.policy.model import WorkloadPolicy

__all__ = ["DryRunReport", "Finding", "describe_operation", "dry_run"]


def describe_operation(op: Operation) -> str:
    """What an operation did, in a few words (``exec /usr/bin/cat /etc/shadow``)."""
    if isinstance(op, ProcessOp):
        text = f"exec {op.exe}" + (f" {op.args}" if op.args else "")
        return text + (f" (parent {op.parent})" if op.parent else "")
    if isinstance(op, FileOp):
        return f"open {op.path} ({', '.join(op.access)})"
    if isinstance(op, NetOp):
        proto = op.protocol or "ip"
        if op.direction == "egress":
            return f"connect {proto} {op.ip}:{op.port}"
        if op.direction == "ingress":
            return f"accept {proto} from {op.ip} on port {op.port}"
        return f"listen {proto} {op.ip}:{op.port}"
    assert isinstance(op, PrivOp)
    return f"privileged {op.operation}"


@dataclass(frozen=True, slots=True)
class Finding:
    """One event the policy would deny or audit."""

    #: the event's position among the events given (1-based)
    index: int
    #: where it came from ("recording.jsonl:12"), None when unknown
    origin: str | None
    operation: Operation
    verdict: Verdict
    time_ns: int | None = None

    @property
    def where(self) -> str:
        """The origin, or the event's position."""
        return self.origin or f"event {self.index}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "index": self.index,
            "origin": self.origin,
            "time_ns": self.time_ns,
            "action": self.verdict.action,
            "rule": self.verdict.rule,
            "operation": describe_operation(self.operation),
        }


@dataclass(slots=True)
class DryRunReport:
    """What a dry run found (module docstring)."""

    policy: str
    #: the workload whose events were considered; None: every event
    workload: str | None
    #: events given, events of the workload, operations decided among those
    events: int = 0
    considered: int = 0
    decided: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def denied(self) -> list[Finding]:
        """The events the policy would deny, in order."""
        return [f for f in self.findings if f.verdict.action == "block"]

    @property
    def audited(self) -> list[Finding]:
        """The events the policy would let through with an alert, in order."""
        return [f for f in self.findings if f.verdict.action == "audit"]

    @property
    def passed(self) -> bool:
        """Whether nothing would have been denied."""
        return not self.denied

    def by_rule(self) -> dict[str, dict[str, int]]:
        """Per rule, how many events it would deny (``block``) and audit (``audit``), rules in
        the order they first decide."""
        out: dict[str, dict[str, int]] = {}
        for f in self.findings:
            counts = out.setdefault(f.verdict.rule, {"block": 0, "audit": 0})
            counts[f.verdict.action] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "policy": self.policy,
            "workload": self.workload,
            "events": self.events,
            "considered": self.considered,
            "decided": self.decided,
            "denied": len(self.denied),
            "audited": len(self.audited),
            "passed": self.passed,
            "by_rule": self.by_rule(),
            "findings": [f.to_dict() for f in self.findings],
        }

    def render(self) -> str:
        """The report as text: a summary line, one line per finding, counts by rule."""
        scope = f"workload {self.workload}" if self.workload is not None else "all workloads"
        lines = [
            f"policy {self.policy} ({scope}): {self.considered} of {self.events} events considered, "
            f"{len(self.denied)} would be denied, {len(self.audited)} audited"
        ]
        for f in self.findings:
            word = "DENY " if f.verdict.action == "block" else "AUDIT"
            lines.append(f"{word} {f.where}: {describe_operation(f.operation)} (rule {f.verdict.rule})")
        if self.findings:
            lines.append("by rule:")
            for rule, c in self.by_rule().items():
                parts = [f"{c['block']} denied"] if c["block"] else []
                parts += [f"{c['audit']} audited"] if c["audit"] else []
                lines.append(f"  {rule}: {', '.join(parts)}")
        return "\n".join(lines) + "\n"


class _WorkloadOf:
    """An event's workload id, derived once per container."""

    def __init__(self) -> None:
        self.cache: dict[Any, str] = {}

    def __call__(self, data: dict[str, Any]) -> str:
        key = data.get("container.id")
        wid = self.cache.get(key)
        if wid is None:
            wid = self.cache[key] = workload_of_event(data).id
        return wid


def dry_run(
    policy: CompiledPolicy | WorkloadPolicy,
    events: Iterable[Event | dict[str, Any]],
    *,
    workload: str | None = None,
    all_workloads: bool = False,
    resolve: Resolver | None = None,
) -> DryRunReport:
    """Decide `events` as `policy` would (module docstring); `resolve` for a WorkloadPolicy's
    workload and dns peers (a CompiledPolicy has its own)."""
    compiled = policy if isinstance(policy, CompiledPolicy) else CompiledPolicy(policy, resolve=resolve)
    target = None if all_workloads else (workload or compiled.workload)
    report = DryRunReport(compiled.name, target)
    workload_of = _WorkloadOf()
    for n, ev in enumerate(events, 1):
        report.events += 1
        if isinstance(ev, Event):
            if ev.source != SYSCALL:
                continue
            data, origin = ev.data, ev.origin
        else:
            data, origin = ev, None
        if target is not None and workload_of(data) != target:
            continue
        report.considered += 1
        op = None if is_runtime(data) else operation_of(data)  # the runtime's setup: as zero trust
        if op is None:
            continue
        report.decided += 1
        verdict = compiled.decide(op)
        if verdict.action != "allow":
            report.findings.append(Finding(n, origin, op, verdict, event_time_ns(data, SYSCALL)))
    return report
