"""Golden tests for Falco's stable rules (falco_rules.yaml).

For every rule of the file: events that must fire it (and exactly the other rules Falco would fire
on the same event) and near misses that must not, plus the alert's output, priority, tags and source.
The cases live in falco_events.py; a rule added to the file without a case fails
test_every_rule_has_a_golden_case.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from falco_events import CASES, READ_TRUSTED, READ_UNTRUSTED, GoldenCase, Variant

from stockade.engine import Engine
from stockade.model.alert import Alert, normalize_priority
from stockade.model.event import Event

CASE_IDS = [c.rule for c in CASES]


def _rule_items(path: Path) -> dict[str, dict[str, Any]]:
    """The rule items of a Falco rules file, by name, read independently of the engine's loader."""
    items = yaml.safe_load(path.read_text())
    return {i["rule"]: i for i in items if isinstance(i, dict) and "rule" in i}


@pytest.fixture(scope="module")
def rule_items(falco_rules_path: Path) -> dict[str, dict[str, Any]]:
    return _rule_items(falco_rules_path)


@pytest.fixture(scope="module")
def engine_all(falco_rules_path: Path) -> Engine:
    return Engine.from_files([falco_rules_path], rule_matching="all", hostname="test")


@pytest.fixture(scope="module")
def engine_first(falco_rules_path: Path) -> Engine:
    return Engine.from_files([falco_rules_path], rule_matching="first", hostname="test")


def _run(engine: Engine, event: dict[str, Any]) -> list[Alert]:
    # Round-trip through JSON: every golden event must also be a valid JSON Lines recording.
    data = json.loads(json.dumps(event))
    return engine.process(Event("syscall", data, origin="golden"))


def _fired(alerts: list[Alert]) -> list[str]:
    return [a.rule for a in alerts]


def _describe(v: Variant) -> str:
    return f"{v.why}: {json.dumps(v.event, sort_keys=True)}"


def test_every_rule_has_a_golden_case(rule_items: dict[str, dict[str, Any]]) -> None:
    assert len(rule_items) == 25, sorted(rule_items)
    assert len(CASE_IDS) == len(set(CASE_IDS)), "a rule has two golden cases"
    assert set(CASE_IDS) == set(rule_items), {
        "rules without a case": sorted(set(rule_items) - set(CASE_IDS)),
        "cases without a rule": sorted(set(CASE_IDS) - set(rule_items)),
    }
    for c in CASES:
        assert c.fires and c.near_misses and c.output_has, c.rule


def test_enabled_rules_loaded(engine_all: Engine, rule_items: dict[str, dict[str, Any]]) -> None:
    declared_enabled = {n for n, i in rule_items.items() if i.get("enabled", True) is not False}
    info = engine_all.rules_info()
    loaded = {r["name"]: r for r in info}
    assert set(loaded) == set(rule_items)
    assert {n for n, r in loaded.items() if r["enabled"]} == declared_enabled
    assert len(declared_enabled) == 25
    for name, item in rule_items.items():
        r = loaded[name]
        assert r["source"] == "syscall", name
        assert normalize_priority(str(r["priority"])) == normalize_priority(str(item["priority"])), name
        assert list(r["tags"]) == list(item["tags"]), name


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_fires(case: GoldenCase, engine_all: Engine) -> None:
    for v in case.fires:
        fired = _fired(_run(engine_all, v.event))
        assert sorted(fired) == sorted({case.rule} | v.also), _describe(v)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_alert_fields(case: GoldenCase, engine_all: Engine, rule_items: dict[str, dict[str, Any]]) -> None:
    v = case.fires[0]
    alerts = [a for a in _run(engine_all, v.event) if a.rule == case.rule]
    assert len(alerts) == 1, _describe(v)
    alert = alerts[0]
    item = rule_items[case.rule]
    assert alert.priority == normalize_priority(str(item["priority"]))
    assert alert.tags == list(item["tags"])
    assert alert.source == "syscall"
    assert alert.hostname == "test"
    assert alert.time_ns == v.event["evt.time"]
    message = str(item["output"]).split(" | ", 1)[0].strip()
    assert message in alert.output
    missing = [s for s in case.output_has if s not in alert.output]
    assert not missing, f"{missing} not in {alert.output!r}"
    # Falco's output_fields carry every %field of the output, keyed by field name.
    assert alert.output_fields.get("proc.name") == v.event["proc.name"]
    assert alert.output_fields.get("evt.type") == v.event["evt.type"]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_near_miss(case: GoldenCase, engine_all: Engine) -> None:
    for v in case.near_misses:
        fired = _fired(_run(engine_all, v.event))
        assert case.rule not in fired, _describe(v)
        assert sorted(fired) == sorted(v.also), _describe(v)


def _case(rule: str) -> GoldenCase:
    return next(c for c in CASES if c.rule == rule)


def test_rule_matching_first_fires_only_the_first_rule_in_load_order(
    engine_all: Engine, engine_first: Engine, rule_items: dict[str, dict[str, Any]]
) -> None:
    order = list(rule_items)
    assert order.index(READ_TRUSTED) < order.index(READ_UNTRUSTED)
    v = _case(READ_TRUSTED).fires[0]
    assert v.also == {READ_UNTRUSTED}
    # "all": every matching rule, in load order (as Falco does)
    assert _fired(_run(engine_all, v.event)) == [READ_TRUSTED, READ_UNTRUSTED]
    assert _fired(_run(engine_first, v.event)) == [READ_TRUSTED]
    # an event only the later rule matches still fires it under "first"
    only_later = _case(READ_UNTRUSTED).fires[0]
    assert _fired(_run(engine_first, only_later.event)) == [READ_UNTRUSTED]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_rule_matching_first_fires_one_rule(case: GoldenCase, engine_first: Engine) -> None:
    for v in case.fires:
        fired = _fired(_run(engine_first, v.event))
        assert len(fired) == 1, _describe(v)
        assert fired[0] in {case.rule} | v.also, _describe(v)
    for v in case.near_misses:
        assert case.rule not in _fired(_run(engine_first, v.event)), _describe(v)


OVERRIDES = {
    "override-replace": "- rule: {name}\n  enabled: false\n  override:\n    enabled: replace\n",
    "enabled-only": "- rule: {name}\n  enabled: false\n",
}


@pytest.mark.parametrize("form", list(OVERRIDES))
def test_disable_and_reenable_through_an_override_file(
    form: str, falco_rules_path: Path, tmp_path: Path
) -> None:
    off = tmp_path / "off.yaml"
    off.write_text(OVERRIDES[form].format(name=READ_UNTRUSTED))
    engine = Engine.from_files([falco_rules_path, off], rule_matching="all", hostname="test")
    info = {r["name"]: r for r in engine.rules_info()}
    assert info[READ_UNTRUSTED]["enabled"] is False
    assert sum(1 for r in info.values() if r["enabled"]) == 24
    v = _case(READ_UNTRUSTED).fires[0]
    assert _fired(_run(engine, v.event)) == []
    # the other rules are untouched
    trusted = _case(READ_TRUSTED).fires[0]
    assert _fired(_run(engine, trusted.event)) == [READ_TRUSTED]

    on = tmp_path / "on.yaml"
    on.write_text(OVERRIDES[form].format(name=READ_UNTRUSTED).replace("enabled: false", "enabled: true"))
    engine = Engine.from_files([falco_rules_path, off, on], rule_matching="all", hostname="test")
    assert _fired(_run(engine, v.event)) == [READ_UNTRUSTED]
