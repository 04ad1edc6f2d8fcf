"""Which event types a condition can match (as Falco's evttype resolver does), and specialising a
condition for one event type, so the engine indexes rules by event type and never re-tests it.

A set of event types is either a finite set ("only these") or a co-finite one ("all but these").
"""

from __future__ import annotations

from dataclasses import dataclass

from stockade.rules.ast import And, BoolConst, Check, FieldRef, ListLit, Node, Not, Or, StrLit


@dataclass(frozen=True, slots=True)
class EvtTypes:
    """A set of event types that may be "every type except some" (cofinite)."""

    types: frozenset[str]
    #: True: the set is "every type except `types`"
    cofinite: bool

    @staticmethod
    def all() -> EvtTypes:
        """Every event type."""
        return EvtTypes(frozenset(), True)

    @staticmethod
    def of(types: frozenset[str]) -> EvtTypes:
        """Exactly `types`."""
        return EvtTypes(types, False)

    def __and__(self, o: EvtTypes) -> EvtTypes:
        if not self.cofinite and not o.cofinite:
            return EvtTypes(self.types & o.types, False)
        if self.cofinite and o.cofinite:
            return EvtTypes(self.types | o.types, True)
        pos, neg = (self, o) if not self.cofinite else (o, self)
        return EvtTypes(pos.types - neg.types, False)

    def __or__(self, o: EvtTypes) -> EvtTypes:
        if not self.cofinite and not o.cofinite:
            return EvtTypes(self.types | o.types, False)
        if self.cofinite and o.cofinite:
            return EvtTypes(self.types & o.types, True)
        pos, neg = (self, o) if not self.cofinite else (o, self)
        return EvtTypes(neg.types - pos.types, True)

    def __invert__(self) -> EvtTypes:
        return EvtTypes(self.types, not self.cofinite)

    def is_empty(self) -> bool:
        """Whether no event type is in the set."""
        return not self.cofinite and not self.types

    def contains(self, t: str) -> bool:
        """Whether event type `t` is in the set."""
        return (t not in self.types) if self.cofinite else (t in self.types)

    def as_sets(self) -> tuple[frozenset[str] | None, frozenset[str]]:
        """(types, None-if-cofinite) and the excluded types when cofinite."""
        return (None, self.types) if self.cofinite else (self.types, frozenset())


def _evttype_check(node: Check) -> frozenset[str] | None:
    """The types an `evt.type` check accepts, or None if it is not a plain evt.type check."""
    if not (isinstance(node.lhs, FieldRef) and node.lhs.name == "evt.type" and node.lhs.arg is None):
        return None
    if node.modifier is not None:
        return None
    if node.op in ("=", "==") and isinstance(node.rhs, StrLit):
        return frozenset({node.rhs.value})
    if node.op == "in" and isinstance(node.rhs, ListLit):
        return frozenset(i.value for i in node.rhs.items)
    return None


def rule_evttypes(node: Node) -> EvtTypes:
    """The event types on which `node` may be true (an upper bound, as Falco computes it)."""
    return _bounds(node)[0]


def _bounds(node: Node) -> tuple[EvtTypes, EvtTypes]:
    """(types where it may be true, types where it is true whatever the other fields are)."""
    if isinstance(node, And | Or):
        is_and = isinstance(node, And)
        may = EvtTypes.all() if is_and else EvtTypes.of(frozenset())
        must = may
        for c in node.children:
            cmay, cmust = _bounds(c)
            may, must = (may & cmay, must & cmust) if is_and else (may | cmay, must | cmust)
        return may, must
    if isinstance(node, Not):
        cmay, cmust = _bounds(node.child)
        return ~cmust, ~cmay
    if isinstance(node, BoolConst):
        b = EvtTypes.all() if node.value else EvtTypes.of(frozenset())
        return b, b
    if isinstance(node, Check):
        if (
            isinstance(node.lhs, FieldRef)
            and node.lhs.name == "evt.type"
            and node.op == "!="
            and isinstance(node.rhs, StrLit)
            and node.modifier is None
        ):
            b = EvtTypes(frozenset({node.rhs.value}), True)
            return b, b
        types = _evttype_check(node)
        if types is not None:
            b = EvtTypes.of(types)
            return b, b
    return EvtTypes.all(), EvtTypes.of(frozenset())


#: stands for "an event type that no rule names" when specialising
OTHER_TYPE = "\x00other"


def specialize(node: Node, evttype: str) -> Node:
    """`node` for events of type `evttype` (or OTHER_TYPE): evt.type checks folded to constants."""
    if isinstance(node, Check):
        types = _evttype_check(node)
        if types is not None:
            return BoolConst(evttype in types)
        if (
            isinstance(node.lhs, FieldRef)
            and node.lhs.name == "evt.type"
            and node.op == "!="
            and isinstance(node.rhs, StrLit)
            and node.modifier is None
        ):
            return BoolConst(evttype != node.rhs.value)
        return node
    if isinstance(node, Not):
        c = specialize(node.child, evttype)
        return BoolConst(not c.value) if isinstance(c, BoolConst) else Not(c, node.pos)
    if isinstance(node, And | Or):
        is_and = isinstance(node, And)
        kids: list[Node] = []
        for c in node.children:
            s = specialize(c, evttype)
            if isinstance(s, BoolConst):
                if s.value != is_and:  # False in an And, True in an Or: decides it
                    return BoolConst(s.value)
                continue  # neutral element
            kids.append(s)
        if not kids:
            return BoolConst(is_and)
        if len(kids) == 1:
            return kids[0]
        return And(tuple(kids), node.pos) if is_and else Or(tuple(kids), node.pos)
    return node
