"""Golden tests for Falco's Kubernetes audit rules (k8s_audit_rules.yaml): the one suite.

Every rule of the file has one case in k8s_events.py: audit.k8s.io/v1 events that must fire it and
near misses that must not, each with the exact set of rules that fire (rule_matching "all"), plus the
alert's priority, tags, source and output. Rules the file ships switched off (through a macro or list
the user fills) are turned on with an override rules file, as a Falco user does. The events are read
from their JSON Lines files (tests/data/k8s_audit/golden/<slug>.jsonl) through the k8s_audit source,
and replayed through the real `stockade replay` command.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from k8s_events import CASES, GOLDEN_DIR, Case, Variant, case_path, jsonl_text

from stockade.engine import Engine
from stockade.model.alert import Alert, normalize_priority
from stockade.model.event import Event
from stockade.model.timeutil import parse_time_ns
from stockade.sources.k8s_audit import K8sAuditSource

STOCKADE = str(Path(sys.executable).parent / "stockade")
CASE_IDS = [c.slug for c in CASES]

Engines = Callable[[str | None], Engine]


def _rule_items(path: Path) -> dict[str, dict[str, Any]]:
    """The rule items of a Falco rules file, by name, read independently of the engine's loader."""
    items = yaml.safe_load(path.read_text())
    return {i["rule"]: i for i in items if isinstance(i, dict) and "rule" in i}


@pytest.fixture(scope="module")
def rule_items(k8s_audit_rules_path: Path) -> dict[str, dict[str, Any]]:
    return _rule_items(k8s_audit_rules_path)


@pytest.fixture(scope="module")
def overrides_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("k8s_overrides")


def _override_file(directory: Path, text: str) -> Path:
    path = directory / f"override-{abs(hash(text)):x}.yaml"
    if not path.exists():
        path.write_text(text)
    return path


@pytest.fixture(scope="module")
def engines(k8s_audit_rules_path: Path, overrides_dir: Path) -> Iterator[Engines]:
    """engine(overrides) -> an Engine over k8s_audit_rules.yaml and the override file (cached)."""
    cache: dict[str | None, Engine] = {}

    def get(overrides: str | None) -> Engine:
        if overrides not in cache:
            paths = [k8s_audit_rules_path]
            if overrides is not None:
                paths.append(_override_file(overrides_dir, overrides))
            cache[overrides] = Engine.from_files(paths, rule_matching="all", hostname="test")
        return cache[overrides]

    yield get


def _file_events(case: Case) -> list[Event]:
    """The case's events as the k8s_audit source reads them from its JSON Lines file."""
    path = case_path(case)
    src = K8sAuditSource(path)
    events = list(src.events())
    assert src.stats.malformed == 0, src.stats.errors
    assert [e.data for e in events] == [v.event for v in case.variants], f"{path} is stale"
    assert [e.origin for e in events] == [f"{path}:{n}" for n in range(1, len(events) + 1)]
    return events


def _run(engine: Engine, event: dict[str, Any]) -> list[Alert]:
    # Round-trip through JSON: each golden event is also a JSON Lines line.
    data = json.loads(json.dumps(event))
    return engine.process(Event("k8s_audit", data, origin="golden"))


def _describe(v: Variant) -> str:
    return f"{v.why}: {json.dumps(v.event, sort_keys=True)}"


# ---------------------------------------------------------------------------------------------
# the cases themselves
# ---------------------------------------------------------------------------------------------


def test_every_rule_of_the_file_has_one_case(rule_items: dict[str, dict[str, Any]]) -> None:
    covered = [c.rule for c in CASES]
    assert len(set(covered)) == len(covered), "one case per rule"
    assert set(rule_items) - set(covered) == set(), "rules without a golden case"
    assert set(covered) - set(rule_items) == set(), "cases for rules not in k8s_audit_rules.yaml"
    named = {r for c in CASES for v in c.variants for r in v.fires}
    assert named <= set(rule_items), f"expected rules not in the file: {named - set(rule_items)}"
    assert len(set(CASE_IDS)) == len(CASE_IDS) and len(rule_items) >= 40


