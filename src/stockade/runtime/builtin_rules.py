"""The rules the runtime raises alerts under itself (no rules file names them): zero trust's
deviations and denials, the anomaly models', the resource deviations', certificates expiring
or expired, container drift in watched paths, the vulnerability reaction's. They are muted, listed and
routed like any rule."""

from __future__ import annotations

from stockade.certs.alerts import RULES as CERT_RULES
from stockade.inventory.drift import DRIFT_RULE
from stockade.runtime.anomalies import ANOMALY_RULE
from stockade.runtime.deviations import RULES as ZERO_TRUST_RULES
from stockade.runtime.resources import RULE_NAMES as RESOURCE_RULES
from stockade.runtime.vulnwatch import RULE_NAMES as VULN_RULES

__all__ = ["BUILTIN_RULES"]

#: every rule name the runtime's own alerts use
BUILTIN_RULES: frozenset[str] = frozenset(
    {*ZERO_TRUST_RULES, ANOMALY_RULE, *RESOURCE_RULES, *CERT_RULES, DRIFT_RULE, *VULN_RULES}
)
