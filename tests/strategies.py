"""Hypothesis strategies and condition pieces the property tests share (rules, prefilter, interest)."""

from __future__ import annotations

from hypothesis import strategies as st

from stockade.rules.ast import And, FieldRef, Node, Not, Or, StrLit


def field_ref(name: str) -> FieldRef:
    """A field as a condition names it: ``proc.aname[2]`` has its argument apart."""
    if "[" in name:
        base, arg = name[:-1].split("[", 1)
        return FieldRef(base, arg)
    return FieldRef(name)


def lit(v: str, quoted: bool) -> StrLit:
    """A string operand, quoted where the condition language needs it (or when asked)."""
    return StrLit(v, quoted or not v or any(c in v for c in " ()=,\"'") or v in ("and", "or", "not"))


def bool_trees(leaves: st.SearchStrategy[Node], max_leaves: int) -> st.SearchStrategy[Node]:
    """Conditions made of `leaves` with and (2-3 children), or (2-3) and not."""
    return st.recursive(
        leaves,
        lambda kids: st.one_of(
            st.lists(kids, min_size=2, max_size=3).map(lambda xs: And(tuple(xs))),
            st.lists(kids, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs))),
            kids.map(Not),
        ),
        max_leaves=max_leaves,
    )
