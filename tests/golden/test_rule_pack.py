"""Golden tests for Stockade's own rule pack (src/stockade/rules/builtin/*.yaml, in name order).

For every rule of the pack: events that fire it and near misses that do not (cases in
pack_events.py and, one module per technique family, in pack_cases/); the pack loads alone and after Falco's stable rules with no error, no warning and
no name clash; every rule carries the container/host, MITRE tactic and technique tags and the
output fields a responder needs.
"""

from __future__ import annotations

import functools
import json
import pickle
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pack_cases import FAMILY_CASES
from pack_events import CASES as BASE_CASES
from pack_events import PackCase, Variant

from stockade.engine import Engine
from stockade.model.alert import Alert, normalize_priority
from stockade.model.event import Event
from stockade.rules.defaults import builtin_rule_files
from stockade.rules.loader import check_rules

REPO = Path(__file__).resolve().parents[2]
#: the cases of every rule: pack_events.py and the family modules of pack_cases/
CASES = [*BASE_CASES, *FAMILY_CASES]
#: the pack's files, in the order they load
PACK = builtin_rule_files()
CASE_IDS = [c.rule for c in CASES]
TECHNIQUE = re.compile(r"^T\d{4}(\.\d{3})?$")
OUTPUT_FIELDS = [
    "%container.id",
    "%container.image.repository",
    "%proc.cmdline",
    "%proc.pname",
    "%user.name",
    "%k8s.ns.name",
    "%k8s.pod.name",
]


def _items(path: Path) -> list[dict[str, Any]]:
    """The items of a rules file, read independently of the engine's loader."""
    items = yaml.safe_load(path.read_text())
    assert isinstance(items, list)
    return [i for i in items if isinstance(i, dict)]


PACK_RULES = {i["rule"]: i for f in PACK for i in _items(f) if "rule" in i}


def _engine(paths: list[Path], mode: str = "all") -> Engine:
    """The engine of `paths`, compiled once per set of files and mode: later ones are rebuilt from
    the compiled state, as the compiled-rules cache does (each with its own sequence state)."""
    ruleset, compiled = pickle.loads(_compiled(tuple(str(p) for p in paths), mode))
    return Engine(ruleset, compiled=compiled, rule_matching=mode, hostname="test")


@functools.cache
def _compiled(paths: tuple[str, ...], mode: str) -> bytes:
    e = Engine.from_files(list(paths), rule_matching=mode, hostname="test")
    return pickle.dumps((e.ruleset, e.compiled_states()))


def _run(engine: Engine, events: tuple[dict[str, Any], ...]) -> list[list[Alert]]:
    """Alerts per event; each event goes through JSON, so every golden event is a valid recording."""
    return [engine.process(Event("syscall", json.loads(json.dumps(e)), origin="golden")) for e in events]


@pytest.fixture(scope="module")
def pack_engine() -> Engine:
    return _engine(PACK)


@pytest.fixture(scope="module")
def pack_engine_first() -> Engine:
    return _engine(PACK, mode="first")


@pytest.fixture(scope="module")
def falco_and_pack_engine(falco_rules_path: Path) -> Engine:
    return _engine([falco_rules_path, *PACK])


def _fresh_if_sequence(case: PackCase, shared: Engine, paths: list[Path]) -> Engine:
    """Sequence rules keep state between events: each of their variants gets its own engine."""
    return _engine(paths) if _is_sequence(case.rule) else shared


def _describe(v: Variant) -> str:
    return f"{v.why}: " + " | ".join(json.dumps(e, sort_keys=True) for e in v.events)


def _is_sequence(rule: str) -> bool:
    return "sequence" in PACK_RULES[rule]


# -- the pack as a file --------------------------------------------------------------------------


