"""The CLI's error format as it really prints: `stockade: error: <where>: <what>`, said once, with
the error's exit status (docs/operations.md, "Errors"). Run as real processes, but for the rules
reload, whose API answer comes from the real app in this process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from helpers import free_port
from stockade.api.app import create_app
from stockade.cli import locate
from stockade.cli.main import main
from stockade.config import load_config
from stockade.runtime.service import Runtime

STOCKADE = str(Path(sys.executable).parent / "stockade")
REPO = Path(__file__).resolve().parents[2]
RECORDING = str(REPO / "tests" / "data" / "recordings" / "shell_in_container.jsonl")

GOOD_RULE = """\
- rule: Shadow read
  desc: d
  condition: evt.type = openat and fd.name = /etc/shadow
  output: shadow read by %proc.name
  priority: WARNING
"""
#: two errors: a condition cut short (line 3, column 25) and an unknown field (line 8)
BROKEN_RULES = """\
- rule: Cut short
  desc: d
  condition: proc.name =
  output: o
  priority: WARNING
- rule: Typo
  desc: d
  condition: proc.nam = bash
  output: o
  priority: WARNING
"""
CUT_SHORT = "syntax error in condition: expected a value [LOAD_ERR_COMPILE_CONDITION]"


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("STOCKADE_")}
    return subprocess.run(
        [STOCKADE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **(env or {})},
        cwd=cwd,
        check=False,
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A configuration that loads no rules of the machine's (only those a test names)."""
    p = tmp_path / "stockade.yaml"
    p.write_text(f"data_dir: {tmp_path / 'data'}\nengine:\n  falco_rules_paths: []\n  builtin_rules: false\n")
    return p


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    p = tmp_path / "broken.yaml"
    p.write_text(BROKEN_RULES)
    return p


@pytest.mark.parametrize(
    "command",
    [["replay", "--rules", "{rules}", RECORDING], ["rules", "list", "--rules", "{rules}"]],
    ids=["replay", "rules-list"],
)
def test_a_broken_rules_file_is_one_error_line_naming_the_place(
    config: Path, broken: Path, command: list[str]
) -> None:
    r = run("-c", str(config), *(a.format(rules=broken) for a in command))
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (
        f"stockade: error: {broken}:3:25 (rule 'Cut short'): {CUT_SHORT}"
        " (and 1 more errors; `stockade rules lint` lists them)\n"
    )


def test_rules_lint_lists_every_problem_on_standard_output(broken: Path) -> None:
    r = run("rules", "lint", str(broken))
    assert (r.returncode, r.stderr) == (1, "")
    lines = r.stdout.splitlines()
    assert lines[0] == f"{broken}:3:25 (rule 'Cut short'): error: {CUT_SHORT}"
    assert lines[1].startswith(f"{broken}:8:") and "proc.nam" in lines[1]
    assert lines[2] == "1 files: 2 rules, 0 macros, 0 lists; 2 errors, 0 warnings"


def test_a_bad_config_key_is_one_error_line_naming_the_file_and_key(tmp_path: Path) -> None:
    cfg = tmp_path / "stockade.yaml"
    cfg.write_text("engine:\n  rule_matchin: all\n")
    r = run("-c", str(cfg), "rules", "list")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == f"stockade: error: {cfg}: key 'engine.rule_matchin': Extra inputs are not permitted\n"


def test_a_bad_config_value_from_the_environment_names_the_variable(config: Path) -> None:
    r = run("-c", str(config), "rules", "list", env={"STOCKADE_ENGINE__RULE_MATCHING": "most"})
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == (
        "stockade: error: STOCKADE_ENGINE__RULE_MATCHING=most: key 'engine.rule_matching': "
        "Input should be 'first' or 'all'\n"
    )


@pytest.mark.parametrize(
    "command", [["status"], ["rules", "reload"], ["rules", "mutes"]], ids=["status", "reload", "mutes"]
)
def test_an_unreachable_api_is_one_error_line_naming_the_address(config: Path, command: list[str]) -> None:
    port = free_port()
    r = run("-c", str(config), *command, "--port", str(port))
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == (
        f"stockade: error: no Stockade running at http://127.0.0.1:{port} (connection refused); "
        "start it with `stockade up`\n"
    )


def test_a_usage_error_shows_the_usage_then_one_error_line() -> None:
    r = run("replay", "--bogus", RECORDING)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.splitlines() == [
        "Usage: stockade replay [OPTIONS] {files}...",
        "Try 'stockade replay -h' for help.",
        "stockade: error: No such option: --bogus",
    ]


@pytest.mark.parametrize("args", [["-o", "yaml", "rules", "fields"], ["status", "-o", "yaml"]])
def test_every_output_flag_is_checked_the_same_way(args: list[str]) -> None:
    r = run(*args)
    assert (r.returncode, r.stdout, r.stderr) == (
        2,
        "",
        "stockade: error: --output must be 'text' or 'json', not 'yaml'\n",
    )


def test_an_input_that_cannot_be_read_is_an_error_line_after_the_summary(
    config: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.jsonl"
    rules = tmp_path / "rules.yaml"
    rules.write_text(GOOD_RULE)
    r = run("-c", str(config), "replay", "--rules", str(rules), str(missing))
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines[-1] == f"stockade: error: cannot open {missing}: No such file or directory"
    assert sum("error:" in line for line in lines) == 1
    quiet = run("-c", str(config), "replay", "-q", "--rules", str(rules), str(missing))
    assert (quiet.returncode, quiet.stderr) == (1, lines[-1] + "\n")


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[tuple[Runtime, Path]]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(GOOD_RULE)
    cfg = load_config(
        None, {"data_dir": str(tmp_path / "data"), "engine": {"falco_rules_paths": []}}, environ={}
    )
    rt = Runtime(cfg, rules=[str(rules)])
    try:
        yield rt, rules
    finally:
        rt.close()


def test_a_failed_reload_says_the_first_error_once_and_the_others_below_it(
    runtime: tuple[Runtime, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rt, rules = runtime

    @contextmanager
    def the_running_api(*_: object) -> Iterator[TestClient]:
        with TestClient(create_app(rt.store, rt)) as c:
            yield c

    monkeypatch.setattr(locate, "api_client", the_running_api)
    assert main(["rules", "reload"]) == 0
    assert capsys.readouterr().out.startswith("rules reloaded: 1 rules active (before: 1)")

    rules.write_text(BROKEN_RULES)
    assert main(["rules", "reload"]) == 1
    out, err = capsys.readouterr()
    first, *others = err.splitlines()
    assert out == ""
    assert first == (
        f"stockade: error: rules reload failed, the running rules are kept: {rules}:3:25 (rule 'Cut short'): "
        f"{CUT_SHORT} (and 1 more errors; `stockade rules lint` lists them)"
    )
    assert len(others) == 1 and others[0].startswith(f"  {rules}:8:") and "proc.nam" in others[0]
    assert rt.engine.active_rules == 1  # the running rules are kept
