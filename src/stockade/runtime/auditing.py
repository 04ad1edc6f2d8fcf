"""What the running node writes to its audit log (:mod:`stockade.audit`): every alert stored, as
the pipeline stores it (:class:`AuditedStore`). Mode, policy, rules and mute changes are recorded
where they happen (:mod:`stockade.runtime.service`, :mod:`stockade.runtime.zerotrust` through its
``on_audit`` callback, :mod:`stockade.runtime.reload`); API requests by the API's middleware
(:mod:`stockade.api.auditing`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stockade.audit.chain import AuditLog
from stockade.audit.node import alert_entry
from stockade.model.alert import Alert
from stockade.model.event import Event
from stockade.runtime.pipeline import EventStore

__all__ = ["AuditedStore", "reload_data", "zero_trust_hook"]


class AuditedStore:
    """The pipeline's store, with each batch of alerts appended to the audit log once stored (a
    failure to append is counted by the log, and does not lose the alerts)."""

    def __init__(self, store: EventStore, audit: AuditLog) -> None:
        self.store = store
        self.audit = audit

    def add_events(self, events: list[Event]) -> None:
        """Keep events (not audited: the alerts they raised are)."""
        self.store.add_events(events)

    def add_alerts(self, alerts: list[Alert]) -> None:
        """Keep alerts, then append one audit record per alert."""
        self.store.add_alerts(alerts)
        self.audit.record_many(alert_entry(a) for a in alerts)


def zero_trust_hook(audit: AuditLog) -> Callable[[str, str, dict[str, Any], str], None]:
    """Zero trust's ``on_audit``: its mode changes (promotions included) and policies applied, to
    the audit log (kinds ``mode`` and ``policy``; the actor is who changed it, ``stockade`` for a
    promotion)."""

    def on_audit(kind: str, subject: str, data: dict[str, Any], actor: str) -> None:
        audit.record(kind, subject, data, actor=actor)

    return on_audit


def reload_data(result: dict[str, Any]) -> dict[str, Any]:
    """The audit record's data of a rules reload (RulesReloader.last)."""
    keep = ("ok", "rules_active", "rules_active_before", "rules_loaded", "error")
    return {k: result[k] for k in keep if k in result}
