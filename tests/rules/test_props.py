"""Property tests: the parser round-trips through the printer, and the compiled evaluator agrees with
the reference interpreter on generated conditions and events."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stockade.rules import interp
from stockade.rules.ast import And, Check, FieldRef, ListLit, Node, StrLit, Transform
from stockade.rules.compiler import Entry, compile_condition, compile_entries
from stockade.rules.evttypes import rule_evttypes
from stockade.rules.parser import parse_condition
from stockade.rules.printer import print_condition
from strategies import bool_trees, field_ref, lit

STR_FIELDS = [
    "proc.name",
    "proc.pname",
    "fd.name",
    "fd.directory",
    "container.id",
    "proc.aname[2]",
    "proc.cmdline",
    "fd.filename",
    "evt.arg.name",
    "evt.arg.flags",
]
NUM_FIELDS = ["user.uid", "proc.tty", "fd.sport", "proc.pid"]
BOOL_FIELDS = ["evt.is_open_read", "proc.is_exe_upper_layer", "evt.is_open_write"]
ANY_FIELDS = ["proc.aname", "fd.ip"]
NET_FIELDS = ["fd.snet", "fd.cnet"]
STR_VALUES = [
    "bash",
    "sh",
    "/etc",
    "/etc/shadow",
    "/tmp/x",
    "runc",
    "host",
    "a*",
    "*sh*",
    "b?sh",
    "ba",
    "",
    "/etc/",
    "10.0.0.1",
    "sh -c",
    "BASH",
    "[bc]ash",
    "O_TRUNC",
    "WR",
    ".bash_history",
    "/var/log/",
]
NUM_VALUES = ["0", "1", "34816", "-1", "53", "0x10"]
STR_OPS = [
    "=",
    "==",
    "!=",
    "contains",
    "icontains",
    "startswith",
    "endswith",
    "glob",
    "iglob",
    "regex",
    "<",
    ">",
]
LIST_OPS = ["in", "intersects", "pmatch"]
NUM_OPS = ["=", "!=", "<", "<=", ">", ">=", "in"]
EVTTYPES = ["execve", "openat", "connect", "open"]


def _evttype_check(draw: st.DrawFn, q: bool) -> Node:
    if draw(st.booleans()):
        types = draw(st.lists(st.sampled_from(EVTTYPES), min_size=1, max_size=3))
        return Check(FieldRef("evt.type"), "in", ListLit(tuple(lit(v, q) for v in types)))
    return Check(
        FieldRef("evt.type"), draw(st.sampled_from(["=", "!="])), lit(draw(st.sampled_from(EVTTYPES)), q)
    )


def _num_check(draw: st.DrawFn, q: bool) -> Node:
    f = field_ref(draw(st.sampled_from(NUM_FIELDS)))
    op = draw(st.sampled_from(NUM_OPS))
    if op == "in":
        values = draw(st.lists(st.sampled_from(NUM_VALUES), max_size=3))
        return Check(f, op, ListLit(tuple(lit(v, q) for v in values)))
    return Check(f, op, lit(draw(st.sampled_from(NUM_VALUES)), q and op in ("=", "!=")))


def _net_check(draw: st.DrawFn, q: bool) -> Node:
    net = field_ref(draw(st.sampled_from(NET_FIELDS)))
    nets = ["10.0.0.0/8", "192.168.0.0/16", "127.0.0.0/8", "::1", "0.0.0.0", "nonsense", "fe80::/10"]
    if draw(st.booleans()):
        items = draw(st.lists(st.sampled_from(nets), min_size=1, max_size=3))
        return Check(
            net, draw(st.sampled_from(["in", "intersects"])), ListLit(tuple(lit(v, q) for v in items))
        )
    return Check(net, draw(st.sampled_from(["=", "==", "!="])), lit(draw(st.sampled_from(nets)), q))


def _str_check(draw: st.DrawFn, kind: str, q: bool) -> Node:
    lhs: FieldRef | Transform = field_ref(
        draw(st.sampled_from(STR_FIELDS + (ANY_FIELDS if kind == "any" else [])))
    )
    if kind == "transform":
        lhs = Transform(draw(st.sampled_from(["tolower", "toupper", "basename"])), (lhs,))
    if draw(st.integers(0, 3)) == 0:
        op = draw(st.sampled_from(LIST_OPS))
        values = draw(st.lists(st.sampled_from(STR_VALUES), max_size=4))
        return Check(lhs, op, ListLit(tuple(lit(v, q) for v in values)))
    op = draw(st.sampled_from(STR_OPS))
    if op in ("=", "contains", "startswith", "endswith") and draw(st.integers(0, 4)) == 0:
        items = draw(st.lists(st.sampled_from(STR_VALUES), min_size=1, max_size=3))
        mod = draw(st.sampled_from(["anyof", "allof", "oneof"]))
        return Check(lhs, op, ListLit(tuple(lit(v, q) for v in items)), mod)
    v = draw(st.sampled_from(STR_VALUES))
    if op == "regex":
        v = draw(st.sampled_from(["ba.*", "/etc/.*", "[a-z]+", "sh|bash", ".*"]))
    if op in ("<", ">"):  # the grammar takes a bare number after a relational operator
        return Check(lhs, op, StrLit(draw(st.sampled_from(NUM_VALUES)), False))
    return Check(lhs, op, lit(v, q))


@st.composite
def checks(draw: st.DrawFn) -> Node:
    kind = draw(
        st.sampled_from(
            ["str", "str", "num", "bool", "any", "net", "evttype", "exists", "transform", "gated"]
        )
    )
    if kind == "gated":  # an open for writing and something else: the compiler's gate
        gate = Check(
            FieldRef(draw(st.sampled_from(["evt.is_open_write", "evt.is_open_create"]))), "=", StrLit("true")
        )
        return And((gate, draw(checks())))
    q = draw(st.booleans())
    if kind == "evttype":
        return _evttype_check(draw, q)
    if kind == "exists":
        return Check(field_ref(draw(st.sampled_from(STR_FIELDS + NUM_FIELDS + ANY_FIELDS))), "exists")
    if kind == "num":
        return _num_check(draw, q)
    if kind == "bool":
        return Check(
            field_ref(draw(st.sampled_from(BOOL_FIELDS))),
            draw(st.sampled_from(["=", "!="])),
            lit(draw(st.sampled_from(["true", "false"])), q),
        )
    if kind == "net":
        return _net_check(draw, q)
    return _str_check(draw, kind, q)


def nodes() -> st.SearchStrategy[Node]:
    return bool_trees(checks(), max_leaves=8)


VALUE_POOL: dict[str, Any] = {
    "proc.name": st.sampled_from(["bash", "sh", "BASH", "cat", "", 7, None]),
    "proc.pname": st.sampled_from(["runc", "bash", "sshd", None]),
    "fd.name": st.sampled_from(
        ["/etc/shadow", "/etc", "/tmp/x", "10.0.0.1:40000->10.0.0.2:53", "", ["/etc/x", "/tmp"], None]
    ),
    "container.id": st.sampled_from(["host", "3ad7b26ded6d", None]),
    "proc.aname[2]": st.sampled_from(["bash", "runc", None]),
    "proc.aname": st.sampled_from([["bash", "runc"], ["sshd"], [], None]),
    "proc.cmdline": st.sampled_from(["sh -c id", "bash", "cat /etc/shadow", None]),
    "user.uid": st.sampled_from([0, 1, "0", 1000, True, None]),
    "proc.tty": st.sampled_from([0, 34816, "34816", -1, None]),
    "proc.pid": st.sampled_from([1, 53, 16, None]),
    "evt.is_open_read": st.sampled_from([True, False, "true", 1, None]),
    "proc.is_exe_upper_layer": st.sampled_from([True, False, None]),
    "evt.type": st.sampled_from(["execve", "openat", "connect", "open", "close", None]),
    "proc.exepath": st.sampled_from(["/usr/bin/bash", None]),
    "fd.filename": st.sampled_from(["shadow", ".bash_history", 3, None]),
    "evt.arg.name": st.sampled_from(
        ["/root/.bash_history", ".bash_history", "/var/log/x", "/tmp/bash", "", ["/a/sh"], 5, None]
    ),
    "evt.arg.flags": st.sampled_from(["O_RDONLY", "O_WRONLY|O_CREAT|O_TRUNC", "O_RDWR", 577, None]),
    "evt.is_open_write": st.sampled_from([True, False, "true", 1, None, None]),
    "evt.dir": st.sampled_from(["<", ">", None]),
    "fd.sip": st.sampled_from(["10.1.2.3", "127.0.0.1", "::1", "[::1]", "0.0.0.0", "bogus", 7, None]),
    "fd.cip": st.sampled_from(["192.168.1.1", "fe80::1", "", None]),
}


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    out = {}
    for k, strat in VALUE_POOL.items():
        v = draw(strat)
        if v is not None:
            out[k] = v
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes())
def test_parser_round_trips_through_printer(node: Node) -> None:
    text = print_condition(node)
    assert parse_condition(text) == node, text
    assert print_condition(parse_condition(text)) == text


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes(), st.lists(events(), min_size=1, max_size=6))
def test_compiled_evaluator_agrees_with_reference_interpreter(node: Node, evs: list[dict[str, Any]]) -> None:
    compiled = compile_condition(node)
    for data in evs:
        assert compiled(data) == interp.evaluate(node, data), (print_condition(node), data)


def _assert_index_agrees(asts: list[Node], evs: list[dict[str, Any]]) -> None:
    """The compiled index (first match and every match) gives what the interpreter gives."""
    entries = []
    for a in asts:
        types, excluded = rule_evttypes(a).as_sets()
        entries.append(Entry(a, types, excluded))
    first = compile_entries(entries, "first")
    every = compile_entries(entries, "all")
    for data in evs:
        want = [i for i, a in enumerate(asts) if interp.evaluate(a, data)]
        assert every.fn_for(data.get("evt.type"))(data) == want
        assert first.fn_for(data.get("evt.type"))(data) == (want[0] if want else -1)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(nodes(), min_size=1, max_size=5), st.lists(events(), min_size=1, max_size=5))
def test_event_type_index_and_first_match_agree_with_interpreter(
    asts: list[Node], evs: list[dict[str, Any]]
) -> None:
    _assert_index_agrees(asts, evs)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(nodes(), min_size=6, max_size=20), st.lists(events(), min_size=1, max_size=5))
def test_candidate_index_over_many_entries_agrees_with_interpreter(
    asts: list[Node], evs: list[dict[str, Any]]
) -> None:
    """Buckets of many entries: each entry's own guard and gate select it (bit masks, chunks of
    eight), and the first or every match is the interpreter's."""
    _assert_index_agrees(asts, evs)