def test_every_case_has_an_event_that_fires_and_a_near_miss() -> None:
    for c in CASES:
        assert c.fire and c.miss, c.rule
        assert all(c.rule in v.fires for v in c.fire), c.rule
        assert all(c.rule not in v.fires for v in c.miss), c.rule
        assert c.output_has, c.rule


def _check_shape(e: dict[str, Any], ids: set[str]) -> None:
    """An event as kube-apiserver's log backend writes it (see k8s_events.audit)."""
    assert e["kind"] == "Event" and e["apiVersion"] == "audit.k8s.io/v1"
    assert e["level"] in ("Metadata", "Request", "RequestResponse")
    assert e["stage"] in ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
    assert len(e["auditID"]) == 36 and e["auditID"] not in ids
    ids.add(e["auditID"])
    assert e["requestURI"].startswith("/")
    assert e["user"]["username"] and e["sourceIPs"] and e["userAgent"]
    received = parse_time_ns(e["requestReceivedTimestamp"])
    done = parse_time_ns(e["stageTimestamp"])
    assert received is not None and done is not None and received <= done
    if e["level"] == "Metadata":
        assert "requestObject" not in e and "responseObject" not in e
    if "objectRef" in e:
        assert e["objectRef"]["apiVersion"]
    if e["stage"] == "RequestReceived":
        assert not {"responseStatus", "annotations", "requestObject"} & set(e)
        assert received == done
        return
    decision = e["annotations"]["authorization.k8s.io/decision"]
    assert decision in ("allow", "forbid")
    if decision == "forbid":
        # RBAC denies before the body is read
        assert e["responseStatus"]["code"] == 403 and "requestObject" not in e
    code = e["responseStatus"]["code"]
    assert (code >= 400) == (e["responseStatus"].get("status") == "Failure")


def test_events_are_audit_k8s_io_v1_events() -> None:
    ids: set[str] = set()
    for c in CASES:
        for v in c.variants:
            try:
                _check_shape(v.event, ids)
            except AssertionError as e:
                raise AssertionError(f"{c.rule}: {_describe(v)}") from e


def test_golden_files_are_up_to_date() -> None:
    stale = [
        c.slug
        for c in CASES
        if not case_path(c).exists() or case_path(c).read_text() != jsonl_text(c.variants)
    ]
    extra = sorted(p.name for p in set(GOLDEN_DIR.glob("*.jsonl")) - {case_path(c) for c in CASES})
    assert not stale and not extra, (
        f"stale {stale}, extra {extra}: run .venv/bin/python tests/golden/k8s_events.py"
    )


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_fires(case: Case, engines: Engines, rule_items: dict[str, dict[str, Any]]) -> None:
    engine = engines(case.overrides)
    item = rule_items[case.rule]
    for n, (v, event) in enumerate(zip(case.fire, _file_events(case), strict=False)):
        alerts = engine.process(event)
        assert {a.rule for a in alerts} == v.fires, _describe(v)
        assert len(alerts) == len(v.fires), _describe(v)
        (alert,) = [a for a in alerts if a.rule == case.rule]
        assert alert.priority == normalize_priority(item["priority"])
        assert alert.source == "k8s_audit"
        assert alert.tags == list(item["tags"])
        assert alert.hostname == "test"
        if n == 0:
            for s in case.output_has:
                assert s in alert.output, f"{s!r} not in {alert.output!r}"
            # a field the event lacks prints <NA>: only where the case expects it
            expected_na = sum(s.count("<NA>") for s in case.output_has)
            assert alert.output.count("<NA>") == expected_na, alert.output
        user = v.event["user"]["username"]
        if "%ka.user.name" in item["output"]:
            assert alert.output_fields["ka.user.name"] == user
            assert f"user={user}" in alert.output


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_near_misses(case: Case, engines: Engines) -> None:
    engine = engines(case.overrides)
    for v, event in zip(case.miss, _file_events(case)[len(case.fire) :], strict=True):
        fired = {a.rule for a in engine.process(event)}
        assert case.rule not in fired, _describe(v)
        assert fired == v.fires, _describe(v)


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.overrides], ids=[c.slug for c in CASES if c.overrides]
)
def test_rules_off_by_default_stay_off_without_the_override(case: Case, engines: Engines) -> None:
    engine = engines(None)
    for v in case.fire:
        assert case.rule not in {a.rule for a in _run(engine, v.event)}, _describe(v)


