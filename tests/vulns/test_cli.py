"""`stockade db import|status` and `stockade scan` through main(): stores, exit codes, formats."""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from stockade.cli import common
from stockade.cli.main import main

SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"
V3_CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
V3_HIGH = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"
CONTRACT = {"package", "version", "ecosystem", "purl", "id", "aliases", "fixed", "severity", "path"}


@pytest.fixture(autouse=True)
def fresh_cli_state() -> Iterator[None]:
    common.STATE = common.CliState()
    yield
    common.STATE = common.CliState()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def lines(out: str) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in out.splitlines() if x.strip()]


@pytest.fixture
def scored(tmp_path: Path) -> Path:
    """Two extra records with severities for packages of the old venv: a CRITICAL one for bottle
    (fixed), a HIGH one for babel without a fix."""
    d = tmp_path / "extra"
    d.mkdir()
    for ident, name, vector, events in (
        ("GHSA-test-crit", "bottle", V3_CRITICAL, [{"introduced": "0"}, {"fixed": "0.12.25"}]),
        ("GHSA-test-high", "Babel", V3_HIGH, [{"introduced": "2.0"}]),
    ):
        rec = {
            "id": ident,
            "modified": "2026-01-01T00:00:00Z",
            "summary": f"test advisory for {name}",
            "aliases": [f"CVE-2099-{len(name)}"],
            "severity": [{"type": "CVSS_V3", "score": vector}],
            "affected": [
                {
                    "package": {"ecosystem": "PyPI", "name": name},
                    "ranges": [{"type": "ECOSYSTEM", "events": events}],
                }
            ],
        }
        (d / f"{ident}.json").write_text(json.dumps(rec))
    return d


def test_db_import_and_status_on_a_data_dir(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, scored: Path
) -> None:
    """Import into a fresh --data-dir (the store is created), then status in text and JSON."""
    data = tmp_path / "data"
    code, out, err = run(capsys, "db", "import", str(scored), "--data-dir", str(data))
    assert code == 0, err
    assert f"{scored}: 2 advisories (2 new or updated) in" in out
    assert (data / "stockade.db").is_file()
    code, out, err = run(capsys, "db", "status", "--data-dir", str(data))
    assert code == 0, err
    assert "advisories: 2 (0 withdrawn)" in out and "PyPI" in out and "osv" in out
    code, out, _ = run(capsys, "-o", "json", "db", "status", "--data-dir", str(data))
    st = orjson.loads(out)
    assert st["ecosystems"] == [{"ecosystem": "PyPI", "advisories": 2, "packages": 2}]
    assert st["sources"][0]["records"] == 2 and st["last_import_ns"] > 0
    assert st["sources"][0]["source"] == str(scored.resolve())


def test_db_import_reports_broken_records_and_exits_1(
    capsys: pytest.CaptureFixture[str], scored: Path, db_url: str
) -> None:
    """A broken record is named on stderr, the others are imported, the exit code is 1."""
    (scored / "broken.yaml").write_text("id: X\nmodified: never\n")
    code, out, err = run(capsys, "db", "import", str(scored), "--db", db_url, "-o", "json")
    assert code == 1
    assert f"{scored / 'broken.yaml'} (X): 'modified' is not an RFC 3339 timestamp" in err
    (rep,) = lines(out)
    assert (rep["records"], rep["problems"]) == (2, 1)


def test_db_errors_are_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path, db_url: str) -> None:
    """A path that is not there, or a store that does not exist, is one error line (no traceback)."""
    code, _, err = run(capsys, "db", "import", str(tmp_path / "nope"), "--db", db_url)
    assert code == 2 and "nope: no such file or directory" in err and "Traceback" not in err
    code, _, err = run(capsys, "db", "status", "--data-dir", str(tmp_path / "empty"))
    assert code != 0 and "no database at" in err and "Traceback" not in err


@pytest.fixture
def venv_db(capsys: pytest.CaptureFixture[str], osv_db: str, scored: Path) -> str:
    """The shared OSV records plus the scored ones."""
    assert run(capsys, "db", "import", str(scored), "--db", osv_db)[0] == 0
    return osv_db


def test_scan_rootfs_json_contract_and_exit_codes(
    capsys: pytest.CaptureFixture[str], old_venv: Path, venv_db: str
) -> None:
    """--output json: one finding per line with the contract's fields; --exit-code only when
    findings at the --severity remain; a threshold and a list both select."""
    code, out, err = run(capsys, "--output", "json", "scan", "rootfs", str(old_venv), "--db", venv_db)
    assert code == 0, err
    found = lines(out)
    assert len(found) >= 30
    for f in found:
        assert set(f) >= CONTRACT
        assert (
            f["ecosystem"] == "PyPI" and f["purl"].startswith("pkg:pypi/") and f["path"].endswith("/METADATA")
        )
        assert f["fixed"] is None or (isinstance(f["fixed"], list) and f["fixed"])
    by_id = {f["id"]: f for f in found}
    assert by_id["GHSA-test-crit"]["severity"] == "CRITICAL" and by_id["GHSA-test-crit"]["fixed"] == [
        "0.12.25"
    ]
    assert by_id["GHSA-test-high"]["fixed"] is None
    assert "packages" in err and "findings" in err
    code, out, _ = run(
        capsys,
        "scan",
        "rootfs",
        str(old_venv),
        "--db",
        venv_db,
        "-o",
        "json",
        "--severity",
        "HIGH+",
        "--exit-code",
        "3",
    )
    assert code == 3
    assert sorted(f["id"] for f in lines(out)) == ["GHSA-test-crit", "GHSA-test-high"]
    code, out, _ = run(
        capsys,
        "scan",
        "rootfs",
        str(old_venv),
        "--db",
        venv_db,
        "-o",
        "json",
        "--severity",
        "CRITICAL,HIGH",
        "--ignore-unfixed",
        "--exit-code",
        "3",
    )
    assert code == 3 and [f["id"] for f in lines(out)] == ["GHSA-test-crit"]
    code, out, _ = run(
        capsys, "scan", "rootfs", str(old_venv), "--db", venv_db, "--severity", "LOW", "--exit-code", "3"
    )
    assert code == 0 and "no vulnerabilities found" in out
    code, _, err = run(capsys, "scan", "rootfs", str(old_venv), "--db", venv_db, "--severity", "SEVERE")
    assert code == 2 and "unknown severity SEVERE" in err


