"""The CLI as users run it: real subprocesses of the installed `stockade` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

from helpers import in_parallel

STOCKADE = str(Path(sys.executable).parent / "stockade")
REPO = Path(__file__).resolve().parents[2]
RECORDING = REPO / "tests" / "data" / "recordings" / "shell_in_container.jsonl"


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "STOCKADE_CONFIG": ""}
    return subprocess.run(
        [STOCKADE, *args], input=stdin, capture_output=True, timeout=120, env=env, check=False
    )


def test_help_and_version() -> None:
    helps = (
        ["--help"],
        ["replay", "--help"],
        ["rules", "--help"],
        ["rules", "lint", "--help"],
        ["up", "--help"],
    )
    *shown, r = in_parallel([partial(run, *args) for args in (*helps, ["--version"])])
    for args, h in zip(helps, shown, strict=True):
        assert h.returncode == 0, (args, h.stderr)
        assert b"Usage" in h.stdout, args
    assert r.returncode == 0 and r.stdout.startswith(b"stockade ")


def test_replay_prints_falco_json_alerts(falco_rules_path: Path) -> None:
    r = run("replay", str(RECORDING), "--rules", str(falco_rules_path), "--output", "json")
    assert r.returncode == 0, r.stderr
    alerts = [json.loads(line) for line in r.stdout.splitlines()]
    rules = {a["rule"] for a in alerts}
    assert "Terminal shell in container" in rules
    for a in alerts:
        assert {"time", "rule", "priority", "output", "output_fields", "source", "tags", "hostname"} <= set(a)
        assert a["stockade"]["id"]
    assert b"replayed" in r.stderr


def test_replay_from_stdin_with_malformed_lines(falco_rules_path: Path) -> None:
    data = RECORDING.read_bytes() + b'not json\n{"no": "type"}\n'
    r = run("replay", "-", "--rules", str(falco_rules_path), "-o", "json", stdin=data)
    assert r.returncode == 0, r.stderr
    assert b"2 malformed records skipped" in r.stderr
    assert b"<stdin>:" in r.stderr or b"-:" in r.stderr
    assert len(r.stdout.splitlines()) >= 1


def test_replay_of_a_missing_file_is_one_clear_error() -> None:
    r = run("replay", "/nonexistent/file.jsonl", "--rules", str(RECORDING))
    assert r.returncode != 0
    assert b"Traceback" not in r.stderr


def test_broken_rules_file_is_one_line_error_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "- rule: x\n  desc: d\n  condition: evt.type = open and proc.nam = x\n  output: o\n  priority: INFO\n"
    )
    r = run("replay", str(RECORDING), "--rules", str(bad))
    assert r.returncode == 1
    assert b"Traceback" not in r.stderr
    assert f"{bad}:3".encode() in r.stderr and b"proc.nam" in r.stderr


def test_rules_lint_reports_everything_and_exits_nonzero(tmp_path: Path, falco_rules_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "- rule: a\n  desc: d\n  condition: evt.type = open and nosuch.f = 1\n  output: o\n  priority: INFO\n"
        "- rule: b\n  desc: d\n  condition: (evt.type = open\n  output: o\n  priority: INFO\n"
        "- list: unused\n  items: [x]\n"
    )
    r = run("rules", "lint", str(bad))
    assert r.returncode == 1
    out = r.stdout.decode()
    assert "nosuch.f" in out and "rule 'b'" in out and "LOAD_UNUSED_LIST" in out
    r = run("rules", "lint", str(falco_rules_path), "-o", "json")
    assert r.returncode == 0
    report = json.loads(r.stdout)
    assert report["errors"] == 0 and report["rules"] == 25


@pytest.mark.parametrize(
    "args", [["replay", "x", "--source", "nope"], ["--output", "yaml", "rules", "fields"]]
)
def test_usage_errors_are_clean(args: list[str]) -> None:
    r = run(*args)
    assert r.returncode != 0 and b"Traceback" not in r.stderr