def test_first_match_gives_the_first_rule_in_file_order(
    k8s_audit_rules_path: Path, rule_items: dict[str, dict[str, Any]]
) -> None:
    order = list(rule_items)
    engine = Engine.from_files([k8s_audit_rules_path], rule_matching="first", hostname="test")
    checked = 0
    for c in CASES:
        if c.overrides:
            continue
        for v in c.variants:
            fired = [a.rule for a in _run(engine, v.event)]
            if v.fires:
                assert fired == [min(v.fires, key=order.index)], _describe(v)
                checked += 1
            else:
                assert fired == [], _describe(v)
    assert checked > 40


def test_alert_time_is_the_event_time(engines: Engines) -> None:
    """As with Falco's k8saudit plugin, an alert's time is the event's stageTimestamp."""
    for c in CASES[:5]:
        v = c.fire[0]
        for alert in _run(engines(c.overrides), v.event):
            assert alert.time_ns == parse_time_ns(v.event["stageTimestamp"])
            assert alert.output.startswith(v.event["stageTimestamp"][11:26])
            assert alert.to_falco_json()["time"].startswith(v.event["stageTimestamp"][:26])


def test_list_fields_in_output_fields_are_lists(engines: Engines) -> None:
    """Falco gives a list field's values as a JSON array in output_fields (and prints "(a,b)")."""
    case = next(c for c in CASES if c.rule == "Create Privileged Pod")
    (alert,) = [a for a in _run(engines(None), case.fire[0].event) if a.rule == case.rule]
    fields: dict[str, Any] = alert.output_fields
    assert fields["ka.req.pod.containers.image"] == ["docker.io/library/ubuntu:24.04"]
    assert fields["ka.user.name"] == "kubernetes-admin"
    assert fields["ka.req.pod.initContainers.image"] is None
    assert "images=(docker.io/library/ubuntu:24.04)" in alert.output


# ---------------------------------------------------------------------------------------------
# the JSON Lines files through the real CLI
# ---------------------------------------------------------------------------------------------

#: the cases by the override rules file they need: one `stockade replay` run per group
GROUPS: dict[str | None, list[Case]] = {}
for _c in CASES:
    GROUPS.setdefault(_c.overrides, []).append(_c)


def _replay(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "STOCKADE_CONFIG": ""}
    return subprocess.run([STOCKADE, "replay", *args], capture_output=True, timeout=120, env=env, check=False)


@pytest.mark.parametrize(
    "overrides", list(GROUPS), ids=[g[0].slug if k else "default" for k, g in GROUPS.items()]
)
def test_replay_the_files_through_the_cli(
    overrides: str | None,
    k8s_audit_rules_path: Path,
    overrides_dir: Path,
    rule_items: dict[str, dict[str, Any]],
) -> None:
    cases = GROUPS[overrides]
    args = [str(case_path(c)) for c in cases] + ["--rules", str(k8s_audit_rules_path)]
    if overrides is not None:
        args += ["--rules", str(_override_file(overrides_dir, overrides))]
    r = _replay(*args, "--output", "json", "--rule-matching", "all", "--quiet")
    assert r.returncode == 0, r.stderr.decode()
    alerts = [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]
    got = sorted((a["rule"], a["output_fields"]["ka.user.name"]) for a in alerts)
    expected = sorted((r, v.event["user"]["username"]) for c in cases for v in c.variants for r in v.fires)
    assert got == expected
    assert all(a["source"] == "k8s_audit" and a["hostname"] for a in alerts)
    assert all(a["priority"] == normalize_priority(rule_items[a["rule"]]["priority"]) for a in alerts)


def test_replay_detects_the_source_and_uses_first_match(k8s_audit_rules_path: Path) -> None:
    """Without --source and --rule-matching: detected as k8s_audit, one alert per event (Falco's
    default first match)."""
    cases = [c for c in CASES if c.slug.startswith("secret-")]
    r = _replay(*[str(case_path(c)) for c in cases], "--rules", str(k8s_audit_rules_path), "--output", "json")
    assert r.returncode == 0, r.stderr.decode()
    alerts = [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]
    firing = [v for c in cases for v in c.variants if v.fires]
    assert len(alerts) == len(firing) > 4
    assert all(a["source"] == "k8s_audit" for a in alerts)
    assert b"Traceback" not in r.stderr


