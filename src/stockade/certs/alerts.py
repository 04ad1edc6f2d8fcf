"""Alerts for certificates that expire soon or have expired, in Falco's shape.

Two builtin rules (listed in :mod:`stockade.runtime.builtin_rules`, so they can be muted like any
rule): :data:`EXPIRING_RULE` (Warning) for a certificate within ``certs.warn_days`` of its expiry,
:data:`EXPIRED_RULE` (Error) for one past it. ``output_fields``: ``cert.subject``, ``cert.issuer``,
``cert.sha256``, ``cert.not_after``, ``cert.days_left``, ``cert.location`` (a path or
``tcp://127.0.0.1:PORT``), ``cert.source`` (file, served), ``cert.locations`` (every place the same
certificate was found in the same container or on the host), and the container's ``container.id``
(``host`` on the host), ``container.full_id``, ``container.name`` and whatever else of it is known.
The alert's ``source`` is ``certs``.
"""

from __future__ import annotations

from typing import Any

from stockade.certs.record import CertRecord
from stockade.model.alert import Alert

__all__ = ["EXPIRED_RULE", "EXPIRING_RULE", "RULES", "SOURCE", "expiry_alert", "expiry_rule"]

EXPIRING_RULE = "Certificate expiring soon"
EXPIRED_RULE = "Certificate expired"
RULES = (EXPIRING_RULE, EXPIRED_RULE)
SOURCE = "certs"
_TAGS = ["stockade", "certificates"]


def expiry_rule(rec: CertRecord, now: float, warn_days: float) -> str | None:
    """The rule `rec` falls under at `now` (None: not within `warn_days` of its expiry)."""
    days = rec.days_left(now)
    if days <= 0:
        return EXPIRED_RULE
    if days <= warn_days:
        return EXPIRING_RULE
    return None


def expiry_alert(
    rec: CertRecord,
    rule: str,
    now: float,
    hostname: str,
    *,
    locations: list[str] | None = None,
    container_fields: dict[str, Any] | None = None,
    workload: str | None = None,
) -> Alert:
    """The alert of `rule` for `rec` (module docstring)."""
    p = rec.place
    days = rec.days_left(now)
    where = f"container {p.container_name or p.container_id[:12]}" if p.container_id else "the host"
    when = f"expired {-days:.1f} days ago" if days <= 0 else f"expires in {days:.1f} days"
    places = locations or [p.location]
    output = (
        f"Certificate {rec.subject or '(no subject)'} {when} ({rec.not_after}), found at "
        f"{', '.join(places[:5])}{' ...' if len(places) > 5 else ''} on {where} "
        f"(issuer {rec.issuer}, sha256 {rec.sha256[:16]})"
    )
    fields: dict[str, Any] = {
        **(container_fields or {}),
        "container.id": p.container_id[:12] if p.container_id else "host",
        "container.full_id": p.container_id or None,
        "container.name": p.container_name,
        "cert.subject": rec.subject,
        "cert.issuer": rec.issuer,
        "cert.sans": rec.sans,
        "cert.sha256": rec.sha256,
        "cert.serial": rec.serial,
        "cert.not_after": rec.not_after,
        "cert.days_left": round(days, 2),
        "cert.location": p.location,
        "cert.source": p.source,
        "cert.locations": places,
    }
    return Alert(
        time_ns=int(now * 1e9),
        rule=rule,
        priority="Error" if rule == EXPIRED_RULE else "Warning",
        output=output,
        output_fields=fields,
        source=SOURCE,
        tags=list(_TAGS),
        hostname=hostname,
        workload=workload,
    )
