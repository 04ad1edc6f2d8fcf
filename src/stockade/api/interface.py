"""What the API serves: the :class:`RuntimeView` protocol the running pipeline implements.

Its own module so that the app factory (:mod:`stockade.api.app`) and the request dependencies
(:mod:`stockade.api.deps`) both import it without importing each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from stockade.model.alert import Alert
from stockade.model.event import Event
from stockade.model.incident import Incident
from stockade.model.mute import Mute, MuteRequest


class ZeroTrustView(Protocol):
    """What the API needs of zero trust (implemented by :class:`stockade.runtime.zerotrust.ZeroTrust`)."""

    def list(self) -> list[dict[str, Any]]:
        """Every workload: id, mode, containers, profile summary, policy."""
        ...

    def show(self, wid: str) -> dict[str, Any]:
        """One workload with its mode history; NotFoundError if unknown."""
        ...

    def profile(self, wid: str) -> dict[str, Any]:
        """The workload's learned profile (newest image digest)."""
        ...

    def set_mode(self, target: str, mode: str, *, who: str, why: str, force: bool = False) -> dict[str, Any]:
        """Change a workload's mode (or a pattern's); ModeRefused (409) when the dry run fails."""
        ...

    def apply_policy(self, text: str, origin: str, *, who: str) -> dict[str, Any]:
        """Apply a WorkloadPolicy (YAML); PolicyError naming file, line and field."""
        ...

    def generate(self, wid: str) -> str:
        """A WorkloadPolicy generated from the workload's profile (YAML)."""
        ...

    def policy_text(self, wid: str) -> str:
        """The policy in force for a workload (YAML)."""
        ...

    def status(self) -> dict[str, Any]:
        """Counts per mode, counters, what this node can enforce."""
        ...


class IncidentsView(Protocol):
    """What the API needs of the incident service (:class:`stockade.runtime.incidents.IncidentService`)."""

    def update(
        self,
        ref: str,
        *,
        actor: str,
        status: str | None = None,
        owner: str | None = None,
        note: str | None = None,
    ) -> Incident:
        """A responder's change to an incident (status, owner, a note), recorded on its timeline."""
        ...


class ResponderView(Protocol):
    """What the API needs of the responder (:class:`stockade.runtime.response.Responder`)."""

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
    ) -> Any:
        """Run one action on a container; its outcome (``to_dict()``, ``ok``, ``detail``)."""
        ...

    def approve(self, incident: str, action_id: str, *, actor: str) -> Any:
        """Run an action a playbook left pending; its outcome."""
        ...

    def reject(self, incident: str, action_id: str, *, actor: str) -> dict[str, Any]:
        """Drop a pending action."""
        ...

    def status(self) -> dict[str, Any]:
        """Playbooks, queued work, what this node can enforce."""
        ...


class VulnerabilitiesView(Protocol):
    """What the API needs of runtime-aware vulnerabilities (:class:`stockade.runtime.vulnwatch.VulnWatch`)."""

    def vulnerabilities(self, workload: str | None = None) -> dict[str, Any]:
        """The ranked findings overall and per workload."""
        ...

    def find(self, package: str, version: str | None = None) -> dict[str, Any]:
        """Every asset holding the package (in the version range), and whether it is loaded."""
        ...


class ResourcesView(Protocol):
    """What the API needs of resource monitoring (:class:`stockade.runtime.resources.ResourceMonitor`)."""

    def latest(self) -> list[dict[str, Any]]:
        """The latest sample of every running container, with its workload and risk columns."""
        ...

    def history(
        self, container: str, *, since_ns: int | None, until_ns: int | None, limit: int
    ) -> dict[str, Any]:
        """One container's stored samples in a time range, oldest first; NotFoundError if none."""
        ...

    def relearn(self, workload: str) -> dict[str, Any]:
        """Forget a workload's learned baseline (it learns again); NotFoundError if it has none."""
        ...


class CertsView(Protocol):
    """What the API needs of certificate scanning (:class:`stockade.runtime.certwatch.CertMonitor`)."""

    def latest(self, expiring_days: float | None = None) -> dict[str, Any]:
        """The latest scan's certificates, summary and problems."""
        ...


