"""ResponsePlaybook documents: parsed strictly with errors naming file and line; triggers matched
as documented; a kill never runs before a capture."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockade.errors import ConfigError
from stockade.incidents.playbook import load_playbooks, matches, parse_playbooks, plan
from stockade.model.alert import Alert
from stockade.model.incident import Incident

GOOD = """\
apiVersion: stockade.dev/v1alpha1
kind: WorkloadPolicy
metadata: {name: skipped}
---
apiVersion: stockade.dev/v1alpha1
kind: ResponsePlaybook
metadata:
  name: contain-credential-theft
spec:
  trigger:
    rules: ["Read sensitive file*", "Terminal shell in container"]
    tags: [T1552]
    priority: warning
    incident_score: 40
  actions:
    - action: notify
      sinks: [chat]
    - action: isolate
      allow: [10.9.0.0/24]
    - action: kill
      approval: required
"""


def _alert(
    rule: str = "Read sensitive file untrusted", tags: tuple[str, ...] = ("T1552.001",), prio: str = "Error"
) -> Alert:
    return Alert(1, rule, prio, "x", {"container.id": "c1"}, "syscall", list(tags), "h")


def _incident(score: float) -> Incident:
    return Incident("inc-1", "workload:w", "h", 1, 1, 1, 1, "t", score=score)


def test_a_playbook_parses_and_its_trigger_holds_only_when_every_condition_does() -> None:
    (pb,) = parse_playbooks(GOOD, "pb.yaml")
    assert pb.name == "contain-credential-theft" and pb.spec.trigger.priority == "Warning"
    assert matches(pb, _alert(), _incident(50), "c1")
    assert not matches(pb, _alert(), _incident(50), None)  # a host alert: containers only
    assert not matches(pb, _alert(), _incident(10), "c1")  # score too low
    assert not matches(pb, _alert(prio="Notice"), _incident(50), "c1")
    assert not matches(pb, _alert(tags=("T1059",)), _incident(50), "c1")
    assert not matches(pb, _alert(rule="Other"), _incident(50), "c1")
    steps = [(s.action, s.approval) for s in plan(pb)]
    # the kill waits for approval, and a capture (waiting with it) comes first
    assert steps == [("notify", "auto"), ("isolate", "auto"), ("capture", "required"), ("kill", "required")]


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("a: [1\n", "pb.yaml:2", "not valid YAML"),
        (GOOD.replace("action: isolate", "action: explode"), "pb.yaml:5", "spec.actions.1.action"),
        (GOOD.replace("10.9.0.0/24", "10.9.0.300/24"), "pb.yaml:5", "spec.actions.1.allow"),
        (GOOD.replace("10.9.0.0/24", "10.9.0.0/24:9-8"), "pb.yaml:5", "bad port range"),
        (GOOD.replace("priority: warning", "priority: loud"), "pb.yaml:5", "is not a priority"),
        (
            GOOD.replace("    - action: notify", "    - action: notify\n      colour: red"),
            "pb.yaml:5",
            "colour",
        ),
        (GOOD + "---\n" + GOOD.split("---\n")[1], "pb.yaml", "two playbooks are named"),
    ],
)
def test_broken_playbooks_say_what_and_where(text: str, where: str, what: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_playbooks(text, "pb.yaml")
    msg = str(e.value)
    assert where in msg and what in msg, msg


def test_loading_files_and_directories(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "notes.txt").write_text("ignored")
    assert [p.name for p in load_playbooks([tmp_path])] == ["contain-credential-theft"]
    (tmp_path / "b.yml").write_text(GOOD)
    with pytest.raises(ConfigError, match="also defined in"):
        load_playbooks([tmp_path])
    with pytest.raises(ConfigError, match="no playbook file"):
        load_playbooks([tmp_path / "missing.yaml"])


@pytest.mark.root
def test_stockade_up_refuses_a_broken_playbook_naming_file_line_and_field(tmp_path: Path) -> None:
    import subprocess
    import sys

    from helpers import free_port

    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("action: isolate", "action: explode"))
    cfg = tmp_path / "stockade.yaml"
    cfg.write_text(f"response:\n  playbooks: [{bad}]\n")
    stockade = str(Path(sys.executable).parent / "stockade")
    cmd = [
        stockade,
        "--config",
        str(cfg),
        "up",
        "--port",
        str(free_port()),
        "--data-dir",
        str(tmp_path / "d"),
    ]
    r = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, check=False, stdin=subprocess.DEVNULL
    )
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.startswith(
        f"stockade: error: {bad}:5: ResponsePlaybook document 2, spec.actions.1.action"
    ), r.stderr
    assert "Traceback" not in r.stderr
