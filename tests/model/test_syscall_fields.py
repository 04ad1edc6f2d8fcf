"""The syscall field catalogue: Stockade's own fields are typed, described and usable in rules."""

from __future__ import annotations

from stockade.engine import Engine
from stockade.model.event import Event
from stockade.model.fields import FieldType, lookup
from stockade.model.syscall_fields import SYSCALL_FIELD_DESCRIPTIONS, SYSCALL_FIELD_TYPES

_RULE = """
- rule: cut arguments
  desc: an exec whose arguments the sensor could not read whole
  condition: evt.type = execve and proc.args_truncated = true
  output: "cut %proc.cmdline (truncated=%proc.args_truncated)"
  priority: NOTICE
"""


def test_every_described_field_is_in_the_catalogue() -> None:
    assert set(SYSCALL_FIELD_DESCRIPTIONS) <= set(SYSCALL_FIELD_TYPES)


def test_args_truncated_is_a_described_boolean() -> None:
    spec = lookup("proc.args_truncated")
    assert spec is not None
    assert (spec.type, spec.source) == (FieldType.BOOL, "syscall")
    assert "arguments" in spec.description


def test_a_rule_on_args_truncated_matches_only_the_events_that_say_so() -> None:
    engine = Engine.from_files([("cut.yaml", _RULE)])
    base = {"evt.type": "execve", "evt.dir": "<", "evt.time": 1, "proc.cmdline": "sh -c ..."}
    said = engine.process(Event("syscall", {**base, "proc.args_truncated": True}))
    assert [a.output_fields["proc.args_truncated"] for a in said] == [True]
    assert engine.process(Event("syscall", base)) == []
    assert engine.process(Event("syscall", {**base, "proc.args_truncated": False})) == []
