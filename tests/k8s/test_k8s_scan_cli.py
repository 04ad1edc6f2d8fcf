"""`stockade k8s scan` as users run it (real subprocesses): files, directories and standard input;
table, JSON lines, SARIF 2.1.0 (schema-validated) and JUnit; filters; exit codes; load errors in
every format."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from functools import partial
from pathlib import Path

import jsonschema
import pytest

from helpers import SHARED_DATA, in_parallel

STOCKADE = str(Path(sys.executable).parent / "stockade")
KUBESEC = SHARED_DATA / "k8s" / "kubesec-assets"
SARIF_SCHEMA = Path(__file__).parents[1] / "vulns" / "data" / "sarif-schema-2.1.0.json"
CONTRACT = ["check", "severity", "controls", "resource", "file", "line", "message", "remediation"]
ONLY = ("--check", "privileged-container")  # the catalogue grows: the tests pin the check they read

PRIVILEGED = Path(__file__).parent / "data" / "scan-web.yaml"  # privileged at line 15
CLEAN = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: clean\n  namespace: other\nspec:\n  containers:\n  - {name: a, image: a:1}\n"
BROKEN = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: [broken\n"


def run(*args: str, stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STOCKADE, "k8s", "scan", *args], input=stdin, capture_output=True, text=True, timeout=60, cwd=cwd
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("manifests")
    (root / "apps").mkdir()
    (root / "apps" / "web.yaml").write_text(PRIVILEGED.read_text())
    (root / "clean.yml").write_text(CLEAN)
    (root / "broken.yaml").write_text(BROKEN)
    (root / "README.md").write_text("not read: not a manifest's extension\n")
    return root


def test_table_lists_findings_and_reports_load_errors_on_stderr(tree: Path) -> None:
    r = run(str(tree), *ONLY, cwd=tree)
    assert r.returncode == 0, r.stderr
    header, row = r.stdout.splitlines()[:2]
    assert header.split() == ["SEVERITY", "CHECK", "RESOURCE", "WHERE", "MESSAGE"]
    assert row.split()[:4] == [
        "CRITICAL",
        "privileged-container",
        "Deployment/shop/web",
        f"{tree}/apps/web.yaml:15",
    ]
    err = r.stderr.splitlines()
    assert err[0] == (
        f"stockade: error: {tree}/broken.yaml:5:1: YAML syntax error: did not find expected ',' or ']' "
        "(while parsing a flow sequence at 4:9)"
    )
    assert err[1] == "2 objects from 3 inputs, 1 checks: 1 findings (1 CRITICAL); 1 problems (above)"


def test_json_lines_follow_the_contract(tree: Path) -> None:
    r = run(str(tree / "apps"), str(tree / "clean.yml"), str(tree / "broken.yaml"), "--output", "json", *ONLY)
    assert r.returncode == 0, r.stderr
    (line,) = [json.loads(x) for x in r.stdout.splitlines()]
    assert list(line)[: len(CONTRACT)] == CONTRACT
    assert line["check"] == "privileged-container" and line["severity"] == "CRITICAL"
    assert line["controls"] == ["pss:baseline:privileged"]
    assert line["resource"] == {"kind": "Deployment", "namespace": "shop", "name": "web"}
    assert (line["file"], line["line"]) == (str(tree / "apps" / "web.yaml"), 15)
    assert line["field"] == "spec.template.spec.containers[1].securityContext.privileged"
    assert "sidecar" in line["message"] and line["remediation"]
    # load errors: JSON lines on standard error
    (err,) = [json.loads(x) for x in r.stderr.splitlines()]
    assert err == {
        "error": err["error"],
        "file": str(tree / "broken.yaml"),
        "line": 5,
        "column": 1,
    } and err["error"].startswith("YAML syntax error")
    # the global option and --format json say the same
    g = subprocess.run(
        [STOCKADE, "-o", "json", "k8s", "scan", str(tree / "apps"), *ONLY],
        capture_output=True,
        text=True,
        timeout=60,
    )
    f = run(str(tree / "apps"), "--format", "json", *ONLY)
    assert g.stdout == f.stdout == r.stdout


HELM = Path(__file__).parent / "data" / "scan-helm-rendered.yaml"


def test_standard_input_helm_output_names_the_template() -> None:
    r = run("-", "-o", "json", *ONLY, stdin=HELM.read_text())
    assert r.returncode == 0, r.stderr
    (line,) = [json.loads(x) for x in r.stdout.splitlines()]
    assert (line["file"], line["line"], line["template"]) == ("-", 20, "shop/templates/deployment.yaml")


def test_sarif_is_valid_and_carries_load_errors(tree: Path) -> None:
    r = run("apps/web.yaml", "broken.yaml", "clean.yml", "--format", "sarif", *ONLY, cwd=tree)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    jsonschema.validate(doc, json.loads(SARIF_SCHEMA.read_text()))
    (run_,) = doc["runs"]
    (rule,) = run_["tool"]["driver"]["rules"]
    assert rule["id"] == "privileged-container"
    assert rule["properties"]["security-severity"] == "9.5"
    assert "pss:baseline:privileged" in rule["properties"]["tags"]
    assert "securityContext" in rule["help"]["text"]
    (res,) = run_["results"]
    loc = res["locations"][0]
    assert loc["physicalLocation"]["artifactLocation"]["uri"] == "apps/web.yaml"
    assert loc["physicalLocation"]["region"]["startLine"] == 15
    assert loc["logicalLocations"][0]["fullyQualifiedName"] == "shop/Deployment/web"
    assert res["level"] == "error"
    (inv,) = run_["invocations"]
    assert inv["executionSuccessful"] is True
    (note,) = inv["toolExecutionNotifications"]
    assert note["level"] == "error"
    assert note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "broken.yaml"
    assert note["locations"][0]["physicalLocation"]["region"] == {"startLine": 5, "startColumn": 1}


def test_junit_has_a_case_per_object_and_an_error_per_problem(tree: Path) -> None:
    out = tree / "report.xml"
    r = run(str(tree), "--format", "junit", "--output-file", str(out), *ONLY)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    root = ET.fromstring(out.read_text())
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    web = cases["Deployment/shop/web"]
    (failure,) = web.findall("failure")
    assert failure.get("type") == "CRITICAL" and "privileged-container" in (failure.get("message") or "")
    assert cases["Pod/other/clean"].find("failure") is None
    (err_case,) = [c for c in cases.values() if c.find("error") is not None]
    assert err_case.get("file") == str(tree / "broken.yaml")


def test_filters_and_exit_codes(tree: Path) -> None:
    web = str(tree / "apps" / "web.yaml")
    scans = [
        [*ONLY],
        [*ONLY, "--exit-code", "3"],
        [*ONLY, "--severity", "HIGH+", "--standard", "pss-baseline"],
        [*ONLY, "--severity", "MEDIUM,LOW", "--exit-code", "3"],
        [*ONLY, "--skip-check", "privileged-container", "--exit-code", "3"],
        [*ONLY, "--namespace", "other", "--exit-code", "3"],
        [
            "--check",
            "allowed-registries",
            "--allowed-registry",
            "docker.io/library/nginx",
            "--allowed-registry",
            "docker.io/library/a",  # clean.yml's a:1
        ],
        ["--check", "allowed-registries"],  # silent without a registry
    ]
    usage = [
        ([str(tree / "nope.yaml")], f"{tree}/nope.yaml: no such file or directory"),
        ([], "give a PATH"),
        ([web, "--standard", "pci"], "--standard 'pci': one of"),
        ([web, "--check", "no-such-check"], "no check 'no-such-check'"),
        ([web, "--severity", "SEVERE"], "unknown severity SEVERE"),
        ([web, "--format", "html"], "--format must be one of table, json, sarif, junit"),
    ]
    calls: list[Callable[[], subprocess.CompletedProcess[str]]] = [
        partial(run, web, str(tree / "clean.yml"), "-o", "json", *a) for a in scans
    ]
    calls += [partial(run, *a) for a, _ in usage]
    calls += [partial(run, str(tree / "broken.yaml")), partial(run, str(tree / "broken.yaml"), "-o", "json")]
    results = in_parallel(calls)
    found = [(r.returncode, [json.loads(x) for x in r.stdout.splitlines()]) for r in results[: len(scans)]]
    everything, with_exit, high, low, skipped, other_ns, registries, no_registries = found
    assert everything[0] == 0 and len(everything[1]) == 1
    assert with_exit == (3, everything[1])
    assert high == everything
    assert low == skipped == other_ns == no_registries == (0, [])
    assert [(f["check"], f["line"]) for f in registries[1]] == [("allowed-registries", 13)]  # envoy
    for r, (args, message) in zip(results[len(scans) : -2], usage, strict=True):
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
    nothing, nothing_json = results[-2:]  # nothing scanned: exit 1
    assert nothing.returncode == nothing_json.returncode == 1
    assert "stockade: error: nothing scanned: no Kubernetes object was loaded" in nothing.stderr
    assert [json.loads(x)["error"] for x in nothing_json.stderr.splitlines()][-1] == (
        "nothing scanned: no Kubernetes object was loaded"
    )


def test_the_kubesec_corpus_scans_with_every_problem_located() -> None:
    files = [str(KUBESEC), str(KUBESEC / "empty-file"), str(KUBESEC / "very-long-file")]
    r = run(*files, "-o", "json")
    assert r.returncode == 0, r.stderr
    findings = [json.loads(x) for x in r.stdout.splitlines()]
    problems = [json.loads(x) for x in r.stderr.splitlines()]
    assert findings and all(f["file"] and f["line"] for f in findings)
    assert {Path(p["file"]).name for p in problems} >= {
        "empty-file",
        "form-prefix-not-file.json",
        "invalid-schema.yml",
        "invalid-type.yml",
    }
    assert all(p["line"] for p in problems)
    privileged = {(Path(f["file"]).name, f["line"]) for f in findings if f["check"] == "privileged-container"}
    assert privileged >= {
        ("critical-double.yml", 11),
        ("score-0-daemonset-securitycontext-privileged.yml", 29),
        ("very-long-file", 135),
    }


def test_a_file_scan_does_not_import_the_kubernetes_client(tree: Path) -> None:
    code = (
        "import sys\nfrom stockade.cli.main import main\n"
        "rc = main(['k8s', 'scan', sys.argv[1], '-o', 'json'])\n"
        "print(rc, 'kubernetes' in sys.modules)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(tree / "apps")], capture_output=True, text=True, timeout=60
    )
    assert r.stdout.splitlines()[-1] == "0 False", r.stderr