def test_scan_ignorefile_with_expiry(
    capsys: pytest.CaptureFixture[str], old_venv: Path, venv_db: str, tmp_path: Path
) -> None:
    """An entry (by alias, for one package) ignores until its expiry; an expired one ignores
    nothing and says so on stderr."""
    today = dt.datetime.now(dt.UTC).date()
    ign = tmp_path / "ignore.yaml"
    ign.write_text(
        "ignore:\n"
        f"  - id: CVE-2099-6\n    package: bottle\n    expires: {today + dt.timedelta(days=30)}\n    reason: not reachable\n"
        f"  - id: GHSA-test-high\n    expires: {today - dt.timedelta(days=1)}\n    reason: old decision\n"
    )
    code, out, err = run(
        capsys,
        "scan",
        "rootfs",
        str(old_venv),
        "--db",
        venv_db,
        "-o",
        "json",
        "--severity",
        "HIGH+",
        "--ignorefile",
        str(ign),
        "--exit-code",
        "1",
    )
    assert code == 1
    assert [f["id"] for f in lines(out)] == ["GHSA-test-high"]
    assert f"{ign}: entry 2: the entry for GHSA-test-high expired on {today - dt.timedelta(days=1)}" in err
    assert "1 ignored" in err
    ign.write_text("ignore:\n  - package: bottle\n")
    code, _, err = run(capsys, "scan", "rootfs", str(old_venv), "--db", venv_db, "--ignorefile", str(ign))
    assert code == 2 and f"{ign}: entry 1: needs an 'id'" in err


def test_scan_sarif_is_valid_sarif_2_1_0(
    capsys: pytest.CaptureFixture[str], old_venv: Path, venv_db: str
) -> None:
    """SARIF validates against the SARIF 2.1.0 schema, has a rule per advisory with a
    security-severity, and results located at the package's file under the root."""
    code, out, err = run(capsys, "scan", "rootfs", str(old_venv), "--db", venv_db, "--format", "sarif")
    assert code == 0, err
    doc = json.loads(out)
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    run_ = doc["runs"][0]
    rules = run_["tool"]["driver"]["rules"]
    assert len({r["id"] for r in rules}) == len(rules) >= 30
    crit = next(r for r in rules if r["id"] == "GHSA-test-crit")
    assert crit["properties"]["security-severity"] == "9.8"
    assert all(float(r["properties"]["security-severity"]) >= 0 for r in rules)
    res = next(r for r in run_["results"] if r["ruleId"] == "GHSA-test-crit")
    loc = res["locations"][0]["physicalLocation"]["artifactLocation"]
    assert (
        loc["uriBaseId"] == "ROOTPATH"
        and loc["uri"].startswith("lib/python")
        and loc["uri"].endswith("METADATA")
    )
    assert (old_venv / loc["uri"]).is_file()
    assert run_["originalUriBaseIds"]["ROOTPATH"]["uri"] == old_venv.resolve().as_uri() + "/"


def test_scan_junit_and_table(capsys: pytest.CaptureFixture[str], old_venv: Path, venv_db: str) -> None:
    """JUnit: a test case per package, a failure per finding; the table lists the findings."""
    code, out, _ = run(capsys, "-o", "json", "scan", "rootfs", str(old_venv), "--db", venv_db)
    n_findings = len(lines(out))
    code, out, err = run(capsys, "scan", "rootfs", str(old_venv), "--db", venv_db, "--format", "junit")
    assert code == 0, err
    root = ET.fromstring(out)
    cases = root.findall("./testsuite/testcase")
    # the eight installed, and html5lib 1.0.1 that bleach vendors with its dist-info
    assert len(cases) == 9 and any(c.get("name") == "html5lib@1.0.1" for c in cases)
    assert sum(len(c.findall("failure")) for c in cases) == n_findings
    bottle = next(c for c in cases if c.get("name") == "bottle@0.12.18")
    assert any(
        f.get("type") == "CRITICAL" and "GHSA-test-crit" in (f.get("message") or "")
        for f in bottle.findall("failure")
    )
    code, out, _ = run(capsys, "scan", "rootfs", str(old_venv), "--db", venv_db)
    assert code == 0
    assert "PACKAGE" in out and "GHSA-test-crit" in out and "0.12.25" in out
