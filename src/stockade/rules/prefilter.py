"""Which records a sensor may drop in the kernel because no loaded rule can match them.

The eBPF sensor reports a syscall when it returns. Many rules only look at calls that succeeded
(Falco's ``open_read``/``open_write`` macros end in ``fd.num>=0``), so the failed calls of such a
syscall, often the bulk of it (a search through ``$PATH``, a probe for optional config files), can
be dropped before they are written to the ring buffer: they would cost a record, a wake-up and a
decode for nothing.

The decision is a conservative abstract interpretation of the resolved conditions (macros and lists
expanded, exceptions folded in, every step of every sequence rule) in three-valued logic: a check is
true or false for *every* failed call of the syscall, or unknown. What is known of a failed call is
listed by :func:`failed_call_facts`: its event type, ``evt.dir``, ``evt.failed``, ``evt.rawres``
(an integer below 0), ``evt.res`` (an error name, never ``SUCCESS``) and, for the calls whose
descriptor the field catalogue derives from the result (the opens, socket, accept), ``fd.num``
(below 0). Everything else is unknown, and unknown keeps the record: a syscall's failed calls are
droppable only if every condition is *false* for all of them. Checks that read only known
constants are evaluated by the reference interpreter itself, so the semantics cannot drift.

Dropping events no rule can match changes no alert, no sequence (a sequence only moves on a step
that matched) and nothing the process table keeps (it ignores failed exec and fork calls).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stockade.model.fields import FieldType, derivation, lookup
from stockade.rules import interp
from stockade.rules.ast import (
    And,
    BoolConst,
    Check,
    FieldRef,
    ListLit,
    Node,
    Not,
    Or,
    StrLit,
    operand_fields,
)

__all__ = [
    "Const",
    "Fact",
    "Negative",
    "NonNegative",
    "OpenFlags",
    "StrOtherThan",
    "can_match",
    "check_truth",
    "failed_call_facts",
    "failed_droppable",
    "truth",
]


@dataclass(frozen=True, slots=True)
class Const:
    """The field has this value."""

    value: Any

    def holds(self, v: Any) -> bool:
        """Whether `v` is this constant (same type)."""
        return bool(v == self.value and type(v) is type(self.value))


@dataclass(frozen=True, slots=True)
class Negative:
    """The field is an integer below 0."""

    def holds(self, v: Any) -> bool:
        """Whether `v` is a negative integer."""
        return type(v) is int and v < 0


@dataclass(frozen=True, slots=True)
class NonNegative:
    """The field is an integer of at least 0."""

    def holds(self, v: Any) -> bool:
        """Whether `v` is an integer >= 0."""
        return type(v) is int and v >= 0


@dataclass(frozen=True, slots=True)
class OpenFlags:
    """The field is open(2) flags as Falco renders them (``O_RDONLY|O_CLOEXEC``): every name of
    `required` and only names of `possible`."""

    required: frozenset[str]
    possible: frozenset[str]

    def holds(self, v: Any) -> bool:
        """Whether `v` renders such flags."""
        if type(v) is not str:
            return False
        names = set(v.split("|"))
        return self.required <= names <= self.possible


@dataclass(frozen=True, slots=True)
class StrOtherThan:
    """The field is a string, none of `excluded`."""

    excluded: frozenset[str]

    def holds(self, v: Any) -> bool:
        """Whether `v` is a string other than the excluded ones."""
        return type(v) is str and v not in self.excluded


Fact = Const | Negative | NonNegative | OpenFlags | StrOtherThan

_NUM_OPS = ("=", "==", "!=", "<", "<=", ">", ">=")


def failed_call_facts(evttype: str) -> dict[str, Fact]:
    """What every failed call of syscall `evttype` says, as the eBPF sensor reports it (its decoder
    is tested against this: tests/sensor/test_ebpf_prefilter.py)."""
    facts: dict[str, Fact] = {
        "evt.type": Const(evttype),
        "evt.dir": Const("<"),
        "evt.failed": Const(True),
        "evt.rawres": Negative(),
        "evt.res": StrOtherThan(frozenset({"SUCCESS"})),
    }
    # a failed call carries no descriptor: where the catalogue derives fd.num from the result, it
    # is the (negative) result
    fd_num = derivation("fd.num")
    if fd_num is not None and fd_num({"evt.type": evttype, "evt.rawres": -1}) == -1:
        facts["fd.num"] = Negative()
    return facts


# ---------------------------------------------------------------------------------------------
# three-valued evaluation: True / False for every event the facts describe, None = unknown
# ---------------------------------------------------------------------------------------------


def _any(vals: Iterable[bool | None]) -> bool | None:
    out: bool | None = False
    for v in vals:
        if v is True:
            return True
        if v is None:
            out = None
    return out


def _all(vals: Iterable[bool | None]) -> bool | None:
    out: bool | None = True
    for v in vals:
        if v is False:
            return False
        if v is None:
            out = None
    return out


def _interval_cmp(op: str, lit: str, lo: float, hi: float) -> bool | None:
    """`v op lit` for every integer v in [lo, hi], as the interpreter compares numbers (None: it
    depends on v)."""
    b = interp.parse_number(lit)
    if b is None:
        return False  # the interpreter's numeric comparisons are false on a non-number
    outside = b < lo or b > hi
    if op in ("=", "=="):
        return False if outside else None
    if op == "!=":
        return True if outside else None
    # (true for every v, false for every v); NaN compares false both ways: unknown
    decided = {
        "<": (hi < b, lo >= b),
        "<=": (hi <= b, lo > b),
        ">": (lo > b, hi <= b),
        ">=": (lo >= b, hi < b),
    }.get(op)
    if decided is None:
        return None
    always, never = decided
    return True if always else False if never else None


def _flags_contains(fact: OpenFlags, lit: str) -> bool | None:
    """`flags contains lit` for every rendering of the flags `fact` describes."""
    if any(lit in name for name in fact.required):
        return True
    if "|" in lit or any(lit in name for name in fact.possible):
        return None
    return False


def _str_other_than_cmp(op: str, lit: str, excluded: frozenset[str]) -> bool | None:
    """`v op lit` for every string v not in `excluded`, as the interpreter compares strings."""
    if op in ("=", "=="):
        return False if lit in excluded else None
    if op == "!=":
        return True if lit in excluded else None
    return None


def _items(rhs: Any) -> list[str] | None:
    if isinstance(rhs, StrLit):
        return [rhs.value]
    if isinstance(rhs, ListLit):
        return [i.value for i in rhs.items]
    return None


def check_truth(node: Check, facts: Mapping[str, Fact]) -> bool | None:
    """One check on every event the facts describe: True, False or None (unknown)."""
    refs = [*operand_fields(node.lhs), *operand_fields(node.rhs)]
    if not refs or any(r.arg is not None or r.name not in facts for r in refs):
        return None
    if all(isinstance(facts[r.name], Const) for r in refs):
        # every field it reads is known: the reference interpreter decides
        known = {r.name: facts[r.name].value for r in refs}  # type: ignore[union-attr]
        try:
            return interp.eval_check(node, known)
        except Exception:
            return None
    lhs = node.lhs
    if not isinstance(lhs, FieldRef) or len(refs) != 1:
        return None  # a transformer, or a comparison with another field
    fact = facts[lhs.name]
    if node.op == "exists":
        return True  # every fact is a value (not missing)
    items = _items(node.rhs)
    if items is None or node.modifier is not None:
        return None
    if isinstance(fact, OpenFlags):
        return _flags_contains(fact, items[0]) if node.op == "contains" and len(items) == 1 else None
    op = node.op
    if op in ("in", "intersects"):
        op, single = "=", False
    elif op in _NUM_OPS and isinstance(node.rhs, StrLit):
        single = True
    else:
        return None
    spec = lookup(lhs.name)
    if spec is None:
        return None
    res = _fact_cmp(fact, spec.type, op, items)
    if res is None:
        return None
    return res[0] if single else _any(res)


def _fact_cmp(fact: Fact, ftype: FieldType, op: str, items: list[str]) -> list[bool | None] | None:
    """`v op item` for each item, for every value v of a field of type `ftype` the fact allows."""
    if isinstance(fact, Negative) and ftype.numeric:
        return [_interval_cmp(op, it, -math.inf, -1) for it in items]
    if isinstance(fact, NonNegative) and ftype.numeric:
        return [_interval_cmp(op, it, 0, math.inf) for it in items]
    if isinstance(fact, StrOtherThan) and ftype == FieldType.STRING:
        return [_str_other_than_cmp(op, it, fact.excluded) for it in items]
    return None


def truth(node: Node, facts: Mapping[str, Fact]) -> bool | None:
    """`node` on every event the facts describe: True, False, or None (it depends, or unknown)."""
    if isinstance(node, Check):
        return check_truth(node, facts)
    if isinstance(node, And):
        return _all(truth(c, facts) for c in node.children)
    if isinstance(node, Or):
        return _any(truth(c, facts) for c in node.children)
    if isinstance(node, Not):
        t = truth(node.child, facts)
        return None if t is None else not t
    if isinstance(node, BoolConst):
        return node.value
    return None  # an unresolved macro: unknown


def can_match(conditions: Iterable[Node], facts: Mapping[str, Fact]) -> bool:
    """Whether some condition may be true on an event the facts describe (unknown: it may)."""
    return any(truth(c, facts) is not False for c in conditions)


def failed_droppable(conditions: Iterable[Node], evttypes: Iterable[str]) -> frozenset[str]:
    """The syscalls among `evttypes` whose failed calls no condition can match."""
    conds = list(conditions)
    return frozenset(t for t in evttypes if not can_match(conds, failed_call_facts(t)))
