"""Falco's append_output: extra text and fields on the rules a match selects, through the config."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockade.config import load_config
from stockade.engine import Engine
from stockade.engine.build import build_engine
from stockade.rules.ruleset import RuleLoadError

RULES = """
- rule: Shows its container
  desc: d
  condition: evt.type = execve and proc.name = cat
  output: cat (container_id=%container.id image=%container.image.repository)
  priority: NOTICE
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


def _engine(tmp_path: Path, overrides: dict[str, object]) -> Engine:
    f = tmp_path / "r.yaml"
    f.write_text(RULES)
    cfg = load_config(None, {"engine": {"falco_rules_paths": [], **overrides}}, environ={})
    return build_engine(cfg, [str(f)], rule_matching="all")[0]


def test_default_adds_ancestry_and_image_to_syscall_alerts(tmp_path: Path) -> None:
    engine = _engine(tmp_path, {})
    (a,) = engine.process_data("syscall", dict(EVENT))
    # Falco's default append_output for syscall rules, compact: the missing name and pod are left out
    assert a.output.endswith(
        "shell sh container_id=abcdef012345 container_image_repository=nginx container_image_tag=1.27"
    )
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
    (a,) = engine.process_data("syscall", dict(EVENT))
    assert a.output.endswith("shell sh on abcdef012345")
    assert a.output_fields["env"] == "prod"
    assert "proc.pid" not in a.output_fields  # the default is replaced, and "Other" did not match
    (b,) = engine.process_data("syscall", dict(EVENT, **{"proc.name": "id"}))
    assert b.output.endswith(" id ran")
    assert b.output_fields == {"proc.pid": 42, "evt.time": b.output_fields["evt.time"]}


def test_an_unknown_extra_field_is_a_load_error_naming_the_rule(tmp_path: Path) -> None:
    with pytest.raises(RuleLoadError) as ei:
        _engine(tmp_path, {"append_output": [{"extra_fields": ["proc.no_such_field"]}]})
    assert "proc.no_such_field" in str(ei.value)
    assert "Shell in container" in str(ei.value) or "r.yaml" in str(ei.value)


def test_a_bad_entry_is_a_config_error() -> None:
    from stockade.errors import ConfigError

    with pytest.raises(ConfigError) as ei:
        load_config(None, {"engine": {"append_output": [{"match": {"sauce": "x"}}]}}, environ={})
    assert "sauce" in str(ei.value)


def test_the_default_names_the_container_and_pod_when_known_and_nothing_else(tmp_path: Path) -> None:
    engine = _engine(tmp_path, {})
    k8s = dict(
        EVENT,
        **{"container.name": "web", "k8s.pod.name": "web-7d4b9c-x2x", "k8s.ns.name": "prod"},
    )
    (a,) = engine.process_data("syscall", k8s)
    assert a.output.endswith(
        "shell sh container_id=abcdef012345 container_name=web container_image_repository=nginx "
        "container_image_tag=1.27 k8s_pod_name=web-7d4b9c-x2x k8s_ns_name=prod"
    )
    host = {"evt.type": "execve", "proc.name": "sh", "container.id": "host", "container.name": "host"}
    (h,) = engine.process_data("syscall", host)
    assert h.output.endswith("shell sh container_id=host container_name=host")
    assert "<NA>" not in h.output
    # Falco's JSON shape: every field of the output, null when missing
    assert h.output_fields["k8s.pod.name"] is None and h.output_fields["container.image.tag"] is None
    assert h.output_fields["container.name"] == "host"
    # a rule whose output already shows the container id: not twice
    (c,) = engine.process_data("syscall", dict(k8s, **{"proc.name": "cat"}))
    assert c.output.endswith(
        "cat (container_id=abcdef012345 image=nginx) container_name=web container_image_tag=1.27 "
        "k8s_pod_name=web-7d4b9c-x2x k8s_ns_name=prod"
    )
    assert c.output.count("container_id=") == 1


def test_compact_is_per_entry_and_plain_extra_output_keeps_falco_na(tmp_path: Path) -> None:
    engine = _engine(
        tmp_path,
        {
            "append_output": [
                {"extra_output": "pod=%k8s.pod.name"},
                {"extra_output": "ns=%k8s.ns.name user=%user.name", "compact": True},
            ]
        },
    )
    (a,) = engine.process_data("syscall", dict(EVENT))
    assert a.output.endswith("shell sh pod=<NA>")
