"""`stockade rules lint` as users run it: Falco's codes with file:line:column, exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

STOCKADE = str(Path(sys.executable).parent / "stockade")


def lint(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STOCKADE_CONFIG": ""}
    return subprocess.run(
        [STOCKADE, "rules", "lint", *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )


RULE = """- rule: open by cat
  desc: d
  condition: evt.type = open and proc.name = cat
  output: "opened %fd.name by %proc.name"
  priority: WARNING
"""


def test_bare_dash_item_loads_as_in_falco(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text("-\n" + RULE + "-\n")
    r = lint(str(f))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 rules" in r.stdout and "0 errors, 0 warnings" in r.stdout


def test_unknown_output_field_fails_lint_with_falco_code_and_position(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text(RULE.replace("%fd.name", "%fd.nosuchfield"))
    r = lint(str(f))
    assert r.returncode == 1
    line = next(x for x in r.stdout.splitlines() if "LOAD_ERR_COMPILE_OUTPUT" in x)
    # the quoted output text starts on line 4 at column 12; its % is 7 characters in
    assert line.startswith(
        f"{f}:4:19 (rule 'open by cat'): error: invalid formatting token fd.nosuchfield"
    ), line
    r = lint("-o", "json", str(f))
    (p,) = json.loads(r.stdout)["problems"]
    assert (p["code"], p["level"], p["line"], p["item"]) == (
        "LOAD_ERR_COMPILE_OUTPUT",
        "error",
        4,
        "rule 'open by cat'",
    )


def test_skip_if_unknown_filter_is_a_warning(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text(RULE.replace("proc.name = cat", "proc.nobody = cat") + "  skip-if-unknown-filter: true\n")
    r = lint(str(f))
    assert r.returncode == 0, r.stdout
    assert "LOAD_UNKNOWN_FILTER" in r.stdout and "warning" in r.stdout
