"""docs/rule-pack.md's coverage table is the one the pack's tags and tests/attacks' procedures give
(tests/golden/pack_coverage.py), and every technique of the issue's families is performed for real."""

from __future__ import annotations

import pack_coverage

#: the technique families measured against real procedures (issue 18): each must have a rule and a
#: procedure performed in podman
MEASURED = (
    "T1070.003",  # clear command history
    "T1562.003",  # impair command history logging
    "T1098.004",  # SSH authorized keys
    "T1552.003",  # bash history
    "T1496",  # resource hijacking
    "T1053.002",  # at
    "T1070.006",  # timestomp
    "T1564.001",  # hidden files and directories
    "T1560.001",  # archive via utility
    "T1560.002",  # archive via library
    "T1140",  # deobfuscate/decode
    "T1027.001",  # binary padding
    "T1036.008",  # masquerade file type
    "T1036.007",  # double file extension
    "T1489",  # service stop
    "T1048.003",  # exfiltration over unencrypted non-C2 protocol
    "T1546.005",  # trap
    "T1518.001",  # security software discovery
    "T1082",  # system information discovery
)


def test_the_document_holds_the_coverage_table() -> None:
    doc = pack_coverage.document_table(pack_coverage.DOC.read_text())
    assert doc == pack_coverage.table(), "regenerate: .venv/bin/python tests/golden/pack_coverage.py --write"


def test_every_measured_technique_has_a_rule_and_a_real_procedure() -> None:
    rows = {line.split(" | ")[0].strip("| "): line for line in pack_coverage.table().splitlines()[2:]}
    missing = [t for t in MEASURED if t not in rows or rows[t].endswith("| golden events only |")]
    assert missing == [], missing