class DriftView(Protocol):
    """What the API needs of drift checks (:class:`stockade.runtime.driftwatch.DriftMonitor`)."""

    def drift(self, ref: str) -> dict[str, Any]:
        """A running container's drift, checked now."""
        ...


class EvidenceView(Protocol):
    """What the API needs of evidence capture (:class:`stockade.evidence.desk.EvidenceDesk`)."""

    def capture(
        self,
        container: str,
        *,
        pids: Sequence[int] | None = None,
        memory: Sequence[int | str] | None = None,
        reason: str = "",
        actor: str = "",
        command: str | None = None,
    ) -> Any:
        """Capture a running container (id, id prefix or name) into a sealed bundle (a Bundle:
        ``id``, ``path``, ``manifest``); NotFoundError, UsageError for a bad pid."""
        ...

    def list(self) -> list[dict[str, Any]]:
        """Every bundle, newest first."""
        ...

    def show(self, ref: str, *, actor: str = "") -> dict[str, Any]:
        """One bundle's manifest, summary and chain of custody."""
        ...

    def verify(self, ref: str, *, actor: str = "") -> dict[str, Any]:
        """Verify one bundle (the report: ``ok``, ``first_problem``, ``problems``, ...)."""
        ...


class RuntimeView(Protocol):
    """What the API needs from the running pipeline (implemented by :mod:`stockade.runtime`)."""

    def rules_info(self) -> list[dict[str, Any]]:
        """The engine's rules: name, priority, source, tags, enabled, desc, condition, output, file, line."""
        ...

    def status(self) -> dict[str, Any]:
        """Backend, rules loaded, events/s, drops, sources, sinks."""
        ...

    def ingest(self, events: list[Event]) -> int:
        """Evaluate and store `events`; the number of alerts produced (forwarded ones included).

        An event whose ``meta["falco_alert"]`` holds a Falco alert (``POST /ingest/falco``) carries
        an external alert: the runtime forwards it, linked to the event, to storage and the sinks.
        Thread-safe.
        """
        ...

    def record(self, events: list[Event]) -> None:
        """Store `events` without evaluating them (an agent's evidence, already evaluated there)."""
        ...

    def ingest_alerts(self, alerts: list[Alert]) -> int:
        """Store external alerts that come without an event and send them to the sinks."""
        ...

    def metrics(self) -> dict[str, Any]:
        """The counters /metrics exposes (stockade.api.metrics reads them at scrape time)."""
        ...

    def reload_rules(self) -> dict[str, Any]:
        """Load and compile the rules again and swap them in; a StockadeError (the running rules
        kept) if they fail."""
        ...

    def now_ns(self) -> int:
        """The clock mutes expire by."""
        ...

    def zero_trust(self) -> ZeroTrustView:
        """Zero trust on this instance; a StockadeError (409) when it has none (no sensor here)."""
        ...

    def resources(self) -> ResourcesView:
        """Resource monitoring on this instance; a StockadeError (409) when it samples none."""
        ...

    def certs(self) -> CertsView:
        """Certificate scanning (NoCerts where there is none)."""
        ...

    def drift(self) -> DriftView:
        """Container drift checks (NoDrift where there are none)."""
        ...

    def vulnerabilities(self) -> VulnerabilitiesView:
        """Runtime-aware vulnerabilities; a StockadeError (409) where nothing is watched."""
        ...

    def incidents(self) -> IncidentsView:
        """The incident service; a StockadeError (409) when incidents are disabled here."""
        ...

    def responder(self) -> ResponderView:
        """Response actions and playbooks; a StockadeError (409) where there are none (no sensor)."""
        ...

    def evidence(self) -> EvidenceView:
        """Evidence capture and bundles of this instance's data directory."""
        ...

    def add_mute(self, request: MuteRequest) -> Mute:
        """Mute a loaded rule for a workload (or everywhere) until an expiry; applies at once."""
        ...

    def list_mutes(self, include_expired: bool = False) -> list[Mute]:
        """The mutes in force, soonest to expire first (with `include_expired`, the expired too)."""
        ...

    def delete_mute(self, mute_id: str) -> Mute:
        """Unmute (id or unique prefix); NotFoundError if there is no such mute."""
        ...
