"""What the engine does when compiled code raises: the reference interpreter decides, and what it
cannot evaluate either is counted, the first problems kept, and the other rules still run."""

from __future__ import annotations

from typing import Any

import pytest

from stockade.engine import Engine
from stockade.model.errorlog import DEFAULT_KEEP
from stockade.model.event import Event
from stockade.rules import interp
from stockade.rules.ast import Node

_RULES = """
- rule: good
  desc: d
  condition: evt.type = open and fd.name startswith /etc
  output: "good %fd.name"
  priority: INFO
- rule: bad
  desc: d
  condition: evt.type = open and fd.name startswith /var
  output: "bad %fd.name"
  priority: INFO
- rule: seq
  desc: d
  sequence:
    by: proc.pid
    within: 60s
    steps:
      - condition: evt.type = open and fd.name = /etc/a
      - condition: evt.type = open and fd.name = /etc/b
  output: "seq %fd.name"
  priority: INFO
"""


def _raise(_data: dict[str, Any]) -> Any:
    raise RuntimeError("compiled code failed")


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Engine:
    """An engine whose compiled code raises on every open, with an interpreter that fails on the
    'bad' rule's condition and on the sequence's second step (naming the event)."""
    engine = Engine.from_files([("f.yaml", _RULES)], rule_matching="all")
    real = interp.evaluate
    bad = engine.ruleset.rules["bad"].ast
    seq = engine.ruleset.rules["seq"].sequence
    assert bad is not None and seq is not None
    step2 = seq.steps[1].ast

    def evaluate(node: Node, data: dict[str, Any]) -> Any:
        if node is bad or node is step2:
            raise TypeError(f"event {data['evt.num']}")
        return real(node, data)

    monkeypatch.setattr(interp, "evaluate", evaluate)
    for sr in engine._sources.values():
        for table in (sr.table, sr.step_table):
            assert table is not None
            for k in list(table):
                table[k] = _raise
    return engine


def _open(n: int, name: str) -> dict[str, Any]:
    return {"evt.num": n, "evt.type": "open", "evt.time": n, "proc.pid": 7, "fd.name": name}


def test_the_interpreter_decides_and_its_failures_are_counted(engine: Engine) -> None:
    alerts = engine.process(Event("syscall", _open(1, "/etc/passwd")))
    assert [a.rule for a in alerts] == ["good"]
    st = engine.stats
    assert st.fallbacks == 2  # the rules' bucket and the sequence steps' bucket
    assert st.eval_errors == 2
    assert st.last_errors == ["rule 'bad': TypeError: event 1", "rule 'seq' step 2: TypeError: event 1"]
    assert st.to_dict()["eval_errors"] == 2
    assert st.to_dict()["last_errors"] == st.last_errors


def test_the_first_problems_are_kept_and_every_one_counted(engine: Engine) -> None:
    n = DEFAULT_KEEP + 5
    hits = engine.process_batch("syscall", [_open(i, "/var/x") for i in range(n)])
    assert hits == []
    st = engine.stats
    assert st.eval_errors == 2 * n
    assert len(st.last_errors) == DEFAULT_KEEP
    assert st.last_errors[:2] == ["rule 'bad': TypeError: event 0", "rule 'seq' step 2: TypeError: event 0"]
