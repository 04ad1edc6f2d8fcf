"""tests/conftest.py and helpers.need: a test that cannot run here is skipped with its reason, but in CI
(CI=true) it fails, whatever way it was skipped; a capability marker is checked before the test runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

SAMPLE = """
import pytest
from helpers import need

def test_needs_data():
    need(False, "data file gone")

@pytest.mark.skipif(True, reason="plain skipif")
def test_plain_skipif():
    pass

def test_plain_skip():
    pytest.skip("plain skip")

@pytest.mark.xfail(reason="known bug", strict=True)
def test_xfail():
    assert False

@pytest.mark.postgres
def test_marked():
    pass

def test_runs():
    need(True, "never said")
"""


def _run(tmp_path: Path, ci: bool, *, pg_root: str) -> str:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n  postgres: x\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(TESTS)
    if ci:
        env["CI"] = "true"
    # tests/conftest.py as a plugin; the capability check looks for PostgreSQL under pg_root
    code = (
        "import sys, pytest, helpers;"
        f"helpers.PG_ROOT = helpers.Path({pg_root!r});"
        "sys.exit(pytest.main(['-q', '-rA', '-p', 'no:cacheprovider', '-p', 'conftest', sys.argv[1]]))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    return r.stdout


@pytest.mark.parametrize("ci", [False, True])
def test_skips_locally_fails_in_ci(tmp_path: Path, ci: bool) -> None:
    out = _run(tmp_path, ci, pg_root=str(tmp_path / "no-postgresql-here"))
    lines = out.splitlines()
    assert "PASSED test_sample.py::test_runs" in lines, out
    assert "XFAIL test_sample.py::test_xfail - known bug" in lines, out
    cases = [
        ("test_needs_data", "data file gone"),
        ("test_plain_skipif", "plain skipif"),
        ("test_plain_skip", "plain skip"),
        ("test_marked", "(apt-get install postgresql)"),
    ]
    for name, why in cases:
        if ci:  # failed in the test, or errored in its setup
            said = [x for x in lines if f"test_sample.py::{name} - " in x]
            assert said and said[0].split()[0] in ("FAILED", "ERROR"), (name, out)
            assert "CI runs every test, but this one" in said[0] and why in said[0], (name, out)
        else:
            # the report names the test's own line, not the helper's
            assert any(x.startswith("SKIPPED [1] test_sample.py:") and x.endswith(why) for x in lines), (
                name,
                out,
            )
    assert ("skipped" not in lines[-1]) if ci else ("4 skipped" in lines[-1]), out
