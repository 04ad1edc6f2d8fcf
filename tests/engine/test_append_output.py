"""Falco's append_output: extra text and fields on the rules a match selects, through the config."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockade.config import load_config
from stockade.rules.ruleset import RuleLoadError
from stockade.runtime.offline import build_engine

RULES = """
- rule: Shell in container
  desc: d
  condition: evt.type = execve and proc.name = sh
  output: shell %proc.name
  priority: WARNING
  tags: [container, shell]
- rule: Other
  desc: d
  condition: evt.type = execve and proc.name = id
  output: id ran
  priority: NOTICE
  tags: [host]
"""

EVENT = {
    "evt.type": "execve",
    "evt.dir": "<",
    "proc.name": "sh",
    "proc.pid": 42,
    "proc.ppid": 7,
    "proc.pname": "runc",
    "proc.aname[2]": "containerd-shim",
    "container.id": "abcdef012345",
    "container.image.repository": "nginx",
    "container.image.tag": "1.27",
}


def _engine(tmp_path: Path, overrides: dict[str, object]) -> object:
    f = tmp_path / "r.yaml"
    f.write_text(RULES)
    cfg = load_config(None, {"engine": {"falco_rules_paths": [], **overrides}}, environ={})
    return build_engine(cfg, [str(f)], rule_matching="all")[0]


def test_default_adds_ancestry_and_image_to_syscall_alerts(tmp_path: Path) -> None:
    engine = _engine(tmp_path, {})
    (a,) = engine.process_data("syscall", dict(EVENT))  # type: ignore[attr-defined]
    assert a.output.endswith("shell sh")  # the text is the rule's own
    f = a.output_fields
    assert f["proc.name"] == "sh"
    assert (f["proc.pid"], f["proc.ppid"], f["proc.pname"], f["proc.aname[2]"]) == (
        42,
        7,
        "runc",
        "containerd-shim",
    )
    assert (f["container.image.repository"], f["container.image.tag"]) == ("nginx", "1.27")


def test_match_by_tags_rule_and_static_fields_and_extra_output(tmp_path: Path) -> None:
    engine = _engine(
        tmp_path,
        {
            "append_output": [
                {
                    "match": {"tags": ["container"]},
                    "extra_output": "on %container.id",
                    "extra_fields": [{"env": "prod"}],
                },
                {"match": {"rule": "Other"}, "extra_fields": ["proc.pid"]},
            ]
        },
    )
    (a,) = engine.process_data("syscall", dict(EVENT))  # type: ignore[attr-defined]
    assert a.output.endswith("shell sh on abcdef012345")
    assert a.output_fields["env"] == "prod"
    assert "proc.pid" not in a.output_fields  # the default is replaced, and "Other" did not match
    (b,) = engine.process_data("syscall", dict(EVENT, **{"proc.name": "id"}))  # type: ignore[attr-defined]
    assert b.output.endswith(" id ran")
    assert b.output_fields == {"proc.pid": 42, "evt.time": b.output_fields["evt.time"]}


def test_an_unknown_extra_field_is_a_load_error_naming_the_rule(tmp_path: Path) -> None:
    with pytest.raises(RuleLoadError) as ei:
        _engine(tmp_path, {"append_output": [{"extra_fields": ["proc.no_such_field"]}]})
    assert "proc.no_such_field" in str(ei.value)
    assert "Shell in container" in str(ei.value) or "r.yaml" in str(ei.value)


def test_a_bad_entry_is_a_config_error(tmp_path: Path) -> None:
    from stockade.errors import ConfigError

    with pytest.raises(ConfigError) as ei:
        load_config(None, {"engine": {"append_output": [{"match": {"sauce": "x"}}]}}, environ={})
    assert "sauce" in str(ei.value)
