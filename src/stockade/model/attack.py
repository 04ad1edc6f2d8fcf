"""MITRE ATT&CK (Enterprise) tactics, in kill-chain order, and the tactics an alert's tags name.

Rules name tactics with Falco's tags (``mitre_execution``, ``mitre_credential_access``) and
techniques by id (``T1059``, ``T1552.001``). :func:`tactics_of` turns either into tactic names in
kill-chain order; incidents use it to see an attack progress (execution, then credential access,
then command and control) and to score it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Final

__all__ = ["TACTICS", "TACTIC_IDS", "TECHNIQUE_TACTICS", "tactic_rank", "tactics_of", "techniques_of"]

#: the Enterprise tactics, in kill-chain order: (name as in Falco's tag after ``mitre_``, id)
TACTICS: Final[tuple[tuple[str, str], ...]] = (
    ("reconnaissance", "TA0043"),
    ("resource_development", "TA0042"),
    ("initial_access", "TA0001"),
    ("execution", "TA0002"),
    ("persistence", "TA0003"),
    ("privilege_escalation", "TA0004"),
    ("defense_evasion", "TA0005"),
    ("credential_access", "TA0006"),
    ("discovery", "TA0007"),
    ("lateral_movement", "TA0008"),
    ("collection", "TA0009"),
    ("command_and_control", "TA0011"),
    ("exfiltration", "TA0010"),
    ("impact", "TA0040"),
)
TACTIC_IDS: Final[dict[str, str]] = dict(TACTICS)
_RANK: Final[dict[str, int]] = {name: i for i, (name, _) in enumerate(TACTICS)}
_BY_ID: Final[dict[str, str]] = {tid: name for name, tid in TACTICS}

#: the main tactic of each technique the rule pack and the behaviour models name (a technique can
#: serve several; this is the one a responder reads it as in a container)
TECHNIQUE_TACTICS: Final[dict[str, str]] = {
    "T1003": "credential_access",
    "T1005": "collection",
    "T1016": "discovery",
    "T1018": "discovery",
    "T1021": "lateral_movement",
    "T1033": "discovery",
    "T1036": "defense_evasion",
    "T1046": "discovery",
    "T1048": "exfiltration",
    "T1053": "persistence",
    "T1055": "defense_evasion",
    "T1057": "discovery",
    "T1059": "execution",
    "T1068": "privilege_escalation",
    "T1070": "defense_evasion",
    "T1071": "command_and_control",
    "T1078": "initial_access",
    "T1082": "discovery",
    "T1083": "discovery",
    "T1090": "command_and_control",
    "T1095": "command_and_control",
    "T1098": "persistence",
    "T1105": "command_and_control",
    "T1110": "credential_access",
    "T1136": "persistence",
    "T1190": "initial_access",
    "T1203": "execution",
    "T1204": "execution",
    "T1222": "defense_evasion",
    "T1496": "impact",
    "T1498": "impact",
    "T1499": "impact",
    "T1505": "persistence",
    "T1528": "credential_access",
    "T1543": "persistence",
    "T1546": "persistence",
    "T1547": "persistence",
    "T1548": "privilege_escalation",
    "T1552": "credential_access",
    "T1560": "collection",
    "T1562": "defense_evasion",
    "T1571": "command_and_control",
    "T1572": "command_and_control",
    "T1609": "execution",
    "T1610": "execution",
    "T1611": "privilege_escalation",
    "T1613": "discovery",
    "T1620": "defense_evasion",
}

_TECHNIQUE = re.compile(r"^T\d{4}(?:\.\d{3})?$")


def tactic_rank(tactic: str) -> int:
    """A tactic's place in the kill chain (0: reconnaissance); unknown tactics after the others."""
    return _RANK.get(tactic, len(_RANK))


def techniques_of(tags: Iterable[str]) -> list[str]:
    """The technique ids among `tags` (``T1059``, ``T1552.001``), in order, once each."""
    return list(dict.fromkeys(t.upper() for t in tags if _TECHNIQUE.match(t.upper())))


def tactics_of(tags: Iterable[str]) -> list[str]:
    """The tactics `tags` name, directly (``mitre_execution``, ``TA0002``) or through a technique,
    in kill-chain order, once each."""
    return list(_tactics(tuple(tags)))


@lru_cache(maxsize=4096)
def _tactics(tags: tuple[str, ...]) -> tuple[str, ...]:
    found: set[str] = set()
    for tag in tags:
        t = tag.strip()
        low = t.lower()
        if low.startswith("mitre_") and low[6:] in _RANK:
            found.add(low[6:])
        elif t.upper() in _BY_ID:
            found.add(_BY_ID[t.upper()])
        elif _TECHNIQUE.match(t.upper()):
            tactic = TECHNIQUE_TACTICS.get(t.upper()[:5])
            if tactic is not None:
                found.add(tactic)
    return tuple(sorted(found, key=tactic_rank))