def test_every_rule_has_a_case() -> None:
    assert len(CASE_IDS) == len(set(CASE_IDS)), "a rule has two cases"
    assert set(CASE_IDS) == set(PACK_RULES), {
        "rules without a case": sorted(set(PACK_RULES) - set(CASE_IDS)),
        "cases without a rule": sorted(set(CASE_IDS) - set(PACK_RULES)),
    }
    for c in CASES:
        assert c.fires and c.near_misses, c.rule
        if _is_sequence(c.rule):
            for var in c.fires:
                times = [e["evt.time"] for e in var.events]
                assert len(times) >= 2 and times == sorted(times), (c.rule, var.why)


def test_pack_is_a_builtin_rules_file() -> None:
    assert PACK[0].name == "stockade.yaml" and PACK[-1].name == "stockade_90_generic.yaml", PACK


def test_pack_loads_alone_without_problems() -> None:
    rs = check_rules([str(p) for p in PACK])
    assert [str(p) for p in rs.problems] == []
    assert {r for r in rs.rules} == set(PACK_RULES)
    for r in rs.rules.values():
        if r.sequence is None:
            assert r.evttypes is not None, f"{r.name} does not restrict evt.type"


def test_pack_loads_after_falco_rules_without_clash(falco_rules_path: Path) -> None:
    rs = check_rules([str(falco_rules_path), *(str(p) for p in PACK)])
    assert [str(p) for p in rs.problems] == []
    falco = _items(falco_rules_path)
    pack = [i for f in PACK for i in _items(f)]
    for kind in ("rule", "macro", "list"):
        ours = {i[kind] for i in pack if kind in i}
        theirs = {i[kind] for i in falco if kind in i}
        assert not ours & theirs, f"{kind} names defined by both files: {sorted(ours & theirs)}"
    for i in pack:
        for kind in ("macro", "list"):
            if kind in i:
                assert i[kind].startswith("stk_"), f"{kind} {i[kind]} lacks the stk_ prefix"
    engine = _engine([falco_rules_path, *PACK])
    names = [r["name"] for r in engine.rules_info()]
    assert len(names) == len(set(names))
    assert set(PACK_RULES) <= set(names)


