"""Falco's rules-file semantics: append, override, exceptions, enabled, errors with locations."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from stockade.engine import Engine
from stockade.model.event import Event
from stockade.rules.loader import check_rules, load_rules
from stockade.rules.ruleset import RuleLoadError

BASE = """
- list: shells
  items: [bash, sh]
- macro: spawned_process
  condition: (evt.type in (execve, execveat) and evt.dir=<)
- rule: Shell
  desc: a shell
  condition: spawned_process and proc.name in (shells)
  output: shell %proc.name (parent=%proc.pname)
  priority: WARNING
  tags: [shell]
- rule: Any exec
  desc: every exec
  condition: spawned_process
  output: exec %proc.name
  priority: INFO
"""


def _files(tmp_path: Path, *texts: str) -> list[str]:
    out = []
    for i, t in enumerate(texts):
        p = tmp_path / f"r{i}.yaml"
        p.write_text(textwrap.dedent(t))
        out.append(str(p))
    return out


def _exec(name: str, **kw: object) -> Event:
    return Event("syscall", {"evt.type": "execve", "evt.dir": "<", "proc.name": name, **kw})


def _names(engine: Engine, ev: Event) -> list[str]:
    return [a.rule for a in engine.process(ev)]


def test_first_match_fires_only_the_first_rule_in_load_order(tmp_path: Path) -> None:
    files = _files(tmp_path, BASE)
    assert _names(Engine.from_files(files, rule_matching="first"), _exec("bash")) == ["Shell"]
    assert _names(Engine.from_files(files, rule_matching="all"), _exec("bash")) == ["Shell", "Any exec"]
    assert _names(Engine.from_files(files, rule_matching="first"), _exec("ls")) == ["Any exec"]


def test_list_append_and_override_replace(tmp_path: Path) -> None:
    files = _files(
        tmp_path,
        BASE,
        """
        - list: shells
          items: [zsh]
          override:
            items: append
        """,
    )
    e = Engine.from_files(files, rule_matching="all")
    assert "Shell" in _names(e, _exec("zsh"))
    assert "Shell" in _names(e, _exec("bash"))
    files = _files(tmp_path, BASE, "- list: shells\n  items: [zsh]\n  override:\n    items: replace\n")
    e = Engine.from_files(files, rule_matching="all")
    assert "Shell" not in _names(e, _exec("bash"))


def test_deprecated_append_true_still_works(tmp_path: Path) -> None:
    files = _files(tmp_path, BASE, "- list: shells\n  items: [fish]\n  append: true\n")
    e = Engine.from_files(files, rule_matching="all")
    assert "Shell" in _names(e, _exec("fish"))


def test_rule_condition_append_and_output_replace(tmp_path: Path) -> None:
    files = _files(
        tmp_path,
        BASE,
        """
        - rule: Shell
          condition: and proc.pname != sshd
          output: replaced %proc.name
          override:
            condition: append
            output: replace
        """,
    )
    e = Engine.from_files(files, rule_matching="all")
    alerts = e.process(_exec("bash", **{"proc.pname": "runc"}))
    assert alerts[0].rule == "Shell" and "replaced bash" in alerts[0].output
    assert "Shell" not in _names(e, _exec("bash", **{"proc.pname": "sshd"}))


def test_enabled_false_disables_and_enabled_only_item_reenables(tmp_path: Path) -> None:
    files = _files(tmp_path, BASE, "- rule: Shell\n  enabled: false\n")
    assert "Shell" not in _names(Engine.from_files(files, rule_matching="all"), _exec("bash"))
    files = _files(tmp_path, BASE, "- rule: Shell\n  enabled: false\n", "- rule: Shell\n  enabled: true\n")
    assert "Shell" in _names(Engine.from_files(files, rule_matching="all"), _exec("bash"))


def test_exceptions_tuples_and_single_field(tmp_path: Path) -> None:
    files = _files(
        tmp_path,
        BASE,
        """
        - list: allowed_parents
          items: [cron]
        - rule: Shell
          exceptions:
            - name: known
              fields: [proc.pname, proc.cmdline]
              comps: [=, startswith]
              values:
                - [sshd, bash -l]
            - name: parents
              fields: proc.pname
              values: [allowed_parents, supervisord]
          override:
            exceptions: append
        """,
    )
    e = Engine.from_files(files, rule_matching="all")
    assert "Shell" not in _names(e, _exec("bash", **{"proc.pname": "sshd", "proc.cmdline": "bash -login"}))
    assert "Shell" in _names(e, _exec("bash", **{"proc.pname": "sshd", "proc.cmdline": "bash -c id"}))
    assert "Shell" not in _names(e, _exec("bash", **{"proc.pname": "cron"}))
    assert "Shell" not in _names(e, _exec("bash", **{"proc.pname": "supervisord"}))
    assert "Shell" in _names(e, _exec("bash", **{"proc.pname": "nginx"}))


def test_missing_field_makes_comparisons_false_and_their_negation_true(tmp_path: Path) -> None:
    files = _files(
        tmp_path,
        """
        - rule: tty
          desc: d
          condition: evt.type = execve and proc.tty != 0
          output: o
          priority: INFO
        - rule: not tty
          desc: d
          condition: evt.type = execve and not proc.tty = 0
          output: o
          priority: INFO
        """,
    )
    e = Engine.from_files(files, rule_matching="all")
    assert _names(e, _exec("x")) == ["not tty"]
    assert _names(e, _exec("x", **{"proc.tty": 34816})) == ["tty", "not tty"]
    assert _names(e, _exec("x", **{"proc.tty": 0})) == []


def test_every_error_is_reported_with_file_line_column_and_item(tmp_path: Path) -> None:
    files = _files(
        tmp_path,
        """
        - rule: one
          desc: d
          condition: evt.type = execve and proc.nme = bash
          output: o
          priority: INFO
        - rule: two
          desc: d
          condition: evt.type = execve and undefined_macro
          output: o
          priority: INFO
        - rule: three
          desc: d
          condition: evt.type = execve and proc.name in (undefined_list
          output: o
          priority: INFO
        - rule: four
          desc: d
          condition: evt.type = open and fd.name regex "("
          output: o
          priority: INFO
        - macro: m
          condition: proc.name = x
          override:
            condition: append
        """,
    )
    with pytest.raises(RuleLoadError) as ei:
        load_rules(files)
    errs = [p for p in ei.value.problems if p.level == "error"]
    by_item = {p.location.item: p for p in errs if p.location}
    loc = by_item["rule 'one'"].location
    assert loc is not None and (loc.line, loc.column) == (4, 36)
    assert "nonexistent field proc.nme" in by_item["rule 'one'"].message
    assert by_item["rule 'two'"].message == "Undefined macro 'undefined_macro' used in filter."
    assert "expected ')'" in by_item["rule 'three'"].message or "syntax" in by_item["rule 'three'"].message
    assert "regular expression" in by_item["rule 'four'"].message
    assert any("no macro by that name" in p.message for p in errs)
    assert len(errs) == 5
    assert str(ei.value).startswith(files[0])


def test_broken_yaml_is_an_error_with_position(tmp_path: Path) -> None:
    rs = check_rules(_files(tmp_path, "- rule: x\n  desc: [unclosed\n"))
    assert rs.errors and rs.errors[0].code == "LOAD_ERR_YAML_PARSE"
    assert rs.errors[0].location and rs.errors[0].location.line is not None


def test_warnings_like_falco(tmp_path: Path) -> None:
    rs = check_rules(
        _files(
            tmp_path,
            """
            - list: unused_list
              items: [a]
            - macro: unused_macro
              condition: proc.name = a
            - rule: no evttype
              desc: d
              condition: proc.name = bash
              output: o
              priority: INFO
            - rule: never
              desc: d
              condition: evt.type = open and evt.type = execve
              output: o
              priority: INFO
            """,
        )
    )
    codes = sorted(p.code for p in rs.warnings)
    assert codes == ["LOAD_NEVER_MATCHES", "LOAD_NO_EVTTYPE", "LOAD_UNUSED_LIST", "LOAD_UNUSED_MACRO"]
    assert not rs.errors


def test_required_engine_version_too_new_is_an_error(tmp_path: Path) -> None:
    rs = check_rules(_files(tmp_path, "- required_engine_version: 99.0.0\n"))
    assert rs.errors and "99.0.0" in rs.errors[0].message
    rs = check_rules(_files(tmp_path, "- required_engine_version: 15\n"))
    assert not rs.errors


def test_required_plugin_versions_are_reported(falco_rules_path: Path) -> None:
    rs = check_rules([str(falco_rules_path)])
    assert rs.required_plugins[0]["name"] == "container"
    assert rs.required_plugins[0]["satisfied_by"] == "container"


def test_both_falco_files_load_unmodified_with_zero_errors(
    falco_rules_path: Path, k8s_audit_rules_path: Path
) -> None:
    rs = check_rules([str(falco_rules_path), str(k8s_audit_rules_path)])
    assert rs.errors == []
    assert len([r for r in rs.rules.values() if r.source == "syscall"]) == 25
    assert len([r for r in rs.rules.values() if r.source == "k8s_audit"]) == 48
    assert all(r.ast is not None for r in rs.rules.values())


def test_output_formatting_fields_args_transformers_and_na(tmp_path: Path) -> None:
    files = _files(
        tmp_path,
        """
        - rule: fmt
          desc: d
          condition: evt.type = openat
          output: "f=%fd.name dir=%fd.directory gp=%proc.aname[2] up=%toupper(proc.name) miss=%container.name"
          priority: NOTICE
        """,
    )
    e = Engine.from_files(files, hostname="h1")
    (a,) = e.process(
        Event(
            "syscall",
            {"evt.type": "openat", "fd.name": "/etc/passwd", "proc.name": "cat", "proc.aname[2]": "sshd"},
        )
    )
    assert "f=/etc/passwd dir=/etc gp=sshd up=CAT miss=<NA>" in a.output
    assert a.output_fields["fd.directory"] == "/etc" and a.output_fields["container.name"] is None
    j = a.to_falco_json()
    assert set(j) >= {"time", "rule", "priority", "output", "output_fields", "source", "tags", "hostname"}
    assert j["priority"] == "Notice" and j["hostname"] == "h1" and j["source"] == "syscall"


def test_sequence_rule_fires_only_on_ordered_steps_in_window_and_same_container(tmp_path: Path) -> None:
    files = _files(
        tmp_path,
        """
        - rule: Shell then download then connect
          desc: d
          sequence:
            by: container.id
            within: 60s
            steps:
              - condition: evt.type = execve and proc.name = bash
              - condition: evt.type = execve and proc.name in (curl, wget)
              - condition: evt.type = connect
          output: chain in %container.id by %proc.name
          priority: CRITICAL
        """,
    )
    e = Engine.from_files(files)
    s = 1_000_000_000
    c = {"container.id": "abc"}
    assert (
        e.process(Event("syscall", {"evt.type": "execve", "proc.name": "curl", "evt.time": 1 * s, **c})) == []
    )
    assert (
        e.process(Event("syscall", {"evt.type": "execve", "proc.name": "bash", "evt.time": 2 * s, **c})) == []
    )
    # another container's step does not advance this one
    assert (
        e.process(
            Event(
                "syscall", {"evt.type": "execve", "proc.name": "curl", "evt.time": 3 * s, "container.id": "x"}
            )
        )
        == []
    )
    assert (
        e.process(Event("syscall", {"evt.type": "connect", "proc.name": "curl", "evt.time": 4 * s, **c}))
        == []
    )
    assert (
        e.process(Event("syscall", {"evt.type": "execve", "proc.name": "wget", "evt.time": 5 * s, **c})) == []
    )
    (a,) = e.process(Event("syscall", {"evt.type": "connect", "proc.name": "wget", "evt.time": 6 * s, **c}))
    assert a.rule == "Shell then download then connect" and "chain in abc by wget" in a.output
    assert [st["step"] for st in a.extra["sequence"]] == [1, 2, 3]
    # too slow: outside the window
    e.process(Event("syscall", {"evt.type": "execve", "proc.name": "bash", "evt.time": 100 * s, **c}))
    e.process(Event("syscall", {"evt.type": "execve", "proc.name": "curl", "evt.time": 150 * s, **c}))
    assert e.process(Event("syscall", {"evt.type": "connect", "evt.time": 170 * s, **c})) == []


def test_unordered_sequence_needs_every_step_in_any_order(tmp_path: Path) -> None:
    files = _files(
        tmp_path,
        """
        - rule: Recon
          desc: d
          sequence:
            by: container.id
            within: 10s
            ordered: false
            steps:
              - condition: evt.type = execve and proc.name = id
              - condition: evt.type = execve and proc.name = uname
              - condition: evt.type = execve and proc.name = ip
          output: recon in %container.id
          priority: NOTICE
        """,
    )
    e = Engine.from_files(files)
    s = 1_000_000_000

    def run(name: str, t: int, cid: str = "abc") -> list[Any]:
        return e.process(
            Event(
                "syscall", {"evt.type": "execve", "proc.name": name, "evt.time": t * s, "container.id": cid}
            )
        )

    assert run("ip", 1) == [] and run("ip", 2) == []  # the same step again does not count twice
    assert run("uname", 3) == []
    assert run("id", 4, cid="other") == []  # another container
    (a,) = run("id", 5)
    assert [st["step"] for st in a.extra["sequence"]] == [3, 2, 1]
    # outside the window: the partial sequence expired
    run("uname", 100)
    run("ip", 105)
    assert run("id", 111) == []
    assert e.stats.to_dict()["sequences_expired"] == 1
    assert e.stats.to_dict()["sequences_evicted"] == 0


def test_sequence_ordered_must_be_a_boolean(tmp_path: Path) -> None:
    files = _files(
        tmp_path,
        """
        - rule: R
          desc: d
          sequence:
            ordered: sometimes
            steps: [evt.type = execve, evt.type = connect]
          output: o
          priority: NOTICE
        """,
    )
    with pytest.raises(RuleLoadError) as ei:
        Engine.from_files(files)
    assert "sequence.ordered" in str(ei.value)


def test_compiled_code_error_falls_back_to_interpreter_and_counts(tmp_path: Path) -> None:
    files = _files(
        tmp_path,
        "- rule: r\n  desc: d\n  condition: evt.type = open and fd.name startswith /etc\n  output: o\n  priority: INFO\n",
    )
    e = Engine.from_files(files)
    # a list where a string is expected: the rule still evaluates ("any of" semantics), nothing raises
    assert [
        a.rule for a in e.process(Event("syscall", {"evt.type": "open", "fd.name": ["/etc/x", "/tmp"]}))
    ] == ["r"]
    assert e.process(Event("syscall", {"evt.type": "open", "fd.name": 12})) == []
