"""The condition parser: libsinsp grammar, positions, errors, and printer round trips."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stockade.rules.ast import And, Check, FieldRef, ListLit, MacroRef, Not, Or, StrLit, Transform
from stockade.rules.parser import ConditionSyntaxError, parse_condition, parse_operand
from stockade.rules.printer import print_condition


def _conditions(path: Path) -> list[str]:
    docs = yaml.safe_load(path.read_text())
    return [d["condition"] for d in docs if isinstance(d, dict) and "condition" in d]


def test_every_falco_condition_round_trips(falco_rules_path: Path, k8s_audit_rules_path: Path) -> None:
    conds = _conditions(falco_rules_path) + _conditions(k8s_audit_rules_path)
    assert len(conds) > 150
    for text in conds:
        ast = parse_condition(text)
        again = parse_condition(print_condition(ast))
        assert again == ast, text


def test_precedence_and_over_or_and_not_binds_tightest() -> None:
    ast = parse_condition("a or not b and c")
    assert ast == Or((MacroRef("a"), And((Not(MacroRef("b")), MacroRef("c")))))


def test_field_arguments_and_operators() -> None:
    ast = parse_condition('proc.aname[2]=containerd-shim and ka.uri.param[command] contains "sh -c"')
    assert isinstance(ast, And)
    c1, c2 = ast.children
    assert c1 == Check(FieldRef("proc.aname", "2"), "=", StrLit("containerd-shim"))
    assert c2 == Check(FieldRef("ka.uri.param", "command"), "contains", StrLit("sh -c", quoted=True))


def test_path_arguments_keep_slashes() -> None:
    ast = parse_condition("container.mount.dest[/var/run/docker.sock] exists")
    assert ast == Check(FieldRef("container.mount.dest", "/var/run/docker.sock"), "exists", None)


def test_lists_modifiers_transformers() -> None:
    ast = parse_condition("tolower(proc.name) in (bash, 'zsh') and fd.name startswith anyof (/etc, /root)")
    assert isinstance(ast, And)
    lhs = ast.children[0]
    assert isinstance(lhs, Check) and isinstance(lhs.lhs, Transform) and lhs.lhs.name == "tolower"
    assert lhs.rhs == ListLit((StrLit("bash"), StrLit("zsh", quoted=True)))
    assert ast.children[1].modifier == "anyof"  # type: ignore[union-attr]


def test_val_on_right_hand_side() -> None:
    ast = parse_condition("proc.name = val(proc.pname)")
    assert isinstance(ast, Check) and isinstance(ast.rhs, Transform) and ast.rhs.name == "val"


def test_operand_for_output_formats() -> None:
    assert parse_operand("toupper(proc.name)") == Transform("toupper", (FieldRef("proc.name"),))


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("proc.name = ", 12),
        ("(proc.name = a", 14),
        ("proc.name == a and", 18),
        ("proc.name in (a, b", 18),
        ("proc.name bogus x", 10),
    ],
)
def test_syntax_errors_carry_offsets(text: str, where: int) -> None:
    with pytest.raises(ConditionSyntaxError) as ei:
        parse_condition(text)
    assert ei.value.offset == where, str(ei.value)
