"""Print a condition AST back to canonical Falco text (parse(print(ast)) == ast)."""

from __future__ import annotations

import re

from stockade.rules.ast import (
    And,
    BoolConst,
    Check,
    FieldRef,
    ListLit,
    ListRef,
    MacroRef,
    Node,
    Not,
    Or,
    StrLit,
    Transform,
    TransformerList,
)

_SAFE_BARE = re.compile(r"[^ \b\t\n\r\f(),=\"']+")
_SAFE_ARG = re.compile(r"[^ \b\t\n\r\f\[\]\"'\\]+")
_KEYWORDS = frozenset({"and", "or", "not", "oneof", "anyof", "allof"})


def quote(s: str) -> str:
    """`s` as a double-quoted condition string."""
    out = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    out = out.replace("\r", "\\r").replace("\b", "\\b").replace("\f", "\\f")
    return f'"{out}"'


def print_str(lit: StrLit) -> str:
    """A string operand as a condition writes it (bare when that parses back the same)."""
    v = lit.value
    if not lit.quoted and _SAFE_BARE.fullmatch(v) and v not in _KEYWORDS:
        return v
    return quote(v)


def print_field(f: FieldRef) -> str:
    """A field reference as a condition writes it."""
    if f.arg is None:
        return f.name
    arg = f.arg if _SAFE_ARG.fullmatch(f.arg) else quote(f.arg)
    return f"{f.name}[{arg}]"


def print_operand(o: object) -> str:
    """An operand (field, transformer, string, list) as a condition writes it."""
    if isinstance(o, FieldRef):
        return print_field(o)
    if isinstance(o, Transform):
        inner = ", ".join(print_operand(a) for a in o.args)
        sel = ""
        if o.arg is not None:
            sel = f"[{o.arg if _SAFE_ARG.fullmatch(o.arg) else quote(o.arg)}]"
        return f"{o.name}({inner}){sel}"
    if isinstance(o, TransformerList):
        return "(" + ", ".join(print_operand(a) for a in o.items) + ")"
    if isinstance(o, StrLit):
        # inside transformer args only quoted strings and numbers exist
        return o.value if not o.quoted else quote(o.value)
    if isinstance(o, ListLit):
        return "(" + ", ".join(print_str(i) for i in o.items) + ")"
    if isinstance(o, ListRef):
        return o.name
    raise TypeError(f"not an operand: {o!r}")


def print_condition(node: Node) -> str:
    """A condition tree as text that parses back to the same tree."""
    if isinstance(node, Or):
        return " or ".join(_wrap(c, (Or,)) for c in node.children)
    if isinstance(node, And):
        return " and ".join(_wrap(c, (Or, And)) for c in node.children)
    if isinstance(node, Not):
        return "not " + _wrap(node.child, (Or, And, Not))
    if isinstance(node, MacroRef):
        return node.name
    if isinstance(node, BoolConst):
        return "(evt.num exists)" if node.value else "(not evt.num exists)"
    if isinstance(node, Check):
        lhs = print_operand(node.lhs)
        if node.op == "exists":
            return f"{lhs} exists"
        mod = f"{node.modifier} " if node.modifier else ""
        rhs = node.rhs
        rs = print_str(rhs) if isinstance(rhs, StrLit) else print_operand(rhs)
        return f"{lhs} {node.op} {mod}{rs}"
    raise TypeError(f"not a condition node: {node!r}")


def _wrap(node: Node, parenthesize: tuple[type, ...]) -> str:
    s = print_condition(node)
    if isinstance(node, parenthesize):
        return f"({s})"
    return s
