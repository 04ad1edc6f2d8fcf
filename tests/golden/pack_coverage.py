"""The rule pack's coverage table in docs/rule-pack.md: ATT&CK technique -> the pack's rules tagged
with it -> the procedures performed for real in podman with the eBPF sensor that raise one of them.

Written from the pack's tags, the ``PROCEDURES`` of tests/attacks/test_*.py (each counts for the
techniques it names, else for every technique of its rule) and the families of
tests/sensor/test_rule_families.py (``family: <name>``), so the table says what is tested, no more. test_rule_pack_coverage.py checks that the document holds this table;
regenerate it with::

    .venv/bin/python tests/golden/pack_coverage.py --write
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "rule-pack.md"
ATTACKS = REPO / "tests" / "attacks"
BEGIN, END = "<!-- coverage:begin -->", "<!-- coverage:end -->"
TECHNIQUE = re.compile(r"^T\d{4}(\.\d{3})?$")


def pack_rules() -> dict[str, list[str]]:
    """Each rule of the pack -> its ATT&CK technique ids."""
    sys.path.insert(0, str(REPO / "src"))
    from stockade.rules.defaults import builtin_rule_files

    out: dict[str, list[str]] = {}
    for f in builtin_rule_files():
        for item in yaml.safe_load(f.read_text()) or []:
            if isinstance(item, dict) and "rule" in item:
                out[item["rule"]] = [t for t in item.get("tags", []) if TECHNIQUE.match(str(t))]
    return out


def _module(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"coverage_{path.parent.name}_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def procedures() -> list[tuple[str, str, tuple[str, ...]]]:
    """(id, rule, techniques) of every procedure of tests/attacks/test_*.py and every family of
    tests/sensor/test_rule_families.py (modules imported by path)."""
    sys.path.insert(0, str(REPO / "tests"))
    out: list[tuple[str, str, tuple[str, ...]]] = []
    for f in sorted(ATTACKS.glob("test_*.py")):
        out.extend((p.id, p.rule, tuple(p.techniques)) for p in getattr(_module(f), "PROCEDURES", []))
    families = _module(REPO / "tests" / "sensor" / "test_rule_families.py").FAMILIES
    out.extend((f"family: {name}", fam.rule, ()) for name, fam in families.items())
    return out


def table() -> str:
    """The markdown table (technique, rules, procedures performed)."""
    rules = pack_rules()
    by_technique: dict[str, set[str]] = defaultdict(set)
    for name, techniques in rules.items():
        for t in techniques:
            by_technique[t].add(name)
    tested: dict[str, set[str]] = defaultdict(set)
    for pid, rule, named in procedures():
        for t in named or tuple(rules.get(rule, [])):
            tested[t].add(f"`{pid}`")
    lines = ["| Technique | Rules | Procedures performed in podman with the eBPF sensor |", "|---|---|---|"]
    for t in sorted(by_technique, key=lambda x: [int(n) for n in x[1:].split(".")]):
        names = ", ".join(sorted(by_technique[t]))
        done = ", ".join(sorted(tested[t])) or "golden events only"
        lines.append(f"| {t} | {names} | {done} |")
    return "\n".join(lines) + "\n"


def document_table(text: str) -> str:
    """The table as the document holds it (between the markers)."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[start:end].strip("\n") + "\n"


def write() -> None:
    text = DOC.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    DOC.write_text(text[:start] + "\n" + table() + text[end:])


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        sys.stdout.write(table())
