"""The rules certificates and drift alerts are raised under are Stockade's builtin rules: listed, so
that `stockade rules mute` accepts them like any loaded rule."""

from __future__ import annotations

from stockade.certs.alerts import EXPIRED_RULE, EXPIRING_RULE
from stockade.inventory.drift import DRIFT_RULE
from stockade.runtime.builtin_rules import BUILTIN_RULES


def test_the_certificate_and_drift_rules_are_builtin() -> None:
    assert {
        "Certificate expiring soon",
        "Certificate expired",
        "Container drift in watched path",
    } <= BUILTIN_RULES
    assert {EXPIRING_RULE, EXPIRED_RULE, DRIFT_RULE} <= BUILTIN_RULES
