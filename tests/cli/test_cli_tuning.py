"""Bad tuning is an error, never silently accepted: flags and config keys, as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import free_port

STOCKADE = str(Path(sys.executable).parent / "stockade")
REPO = Path(__file__).resolve().parents[2]
RECORDING = str(REPO / "tests" / "data" / "recordings" / "shell_in_container.jsonl")
PRIORITIES = "emergency, alert, critical, error, warning, notice, informational, debug"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKADE_")}
    return subprocess.run(
        [STOCKADE, *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd, check=False
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["replay", "--min-priority", "loud", RECORDING],
            f"--min-priority: unknown priority 'loud' (one of {PRIORITIES})",
        ),
        (
            ["replay", "--aggregate", "-5", RECORDING],
            "--aggregate must be a number of seconds, 0 or more, not -5",
        ),
        (
            ["replay", "--aggregate", "inf", RECORDING],
            "--aggregate must be a number of seconds, 0 or more, not inf",
        ),
        (
            ["replay", "--rule-matching", "most", RECORDING],
            "--rule-matching must be one of first, all, not 'most'",
        ),
        (["replay", "-o", "yaml", RECORDING], "--output must be 'text' or 'json', not 'yaml'"),
        (["rules", "list", "--source", "nope"], "--source must be one of syscall, k8s_audit, not 'nope'"),
        (["rules", "list", "-o", "yaml"], "--output must be 'text' or 'json', not 'yaml'"),
        (["rules", "fields", "--source", "nope"], "--source must be one of syscall, k8s_audit, not 'nope'"),
        (["rules", "lint", "-o", "yaml", RECORDING], "--output must be 'text' or 'json', not 'yaml'"),
        (
            ["alerts", "list", "--source", "nope"],
            "--source must be one of syscall, k8s_audit, resources, not 'nope'",
        ),
        (
            ["events", "list", "--source", "resources"],
            "--source must be one of syscall, k8s_audit, not 'resources'",
        ),
        (
            ["alerts", "list", "--priority", "loud"],
            f"--priority: unknown priority 'loud' (one of {PRIORITIES})",
        ),
    ],
)
def test_a_bad_flag_is_a_one_line_usage_error(args: list[str], message: str) -> None:
    r = run(*args)
    assert (r.returncode, r.stdout, r.stderr) == (2, "", f"stockade: error: {message}\n")


def test_a_priority_flag_takes_falcos_names_in_any_case() -> None:
    r = run("replay", "--min-priority", "WARNING", "-q", RECORDING)
    assert r.returncode == 0, r.stderr
    loud = run("replay", "--min-priority", "warning", "-q", RECORDING)
    assert r.stdout == loud.stdout and len(r.stdout.splitlines()) == 2  # the Notice alert is not loaded


def config(tmp_path: Path, engine_yaml: str) -> Path:
    p = tmp_path / "stockade.yaml"
    p.write_text(
        f"data_dir: {tmp_path / 'data'}\nsensor:\n  backend: none\n"
        f"engine:\n  falco_rules_paths: []\n{engine_yaml}"
    )
    return p


@pytest.mark.parametrize("command", [["replay", RECORDING], ["up", "--port", "{port}"]])
def test_an_unknown_disabled_rule_or_tag_is_an_error_naming_the_key(
    tmp_path: Path, command: list[str]
) -> None:
    cfg = config(
        tmp_path,
        "  disabled_rules: [Shell Spawned in Contianer]\n  disabled_tags: [no_such_tag]\n",
    )
    # a free port: `up` checks it can listen before it reads the rules (port 1 needs root)
    r = run("-c", str(cfg), *(a.format(port=free_port()) for a in command), cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == "", r.stderr
    assert r.stderr == (
        f"stockade: error: {cfg} (key 'engine.disabled_rules'): "
        "no loaded rule is named 'Shell Spawned in Contianer' "
        "(did you mean 'Shell Spawned in Container' or 'Shell Spawned by Server Process in Container'?) "
        "(and 1 more)\n"
    )
    # refused before anything started: `up` checks its data directory first (it may make it), but
    # no database, spool or runtime file is in it
    data = tmp_path / "data"
    assert not data.exists() or not any(data.iterdir())


def test_a_known_disabled_rule_is_disabled_and_with_rules_files_unknown_ones_are_notes(
    tmp_path: Path,
) -> None:
    cfg = config(tmp_path, "  disabled_rules: [Shell Spawned in Container]\n")
    r = run("-c", str(cfg), "replay", "-o", "json", RECORDING)
    assert r.returncode == 0, r.stderr
    assert '"rule":"Shell Spawned in Container"' not in r.stdout
    assert '"rule":"Password Database Read in Container"' in r.stdout  # the other rules still fire
    rules = tmp_path / "mine.yaml"
    rules.write_text(
        "- rule: Shell\n  desc: d\n  condition: evt.type = execve and proc.name = bash\n"
        "  output: shell\n  priority: WARNING\n"
    )
    r = run("-c", str(cfg), "replay", "-r", str(rules), RECORDING)
    assert r.returncode == 0, r.stderr
    assert (
        "key 'engine.disabled_rules': no loaded rule is named 'Shell Spawned in Container' "
        "(ignored: not in the --rules files)"
    ) in r.stderr


@pytest.mark.parametrize(
    ("engine_yaml", "message"),
    [
        (
            "  min_priority: loud\n",
            f"key 'engine.min_priority': unknown priority 'loud' (one of {PRIORITIES})",
        ),
        (
            "  aggregate_window_s: -5\n",
            "key 'engine.aggregate_window_s': Input should be greater than or equal to 0",
        ),
    ],
)
def test_bad_tuning_in_the_config_file_is_an_error(tmp_path: Path, engine_yaml: str, message: str) -> None:
    cfg = config(tmp_path, engine_yaml)
    r = run("-c", str(cfg), "replay", RECORDING)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().endswith(message), r.stderr
    assert len(r.stderr.splitlines()) == 1
