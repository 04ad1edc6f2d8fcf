"""Response: the actions a responder or a playbook takes on a container, recorded everywhere.

Actions (``stockade respond ACTION CONTAINER``, ``POST /api/v1/respond/{action}``, playbooks):

* ``isolate`` / ``unisolate``: network isolation with a forensics allow-list
  (:mod:`stockade.enforce.isolate`: cgroup BPF drop and connect denial, nftables in the
  container's netns, established connections cut); undone exactly;
* ``freeze`` / ``thaw``: the cgroup freezer (:mod:`stockade.enforce.freeze`): no CPU progress, the
  processes and their memory kept for evidence;
* ``capture``: an evidence bundle (:mod:`stockade.evidence`), memory dumps taken while frozen;
* ``kill``: every process of the container (``cgroup.kill``), never before its evidence is taken:
  a kill on a container with no bundle captures one first;
* ``notify``: (playbooks) an alert naming the incident to the chosen sinks.

Each action's outcome is recorded on the container's incident (the one given, else the active
incident holding the container) as a timeline entry, in the audit log, and returned. An isolate,
freeze or kill that worked moves an open incident to ``contained``. A container is resolved by
full id, unique id prefix or name (:func:`stockade.sensor.containers.lookup.find_container`).

Playbooks (:mod:`stockade.incidents.playbook`) are checked for every grouped alert
(:meth:`Responder.on_correlated`, called by the incident service's thread); their actions run in
order on the responder's own thread (``stockade-response``) so a capture never holds grouping. An
action that needs approval is recorded on the incident as pending until :meth:`Responder.approve`
(or :meth:`Responder.reject`).
"""

from __future__ import annotations

import dataclasses
import queue
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stockade.config import StockadeConfig
from stockade.enforce.freeze import freeze, is_frozen, thaw
from stockade.errors import NotFoundError, StockadeError, UsageError
from stockade.evidence.bundle import Bundle
from stockade.evidence.desk import EvidenceDesk
from stockade.evidence.layout import MANIFEST, sha256_file
from stockade.incidents.correlate import Correlated, container_of
from stockade.incidents.playbook import (
    ACTIONS,
    PlaybookAction,
    ResponsePlaybook,
    load_playbooks,
    matches,
    plan,
)
from stockade.model.alert import Alert
from stockade.model.errorlog import ErrorLog
from stockade.model.incident import Incident, TimelineEntry
from stockade.runtime.incidents import IncidentService
from stockade.sensor.containers.lookup import FoundContainer
from stockade.sinks.interface import Sink

__all__ = ["ActionFailed", "Outcome", "Responder"]

#: the actions that contain: one that worked moves an open incident to "contained"
_CONTAINING = frozenset({"isolate", "freeze", "kill"})


class ActionFailed(StockadeError):
    """A response action could not be done (the container is gone, the kernel refused, ...)."""

    http_status = 409
    problem_type = "action-failed"
    title = "The response action failed"


@dataclass(slots=True)
class Outcome:
    """What one action did."""

    action: str
    container: str
    ok: bool
    detail: str
    actor: str
    time_ns: int
    id: str = field(default_factory=lambda: f"act-{secrets.token_hex(4)}")
    name: str | None = None
    incident: str | None = None
    playbook: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """As the API and `stockade respond --output json` give it."""
        return {
            "id": self.id,
            "action": self.action,
            "container": self.container,
            "name": self.name,
            "ok": self.ok,
            "detail": self.detail,
            "actor": self.actor,
            "time_ns": self.time_ns,
            "incident": self.incident,
            "playbook": self.playbook,
            **self.data,
        }


Audit = Callable[[str, str, dict[str, Any], str], object]


