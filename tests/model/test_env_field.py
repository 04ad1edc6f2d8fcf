"""``proc.env`` and ``proc.env[NAME]``: the environment as Falco renders it (``NAME=value`` entries
joined by a space) and one variable of it, as rules read them (the history rules read HISTFILE)."""

from __future__ import annotations

from pathlib import Path

from stockade.engine import Engine
from stockade.model.event import Event

RULE = """\
- rule: history off
  desc: x
  condition: evt.type = execve and proc.env[HISTFILE] = /dev/null
  output: "histfile=%proc.env[HISTFILE] size=%proc.env[HISTSIZE]"
  priority: WARNING
"""


def _fire(tmp_path: Path, env: str) -> list[str]:
    rules = tmp_path / "r.yaml"
    rules.write_text(RULE)
    engine = Engine.from_files([str(rules)], rule_matching="all", hostname="t")
    ev = {"evt.type": "execve", "evt.dir": "<", "proc.env": env}
    return [a.output for a in engine.process(Event("syscall", ev, origin="t"))]


def test_one_variable_is_read_from_the_rendered_environment(tmp_path: Path) -> None:
    out = _fire(tmp_path, "PATH=/usr/bin:/bin GREETING=hello world HISTFILE=/dev/null HISTSIZE=0")
    assert len(out) == 1 and out[0].endswith("histfile=/dev/null size=0"), out
    # a value with a space is kept whole; a variable whose name only ends in HISTFILE is another
    assert _fire(tmp_path, "MY_HISTFILE=/dev/null GREETING=a HISTFILE=/root/.bash_history") == []
    assert _fire(tmp_path, "PATH=/bin") == []