def test_cli_lints_pack_after_falco_rules(falco_rules_path: Path) -> None:
    """`stockade rules lint falco_rules.yaml stockade.yaml`: zero errors, zero warnings."""
    exe = Path(sys.executable).with_name("stockade")
    proc = subprocess.run(
        [str(exe), "rules", "lint", "-o", "json", str(falco_rules_path), *(str(p) for p in PACK)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert (report["errors"], report["warnings"]) == (0, 0), report["problems"]
    assert report["rules"] == len(PACK_RULES) + len([i for i in _items(falco_rules_path) if "rule" in i])


@pytest.mark.parametrize("name", sorted(PACK_RULES))
def test_rule_metadata(name: str) -> None:
    item = PACK_RULES[name]
    assert item.get("desc", "").strip(), "no desc"
    assert str(item["priority"]).upper() in {
        "EMERGENCY",
        "ALERT",
        "CRITICAL",
        "ERROR",
        "WARNING",
        "NOTICE",
        "INFO",
        "DEBUG",
    }
    tags = item["tags"]
    assert "container" in tags or "host" in tags
    assert any(t.startswith("mitre_") for t in tags), f"no MITRE tactic tag in {tags}"
    assert any(TECHNIQUE.match(t) for t in tags), f"no MITRE technique id in {tags}"
    for f in OUTPUT_FIELDS:
        assert f in item["output"], f"output lacks {f}"


def test_engine_reports_pack_tags() -> None:
    info = {r["name"]: r for r in _engine(PACK).rules_info()}
    for name, item in PACK_RULES.items():
        assert list(info[name]["tags"]) == item["tags"]
        assert info[name]["enabled"]


# -- the golden events ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_rule_fires(case: PackCase, pack_engine: Engine) -> None:
    for var in case.fires:
        per_event = _run(_fresh_if_sequence(case, pack_engine, PACK), var.events)
        *before, last = per_event
        assert all(case.rule not in [a.rule for a in alerts] for alerts in before), _describe(var)
        hits = [a for a in last if a.rule == case.rule]
        assert len(hits) == 1, f"{case.rule} did not fire once on {_describe(var)}: {[a.rule for a in last]}"
        alert, ev = hits[0], var.events[-1]
        assert alert.priority == normalize_priority(str(PACK_RULES[case.rule]["priority"]))
        assert f"container_id={ev['container.id']}" in alert.output, alert.output
        assert f"command={ev['proc.cmdline']}" in alert.output, alert.output
        assert alert.output_fields["container.image.repository"] == ev["container.image.repository"]
        assert alert.output_fields["k8s.pod.name"] == ev["k8s.pod.name"]
        assert any(TECHNIQUE.match(t) for t in alert.tags)
        if _is_sequence(case.rule):
            steps = alert.extra["sequence"]
            assert len(steps) == len(PACK_RULES[case.rule]["sequence"]["steps"]), steps
            assert steps[-1]["evt.type"] == ev["evt.type"]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_rule_near_misses(case: PackCase, pack_engine: Engine) -> None:
    for var in case.near_misses:
        per_event = _run(_fresh_if_sequence(case, pack_engine, PACK), var.events)
        fired = [a.rule for alerts in per_event for a in alerts]
        assert case.rule not in fired, f"{case.rule} fired on a near miss: {_describe(var)}"


@pytest.mark.parametrize("case", [c for c in CASES if not _is_sequence(c.rule)], ids=lambda c: c.rule)
def test_rule_is_first_match(case: PackCase, pack_engine_first: Engine) -> None:
    """With rule_matching: first (the default) the specific rule wins over the generic ones."""
    for var in case.fires:
        (alerts,) = _run(pack_engine_first, var.events)
        assert [a.rule for a in alerts][:1] == [case.rule], _describe(var)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_rule_fires_after_falco_rules(
    falco_rules_path: Path, falco_and_pack_engine: Engine, case: PackCase
) -> None:
    """Loaded after falco_rules.yaml (the default order), every rule still fires on its events."""
    for var in case.fires:
        engine = _fresh_if_sequence(case, falco_and_pack_engine, [falco_rules_path, *PACK])
        per_event = _run(engine, var.events)
        assert case.rule in [a.rule for a in per_event[-1]], _describe(var)


def test_exec_probes_can_be_listed_and_then_do_not_fire(tmp_path: Path) -> None:
    """A command the runtime runs with `sh -c` and no terminal (an exec probe, a health check) is
    not a shell spawned; an interactive one is, unless its command line is listed in
    stk_known_exec_probes (an exec probe that starts `sh -i`, say)."""
    from pack_events import exec_

    tuning = tmp_path / "tuning.yaml"
    tuning.write_text(
        "- macro: stk_known_exec_probes\n"
        '  condition: (proc.cmdline in ("sh -i -c pg_isready -U postgres"))\n'
        "  override:\n"
        "    condition: replace\n"
    )
    engine = _engine([*PACK, tuning])
    runc = ["runc:[1:CHILD]", "runc"]

    def fired(cmdline: str) -> bool:
        got = _run(engine, (exec_(cmdline, ancestors=runc),))
        return "Shell Spawned in Container" in [a.rule for alerts in got for a in alerts]

    assert not fired("sh -c pg_isready -U postgres")
    assert not fired("sh -i -c pg_isready -U postgres")
    assert fired("sh -i -c cat /etc/shadow")
    assert fired("sh")


def test_every_regex_of_the_pack_matches_across_lines() -> None:
    """A shell's -c command line often spans lines (a procedure pasted whole): every regex of the
    pack starts with (?s), so that `.` matches a newline too (the operator matches the whole value)."""
    for f in PACK:
        for m in re.finditer(r'regex "(.{0,4})', f.read_text()):
            assert m.group(1) == "(?s)", f"{f.name}: a regex without (?s): {m.group(0)}"