class Responder:
    """Runs response actions and playbooks (module docstring)."""

    def __init__(
        self,
        cfg: StockadeConfig,
        *,
        incidents: IncidentService | None = None,
        sinks: Sequence[Sink] = (),
        store: Any = None,
        evidence: EvidenceDesk | None = None,
        audit: Audit | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.cfg = cfg
        self.incidents = incidents
        self.sinks = {s.name: s for s in sinks}
        self.store = store
        self.audit = audit
        self.clock = clock
        self.playbooks: list[ResponsePlaybook] = load_playbooks(cfg.response.playbooks)
        #: evidence capture (one place for it: the API's /evidence uses the same desk)
        self.evidence = evidence or EvidenceDesk(cfg.data_dir, store=store)
        self.evidence.on_captured = self.captured_evidence
        #: the incident a capture under way is for (the desk's hook records it there)
        self._capture_for: str | None = None
        self._isolator: Any = None
        self._capabilities: dict[str, Any] | None = None
        self._lock = threading.RLock()
        self._fired: set[tuple[str, str]] = set()
        self._jobs: queue.Queue[tuple[ResponsePlaybook, Alert, Incident, str] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        #: what went wrong (playbooks, recording), the latest kept and logged
        self.errors = ErrorLog("response", logger="stockade.response")

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the thread that runs playbooks."""
        if self.playbooks and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="stockade-response", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Finish the playbook actions under way (bounded) and stop. Isolations and freezes stay:
        a responder lifts them (the container must not be let loose by a restart)."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(timeout=30.0)
            self._thread = None

    def drain(self, timeout_s: float = 30.0) -> bool:
        """Wait until every queued playbook has run (tests)."""
        end = time.monotonic() + timeout_s
        while self._jobs.unfinished_tasks:
            if time.monotonic() > end:
                return False
            time.sleep(0.02)
        return True

    def capabilities(self) -> dict[str, Any]:
        """What this node can do to contain a container, measured once (about a second)."""
        if self._capabilities is None:
            from stockade.enforce.response_probe import response_capabilities

            self._capabilities = {
                name: {"ok": m.available, "detail": m.reason} for name, m in response_capabilities().items()
            }
        return self._capabilities

    def status(self, *, probe: bool = True) -> dict[str, Any]:
        """For `stockade respond status` (with the capability probe) and `stockade status`."""
        return {
            "capabilities": self.capabilities() if probe else self._capabilities,
            "isolated": self._isolator.isolated() if self._isolator is not None else [],
            "playbooks": [p.name for p in self.playbooks],
            "queued": self._jobs.qsize(),
            "errors": self.errors.total,
            "last_errors": self.errors.errors,
        }

    # -- actions ----------------------------------------------------------------------------------
    def act(
        self,
        action: str,
        ref: str,
        *,
        actor: str,
        incident: str | None = None,
        allow: Sequence[str] = (),
        memory: Sequence[str] = (),
        pids: Sequence[int] = (),
        reason: str = "",
        playbook: str | None = None,
    ) -> Outcome:
        """Run one action on the container `ref` names; recorded (module docstring). An action
        that fails is recorded too, and its outcome says why (``ok`` False)."""
        if action not in ACTIONS or action == "notify":
            raise UsageError(
                f"unknown action {action!r} (one of {', '.join(a for a in ACTIONS if a != 'notify')})"
            )
        target = self.evidence.find(ref)
        with self._lock:
            t0 = self.clock()
            try:
                detail, data = getattr(self, f"_do_{action}")(
                    target,
                    allow=allow,
                    memory=memory,
                    pids=pids,
                    reason=reason,
                    actor=actor,
                    incident=incident,
                )
                ok = True
            except StockadeError as e:
                detail, data, ok = str(e), {}, False
            except OSError as e:
                detail, data, ok = f"{type(e).__name__}: {e}", {}, False
            # the time it was done (a kill's capture comes before it on the timeline); started in data
            data["started_ns"] = t0
            out = Outcome(
                action,
                target.id,
                ok,
                detail,
                actor,
                self.clock(),
                name=target.name,
                playbook=playbook,
                data=data,
            )
            if action == "capture" and ok:
                out.incident = incident  # recorded by the desk's hook (captured_evidence)
                if out.incident is None and self.incidents is not None:
                    found = self.incidents.incident_for_container(target.id)
                    out.incident = found.id if found is not None else None
            else:
                self._record(out, incident)
        return out

    def _isolator_(self) -> Any:
        if self._isolator is None:
            from stockade.enforce.isolate import Isolator

            # pinned beside zero trust's programs (bpffs: gone at reboot, as isolation is); the
            # state beside them in the data directory
            self._isolator = Isolator(
                pin_dir=f"{self.cfg.zero_trust.enforcement.pin_dir}/isolate",
                state_dir=str(Path(self.cfg.data_dir) / "isolate"),
            )
        return self._isolator

    def _do_isolate(
        self, target: FoundContainer, *, allow: Sequence[str], **_: Any
    ) -> tuple[str, dict[str, Any]]:
        allow = list(allow) or list(self.cfg.response.forensics_allow)
        res = self._isolator_().isolate(target.id, target.cgroup2_dir, target.init_pid, allow)
        d = res.to_dict()
        if not res.isolated:
            raise ActionFailed(f"no isolation layer could be applied: {res.failed or res.skipped}")
        layers = ", ".join(res.applied)
        cut = f"; {len(res.cut)} connections cut" if res.cut else ""
        problems = f"; failed: {res.failed}" if res.failed else ""
        return f"isolated by {layers} (allowed: {', '.join(allow) or 'nothing'}){cut}{problems}", {
            "isolation": d,
            **_k8s_isolation(target, allow),
        }

    def _do_unisolate(self, target: FoundContainer, **_: Any) -> tuple[str, dict[str, Any]]:
        res = self._isolator_().unisolate(target.id)
        if not res.was_isolated:
            raise ActionFailed(f"{target.name or target.id[:12]} is not isolated")
        if res.failed:
            raise ActionFailed(f"isolation only partly lifted: {res.failed}")
        return f"isolation lifted ({', '.join(res.removed)})", {"isolation": res.to_dict()}

    def _do_freeze(self, target: FoundContainer, **_: Any) -> tuple[str, dict[str, Any]]:
        res = freeze(target.cgroup2_dir)
        if not res.done:
            raise ActionFailed(f"not frozen ({res.method}): {res.detail}")
        return f"frozen ({res.method}, {res.pids} processes)", {"freeze": dataclasses.asdict(res)}

    def _do_thaw(self, target: FoundContainer, **_: Any) -> tuple[str, dict[str, Any]]:
        res = thaw(target.cgroup2_dir)
        if not res.done:
            raise ActionFailed(f"not thawed ({res.method}): {res.detail}")
        return f"thawed ({res.method})", {"freeze": dataclasses.asdict(res)}

    def _do_capture(
        self,
        target: FoundContainer,
        *,
        memory: Sequence[str],
        pids: Sequence[int],
        reason: str,
        actor: str,
        incident: str | None,
        **_: Any,
    ) -> tuple[str, dict[str, Any]]:
        self._capture_for = incident
        try:
            bundle = self.evidence.capture(
                target.id,
                pids=list(pids) or None,
                memory=list(memory) or None,
                reason=reason or (f"incident {incident}" if incident else "manual capture"),
                actor=actor,
            )
        finally:
            self._capture_for = None
        return f"evidence captured: {bundle.path}", _bundle_info(bundle)

    def _has_evidence(self, container_id: str) -> bool:
        """Whether a bundle of the container exists (the desk's bundles: before a restart too)."""
        return any((b.get("target") or {}).get("container_id") == container_id for b in self.evidence.list())

    def captured_evidence(self, target: FoundContainer, bundle: Bundle, actor: str) -> None:
        """Record a capture (the evidence desk's hook: every capture, `respond capture`, a
        playbook's, `evidence capture` and the one before a kill, is recorded here once)."""
        out = Outcome(
            "capture",
            target.id,
            True,
            f"evidence captured: {bundle.path}",
            actor or "api",
            self.clock(),
            name=target.name,
            data=_bundle_info(bundle),
        )
        self._record(out, self._capture_for)

    def _do_kill(
        self, target: FoundContainer, *, actor: str, incident: str | None, **_: Any
    ) -> tuple[str, dict[str, Any]]:
        from stockade.enforce.kill import kill_container

        data: dict[str, Any] = {}
        if not self._has_evidence(target.id):
            # evidence is never destroyed before it is taken
            _detail, captured = self._do_capture(
                target, memory=(), pids=(), reason="before kill", actor=actor, incident=incident
            )
            data["capture"] = captured
        if is_frozen(target.cgroup2_dir):
            thaw(target.cgroup2_dir)  # a v1-frozen task does not die until thawed
        res = kill_container(target.cgroup2_dir)
        if not res.empty:
            raise ActionFailed(f"processes of {target.id[:12]} survived the kill ({res.method})")
        data["kill"] = {"method": res.method, "pids": res.pids, "elapsed_s": round(res.elapsed_s, 3)}
        return f"killed {res.pids} processes ({res.method})", data

    # -- recording --------------------------------------------------------------------------------
    def _record(self, out: Outcome, incident: str | None) -> None:
        inc_id = incident
        if inc_id is None and self.incidents is not None:
            found = self.incidents.incident_for_container(out.container)
            inc_id = found.id if found is not None else None
        out.incident = inc_id
        if self.audit is not None:
            try:
                self.audit("response", out.container, out.to_dict(), out.actor)
            except Exception as e:  # the audit log reports its own failures
                self.errors.report(f"audit: {e}")
        if inc_id is None or self.incidents is None:
            return
        kind = "evidence" if out.action == "capture" and out.ok else "action"
        verb = "" if out.ok else " FAILED"
        summary = f"{out.action}{verb} {out.name or out.container[:12]}: {out.detail}"
        entry_data = {k: v for k, v in out.to_dict().items() if k not in ("actor", "time_ns")}
        entries = [TimelineEntry(out.time_ns, kind, summary[:1000], out.actor, entry_data)]

        def change(inc: Incident) -> None:
            if out.ok and out.action in _CONTAINING and inc.status in ("open", "investigating"):
                entries.append(
                    TimelineEntry(
                        self.clock(),
                        "state",
                        f"status {inc.status} -> contained",
                        out.actor,
                        {"from": inc.status, "to": "contained"},
                    )
                )
                inc.status = "contained"

        try:
            self.incidents.record(inc_id, entries, change=change)
        except StockadeError as e:
            self.errors.report(f"incident {inc_id}: {e}")

    # -- playbooks --------------------------------------------------------------------------------
    def on_correlated(self, alert: Alert, c: Correlated) -> None:
        """Queue the playbooks whose trigger this alert meets (once per incident unless said)."""
        cid = container_of(alert)
        for pb in self.playbooks:
            if not matches(pb, alert, c.incident, cid):
                continue
            key = (pb.name, c.incident.id)
            if pb.spec.once_per_incident:
                if key in self._fired:
                    continue
                self._fired.add(key)
            self._jobs.put((pb, alert, c.incident, cid or ""))

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                self._run_playbook(*job)
            except Exception as e:  # one playbook's failure never stops the others
                self.errors.report(f"playbook failed: {type(e).__name__}: {e}")
            finally:
                self._jobs.task_done()

    def _run_playbook(self, pb: ResponsePlaybook, alert: Alert, inc: Incident, cid: str) -> None:
        actor = f"playbook:{pb.name}"
        for step in plan(pb):
            if step.approval == "required":
                self._request_approval(pb, step, inc, cid, alert)
                if step.action == "kill":
                    break  # nothing runs after a kill that waits: the container may be gone
                continue
            if step.action == "notify":
                self._notify(pb, step, alert, inc)
                continue
            if not cid:
                continue
            try:
                out = self.act(
                    step.action,
                    cid,
                    actor=actor,
                    incident=inc.id,
                    allow=step.allow,
                    memory=step.memory,
                    reason=f"playbook {pb.name}: {alert.rule}",
                    playbook=pb.name,
                )
            except (NotFoundError, UsageError) as e:
                self.errors.report(f"{pb.name}: {step.action}: {e}")
                break
            if not out.ok:
                break  # graduated: a failed step stops the ones after it

    def _notify(self, pb: ResponsePlaybook, step: PlaybookAction, alert: Alert, inc: Incident) -> None:
        names = step.sinks or tuple(self.sinks)
        note = Alert(
            time_ns=self.clock(),
            rule=f"Incident response: {pb.name}",
            priority=inc.priority,
            output=(
                f"Incident {inc.id} ({inc.severity}, score {inc.score:.0f}) in {inc.workload or inc.key}: "
                f"playbook {pb.name} triggered by {alert.rule}"
            ),
            output_fields={"container.id": container_of(alert) or "host", "incident.id": inc.id},
            source="response",
            tags=list(dict.fromkeys([*alert.tags, "incident"])),
            hostname=alert.hostname,
            workload=inc.workload,
            extra={"incident": inc.id, "score": inc.score, "playbook": pb.name, "alert": alert.id},
        )
        sent = []
        for n in names:
            sink = self.sinks.get(n)
            if sink is None:
                self.errors.report(f"{pb.name}: notify: no sink named {n!r}")
                continue
            sink.emit(note)
            sent.append(n)
        if self.incidents is not None:
            self.incidents.record(
                inc.id,
                [
                    TimelineEntry(
                        note.time_ns,
                        "action",
                        f"notify {', '.join(sent) or 'nobody'} ({pb.name})",
                        f"playbook:{pb.name}",
                        {"action": "notify", "sinks": sent},
                    )
                ],
            )

    def _request_approval(
        self, pb: ResponsePlaybook, step: PlaybookAction, inc: Incident, cid: str, alert: Alert
    ) -> None:
        pending = {
            "id": f"act-{secrets.token_hex(4)}",
            "action": step.action,
            "container": cid,
            "playbook": pb.name,
            "allow": list(step.allow),
            "memory": list(step.memory),
            "requested_ns": self.clock(),
            "alert": alert.id,
        }
        if self.incidents is None:
            return

        def change(i: Incident) -> None:
            i.pending.append(pending)

        self.incidents.record(
            inc.id,
            [
                TimelineEntry(
                    self.clock(),
                    "action",
                    f"{step.action} {cid[:12]} waits for approval ({pending['id']})",
                    f"playbook:{pb.name}",
                    pending,
                )
            ],
            change=change,
        )

    def _take_pending(self, incident: str, action_id: str) -> tuple[Incident, dict[str, Any]]:
        if self.incidents is None:
            raise UsageError("incidents are disabled here: nothing waits for approval")
        taken: list[dict[str, Any]] = []

        def change(i: Incident) -> None:
            for p in list(i.pending):
                if p.get("id") == action_id:
                    i.pending.remove(p)
                    taken.append(p)

        inc = self.incidents.record(incident, [], change=change)
        if not taken:
            raise NotFoundError(f"incident {inc.id} has no pending action {action_id!r}")
        return inc, taken[0]

    def approve(self, incident: str, action_id: str, *, actor: str) -> Outcome:
        """Run a pending action, approved by `actor`."""
        inc, p = self._take_pending(incident, action_id)
        return self.act(
            p["action"],
            p["container"],
            actor=actor,
            incident=inc.id,
            allow=p.get("allow") or (),
            memory=p.get("memory") or (),
            reason=f"approved by {actor} (playbook {p.get('playbook')})",
            playbook=p.get("playbook"),
        )

    def reject(self, incident: str, action_id: str, *, actor: str) -> dict[str, Any]:
        """Drop a pending action, recorded."""
        inc, p = self._take_pending(incident, action_id)
        if self.incidents is not None:
            self.incidents.record(
                inc.id,
                [
                    TimelineEntry(
                        self.clock(),
                        "action",
                        f"{p['action']} {p['container'][:12]} rejected ({action_id})",
                        actor,
                        p,
                    )
                ],
            )
        return p


def _k8s_isolation(target: FoundContainer, allow: Sequence[str]) -> dict[str, Any]:
    """For a pod: the deny-all NetworkPolicy for the cluster too, and how to label the pod it
    selects (to apply with kubectl: no API server is reached from here)."""
    info = target.info
    if not (info.k8s_pod_name and info.k8s_ns_name):
        return {}
    from stockade.enforce.k8s_policy import (
        QUARANTINE_LABEL,
        network_policy,
        network_policy_yaml,
        quarantine_labels,
    )

    pod, ns = info.k8s_pod_name, info.k8s_ns_name
    policy = network_policy(pod, ns, quarantine_labels(pod), allow)
    return {
        "network_policy": network_policy_yaml(policy),
        "label_pod": f"kubectl -n {ns} label pod {pod} {QUARANTINE_LABEL}={quarantine_labels(pod)[QUARANTINE_LABEL]}",
    }


def _bundle_info(bundle: Bundle) -> dict[str, Any]:
    """What the incident's evidence entry shows of a bundle: id, path, manifest hash, file count."""
    summary = bundle.summary()
    return {
        "bundle": bundle.id,
        "path": str(bundle.path),
        "manifest_sha256": sha256_file(bundle.path / MANIFEST)[0],
        "files": summary.get("files"),
        "frozen": summary.get("frozen"),
        "problems": summary.get("problems"),
    }
