"""Golden tests for Falco's Kubernetes audit rules (k8s_audit_rules.yaml).

For every rule of the file: audit.k8s.io/v1 Events that must fire it (and exactly the other rules
Falco fires on the same event) and near misses that must not. The events are replayed from
tests/data/k8s_audit/golden/<slug>.jsonl through the k8s_audit source, as `stockade replay` reads
them; the cases (and the expected rules per line) are in k8s_golden_cases.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from k8s_golden_cases import CASES, GOLDEN_DIR, Case, jsonl

from stockade.engine import Engine
from stockade.model.alert import Alert
from stockade.model.event import Event
from stockade.sources.k8s_audit import K8sAuditSource

CASE_IDS = [c.slug for c in CASES]


@pytest.fixture(scope="module")
def default_engine(k8s_audit_rules_path: Path) -> Engine:
    return Engine.from_files([k8s_audit_rules_path], rule_matching="all", hostname="test")


_override_engines: dict[str, Engine] = {}


def _engine_for(case: Case, default: Engine, rules_path: Path, tmp_dir: Path) -> Engine:
    if case.overrides is None:
        return default
    if case.overrides not in _override_engines:
        f = tmp_dir / f"{case.slug}-overrides.yaml"
        f.write_text(case.overrides)
        _override_engines[case.overrides] = Engine.from_files(
            [rules_path, f], rule_matching="all", hostname="test"
        )
    return _override_engines[case.overrides]


def _events(case: Case) -> list[Event]:
    src = K8sAuditSource(GOLDEN_DIR / f"{case.slug}.jsonl")
    events = list(src.events())
    assert src.stats.malformed == 0, src.stats.errors
    assert len(events) == len(case.lines)
    return events


def test_every_rule_has_a_golden_case(k8s_audit_rules_path: Path) -> None:
    items = yaml.safe_load(k8s_audit_rules_path.read_text())
    rules = {i["rule"] for i in items if isinstance(i, dict) and "rule" in i}
    covered = {c.rule for c in CASES}
    assert rules - covered == set(), "rules without a golden case"
    assert covered - rules == set(), "golden cases for rules the file does not have"
    assert len(rules) >= 20


def test_golden_files_are_up_to_date() -> None:
    for case in CASES:
        path = GOLDEN_DIR / f"{case.slug}.jsonl"
        assert path.read_text() == jsonl(case), f"{path} is stale: run tests/k8s/k8s_golden_cases.py"


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_golden(
    case: Case, default_engine: Engine, k8s_audit_rules_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    engine = _engine_for(case, default_engine, k8s_audit_rules_path, tmp_path_factory.mktemp("ovr"))
    fired_target = False
    problems: list[str] = []
    for n, (line, event) in enumerate(zip(case.lines, _events(case), strict=True), start=1):
        alerts = engine.process(event)
        got = {a.rule for a in alerts}
        if got != line.fires:
            problems.append(f"line {n} ({line.why}): expected {sorted(line.fires)}, got {sorted(got)}")
        target = [a for a in alerts if a.rule == case.rule]
        if target and not fired_target:
            fired_target = True
            _check_alert(case, target[0], problems)
    assert any(case.rule in line.fires for line in case.lines), "a case must have a line that fires"
    assert any(case.rule not in line.fires for line in case.lines), "a case must have a near miss"
    assert not problems, "\n".join(problems)


def _check_alert(case: Case, alert: Alert, problems: list[str]) -> None:
    if alert.source != "k8s_audit":
        problems.append(f"alert source {alert.source!r}")
    if "k8s" not in alert.tags:
        problems.append(f"alert tags {alert.tags!r}")
    for want in case.output_has:
        if want not in alert.output:
            problems.append(f"output lacks {want!r}: {alert.output}")


def _first_alert(engine: Engine, case: Case) -> tuple[Event, Alert]:
    for line, event in zip(case.lines, _events(case), strict=True):
        if case.rule in line.fires:
            alerts = [a for a in engine.process(event) if a.rule == case.rule]
            return event, alerts[0]
    raise AssertionError(f"{case.slug}: no line fires {case.rule}")


LIST_OUTPUT_CASES = [c for c in CASES if c.list_output_has]


@pytest.mark.parametrize("case", LIST_OUTPUT_CASES, ids=[c.slug for c in LIST_OUTPUT_CASES])
def test_list_fields_print_like_falco(
    case: Case, default_engine: Engine, k8s_audit_rules_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    engine = _engine_for(case, default_engine, k8s_audit_rules_path, tmp_path_factory.mktemp("ovr"))
    _, alert = _first_alert(engine, case)
    for want in case.list_output_has:
        assert want in alert.output


def test_list_fields_in_output_fields_are_lists(default_engine: Engine) -> None:
    """Falco gives a list field's values as a JSON array in output_fields."""
    case = next(c for c in CASES if c.rule == "Create Privileged Pod")
    _, alert = _first_alert(default_engine, case)
    fields: dict[str, Any] = alert.output_fields
    assert fields["ka.req.pod.containers.image"] == ["docker.io/library/nginx:1.27.2"]
    assert fields["ka.user.name"] == "kubernetes-admin"
    assert fields["ka.req.pod.initContainers.image"] is None


def test_alert_time_is_the_audit_event_time(default_engine: Engine) -> None:
    case = next(c for c in CASES if c.rule == "K8s Secret Get Successfully")
    event, alert = _first_alert(default_engine, case)
    assert alert.time_ns == event.time_ns
    stamp = event.data["stageTimestamp"]  # "2026-11-20T09:33:...Z"
    assert alert.output.startswith(stamp[11:19])


def test_first_match_reports_one_rule(k8s_audit_rules_path: Path) -> None:
    engine = Engine.from_files([k8s_audit_rules_path], rule_matching="first", hostname="test")
    case = next(c for c in CASES if c.rule == "Create NodePort Service")
    alerts = engine.process(_events(case)[0])
    assert len(alerts) == 1
    assert alerts[0].rule in case.lines[0].fires
