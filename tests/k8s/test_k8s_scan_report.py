"""The scan's report formats in-process: a check that raised is a problem in every format; a run
that scanned nothing is an unsuccessful SARIF invocation; SARIF stays schema-valid with stdin and
cluster objects (no physical location)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema

from stockade.errors import Location
from stockade.k8s.catalogue import evaluate, get_check
from stockade.k8s.load import load_text
from stockade.k8s.report import Problem, ScanResult, json_lines, junit, problem_lines, sarif

SCHEMA = json.loads((Path(__file__).parents[1] / "vulns" / "data" / "sarif-schema-2.1.0.json").read_text())
POD = (
    "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: ns}\nspec:\n  containers:\n"
    "  - name: c\n    image: x\n    securityContext: {privileged: true}\n"
)


def test_check_problems_and_objects_without_files() -> None:
    loaded = load_text(POD, "-")
    (pod,) = loaded.objects
    checks = [get_check("privileged-container")]
    findings = evaluate(loaded.objects, checks)
    cluster = load_text(POD.replace("name: p,", "name: q,"), "x").objects[0]
    cluster.file, cluster.line, cluster.lines = "cluster:prod", None, {}
    findings += evaluate([cluster], checks)
    problems = [
        Problem.of_check("privileged-container", pod, "TypeError: boom"),
        Problem("bad", Location("a.yaml", 3, 2)),
    ]
    result = ScanResult(findings, [pod, cluster], problems, 2)
    doc = sarif(result, "-")
    jsonschema.validate(doc, SCHEMA)
    (run,) = doc["runs"]
    assert [r["locations"][0].get("physicalLocation") for r in run["results"]] == [None, None]
    assert {r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] for r in run["results"]} == {
        "ns/Pod/p",
        "ns/Pod/q",
    }
    check_note, load_note = run["invocations"][0]["toolExecutionNotifications"]
    assert check_note["associatedRule"] == {"id": "privileged-container"} and "locations" not in check_note
    assert (
        check_note["message"]["text"] == "-:1: check privileged-container failed on Pod 'p': TypeError: boom"
    )
    assert load_note["locations"][0]["physicalLocation"]["region"] == {"startLine": 3, "startColumn": 2}
    lines = [json.loads(x) for x in problem_lines(result).splitlines()]
    assert lines[0]["check"] == "privileged-container" and lines[1] == {
        "error": "bad",
        "file": "a.yaml",
        "line": 3,
        "column": 2,
    }
    assert [json.loads(x)["file"] for x in json_lines(result).splitlines()] == ["-", "cluster:prod"]
    suite = ET.fromstring(junit(result, "t")).find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("4", "2", "2")
    assert sorted(e.get("type") or "" for e in suite.iter("error")) == ["check-error", "load-error"]


def test_nothing_scanned_is_an_unsuccessful_invocation() -> None:
    loaded = load_text("", "empty.yaml")
    result = ScanResult([], [], [Problem.of_load(e) for e in loaded.errors], 1)
    doc = sarif(result)
    jsonschema.validate(doc, SCHEMA)
    inv = doc["runs"][0]["invocations"][0]
    assert inv["executionSuccessful"] is False
    assert inv["toolExecutionNotifications"][0]["message"]["text"] == (
        "empty.yaml:1: empty file: no Kubernetes object"
    )
    assert "automationDetails" not in doc["runs"][0]


def test_allowed_registries_reach_the_checks() -> None:
    from stockade.cli.k8s_scan_cmd import _scan
    from stockade.k8s.catalogue import WORKLOADS, Check, Context, Violation
    from stockade.k8s.objects import K8sObject

    def seen(_obj: K8sObject, ctx: Context) -> list[Violation]:
        return [Violation(repr(ctx.cache.get("allowed_registries")))]

    probe = Check("probe", "LOW", "t", "d", "r", "f", WORKLOADS, seen)
    loaded = load_text(POD, "p.yaml")
    assert [f.message for f in _scan(loaded, [probe], ["Registry.Example.com/", "ghcr.io/org"]).findings] == [
        "('registry.example.com', 'ghcr.io/org')"
    ]
    assert [f.message for f in _scan(loaded, [probe], None).findings] == ["None"]