# ---------------------------------------------------------------------------------------------
# other shapes through K8sAuditSource: a pretty EventList, a v1beta1 event, foreign lines
# ---------------------------------------------------------------------------------------------


def _source_events(path: Path) -> tuple[list[Event], K8sAuditSource]:
    src = K8sAuditSource(path)
    return list(src.events()), src


def test_pretty_event_list_through_the_source_and_cli(
    tmp_path: Path, engines: Engines, k8s_audit_rules_path: Path
) -> None:
    rbac = ("wildcard-clusterrole", "write-role", "pod-exec-role", "role-created", "rolebinding-created")
    variants = [v for c in CASES if c.slug in rbac for v in c.variants]
    doc = {
        "kind": "EventList",
        "apiVersion": "audit.k8s.io/v1",
        "metadata": {},
        "items": [v.event for v in variants],
    }
    path = tmp_path / "eventlist.json"
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    assert path.read_text().count("\n") > len(variants)
    events, src = _source_events(path)
    assert src.stats.malformed == 0, src.stats.errors
    assert len(events) == len(variants) > 10
    engine = engines(None)
    for ev, v in zip(events, variants, strict=True):
        assert ev.source == "k8s_audit"
        assert ev.origin is not None and ev.origin.startswith(str(path))
        assert {a.rule for a in engine.process(ev)} == v.fires, _describe(v)
    # and through the CLI
    r = _replay(
        str(path),
        "--source",
        "k8s_audit",
        "--rules",
        str(k8s_audit_rules_path),
        "--output",
        "json",
        "--rule-matching",
        "all",
        "--quiet",
    )
    assert r.returncode == 0, r.stderr.decode()
    got = sorted(json.loads(line)["rule"] for line in r.stdout.decode().splitlines() if line.strip())
    assert got == sorted(rule for v in variants for rule in v.fires)


def _v1beta1(ev: dict[str, Any]) -> dict[str, Any]:
    """The same event as a v1beta1 API server (1.11-1.23) wrote it: the deprecated timestamp and
    metadata.creationTimestamp, no requestReceivedTimestamp."""
    old = copy.deepcopy(ev)
    old["apiVersion"] = "audit.k8s.io/v1beta1"
    t = old.pop("requestReceivedTimestamp")
    old["metadata"] = {"creationTimestamp": t[:19] + "Z"}
    old["timestamp"] = t[:19] + "Z"
    return {"kind": old.pop("kind"), "apiVersion": old.pop("apiVersion"), **old}


def test_v1beta1_event_through_the_source(tmp_path: Path, engines: Engines) -> None:
    v1 = next(c for c in CASES if c.rule == "Create Privileged Pod").fire[0]
    exec_case = next(c for c in CASES if c.rule == "Attach/Exec Pod").fire[0]
    old = [_v1beta1(v1.event), _v1beta1(exec_case.event)]
    old[1].pop("stageTimestamp")  # a RequestReceived-era writer: only the deprecated timestamp
    path = tmp_path / "v1beta1.log"
    path.write_text("".join(json.dumps(e) + "\n" for e in old))
    events, src = _source_events(path)
    assert src.stats.malformed == 0, src.stats.errors
    assert len(events) == 2
    assert events[1].data["stageTimestamp"] == old[1]["timestamp"]
    engine = engines(None)
    assert {a.rule for a in engine.process(events[0])} == v1.fires
    assert {a.rule for a in engine.process(events[1])} == exec_case.fires


def test_non_audit_lines_are_counted_not_dropped(tmp_path: Path) -> None:
    good = next(c for c in CASES if c.slug == "secret-created").fire[0].event
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        json.dumps(good)
        + "\n"
        + '{"kind":"Event","apiVersion":"v1","metadata":{"name":"x"}}\n'
        + "{not json\n"
        + json.dumps(good)
        + "\n"
    )
    events, src = _source_events(path)
    assert len(events) == 2
    assert src.stats.malformed == 2
    assert src.stats.errors[0].startswith(f"{path}:2: not an audit event"), src.stats.errors
    assert src.stats.errors[1].startswith(f"{path}:3: not JSON"), src.stats.errors
