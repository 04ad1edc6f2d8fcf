"""The kernel prefilter's analysis: which syscalls' failed calls no rule can match.

Soundness is a property: whenever the analysis says "drop", the reference interpreter matches no
generated failed call. Precision is checked on hand-written conditions and on the real rules
(Falco's stable rules, Stockade's pack)."""

from __future__ import annotations

import errno
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_props import VALUE_POOL, checks

from stockade.engine import Engine
from stockade.rules import interp
from stockade.rules.ast import Check, ListLit, Node
from stockade.rules.defaults import BUILTIN_RULES_DIR
from stockade.rules.interest import READ_OK, class_facts
from stockade.rules.parser import parse_condition
from stockade.rules.prefilter import failed_call_facts, failed_droppable, truth
from stockade.rules.printer import print_condition
from stockade.sensor.ebpf.syscalls import SYSCALLS
from strategies import bool_trees, field_ref, lit

TYPES = ["openat", "open", "connect", "execve", "socket", "accept", "dup"]
OPENS = {"open", "openat", "openat2"}


def _drops(cond: str) -> set[str]:
    return set(failed_droppable([parse_condition(cond)], TYPES))


@pytest.mark.parametrize(
    ("cond", "kept"),
    [
        # Falco's open_read: a failed open has fd.num < 0
        (
            "evt.type in (open, openat) and evt.is_open_read = true and fd.typechar = 'f' and fd.num >= 0",
            set(),
        ),
        ("evt.type = openat and not evt.rawres < 0", set()),
        ("evt.type = openat and evt.rawres >= 0", set()),
        ("evt.type = openat and evt.res = SUCCESS", set()),
        ("evt.type = openat and evt.failed = false", set()),
        ("evt.type = dup and evt.rawres in (0, 1, 2)", set()),
        ("evt.dir = > and evt.type = openat", set()),
        # connect's EINPROGRESS is a failure the rules want
        ("evt.type = connect and (evt.rawres >= 0 or evt.res = EINPROGRESS)", {"connect"}),
        ("evt.type = openat and evt.failed = true", {"openat"}),
        ("evt.type = openat and evt.res != SUCCESS", {"openat"}),
        ("evt.type = openat and evt.res startswith E", {"openat"}),
        ("evt.type = openat and evt.rawres < 0", {"openat"}),
        ("evt.type = openat and evt.rawres = -2", {"openat"}),
        ("evt.type = openat and fd.num = -1", {"openat"}),  # Falco's open_file_failed
        ("evt.type = openat and fd.name startswith /etc", {"openat"}),  # no result check
        ("evt.type = connect and fd.num >= 0", {"connect"}),  # a connect's fd.num is its socket
        ("evt.type = execve and proc.name = bash", {"execve"}),
        # a rule on every event type reads the failed calls of every syscall
        ("proc.name = bash", set(TYPES)),
        ("not evt.rawres >= 0 or proc.name = bash", set(TYPES)),
    ],
)
def test_which_failed_calls_are_droppable(cond: str, kept: set[str]) -> None:
    assert _drops(cond) == set(TYPES) - kept


def test_unknown_is_kept() -> None:
    facts = failed_call_facts("openat")
    assert truth(parse_condition("fd.name = /etc/passwd"), facts) is None
    assert truth(parse_condition("evt.rawres < 0"), facts) is True
    assert truth(parse_condition("evt.rawres < -5"), facts) is None
    assert truth(parse_condition("evt.rawres > -1"), facts) is False
    assert truth(parse_condition("evt.rawres = x"), facts) is False  # not a number: never equal
    assert truth(parse_condition("evt.res in (SUCCESS, ENOENT)"), facts) is None
    assert truth(parse_condition("evt.res in (SUCCESS)"), facts) is False
    assert truth(parse_condition("evt.res exists"), facts) is True
    assert truth(parse_condition("tolower(evt.res) = success"), facts) is None
    assert "fd.num" not in failed_call_facts("connect")


def _write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "rules.yaml"
    p.write_text(textwrap.dedent(text))
    return str(p)


def test_exceptions_and_sequence_steps_count(tmp_path: Path) -> None:
    rules = _write(
        tmp_path,
        """
        - rule: Etc opened
          desc: d
          condition: evt.type = openat and fd.name startswith /etc
          exceptions:
            - name: failed
              fields: [evt.failed]
              values: [[true]]
          output: o
          priority: WARNING
        - rule: Probe then connect
          desc: d
          sequence:
            by: proc.pid
            within: 10s
            steps:
              - condition: evt.type = execve and evt.rawres >= 0
              - condition: evt.type = connect and evt.res = ECONNREFUSED
          output: o
          priority: WARNING
        """,
    )
    e = Engine.from_files([rules])
    assert len(e.conditions("syscall")) == 3
    # the exception rules failed opens out; the second step reads failed connects
    assert failed_droppable(e.conditions("syscall"), TYPES) == {
        "openat",
        "open",
        "execve",
        "socket",
        "accept",
        "dup",
    }
    # a disabled rule does not count
    e2 = Engine.from_files([rules], disabled_rules=["Probe then connect"])
    assert "connect" in failed_droppable(e2.conditions("syscall"), TYPES)


def test_falco_stable_rules_and_the_pack(falco_rules_path: Path) -> None:
    every = set(SYSCALLS)
    falco = Engine.from_files([falco_rules_path])
    drop = failed_droppable(falco.conditions("syscall"), every)
    print("Falco stable rules, failed calls dropped:", sorted(drop & (falco.evttypes() or every)))
    assert {"dup", "dup2", "dup3"} <= drop
    # "Directory traversal monitored file read" reads failed opens (open_file_failed); outbound
    # connections accept EINPROGRESS; a symlink or ptrace rule does not look at the result
    assert not drop & {"open", "openat", "openat2", "connect", "symlink", "symlinkat", "ptrace", "execve"}
    assert {"unlink", "chmod", "mkdir"} <= drop  # no stable rule reads them at all
    without = Engine.from_files(
        [falco_rules_path], disabled_rules=["Directory traversal monitored file read"]
    )
    assert failed_droppable(without.conditions("syscall"), every) >= OPENS  # open_read/open_write: fd.num>=0

    pack = Engine.from_files(sorted(BUILTIN_RULES_DIR.glob("*.yaml")))
    drop = failed_droppable(pack.conditions("syscall"), every)
    print("Stockade's pack, failed calls dropped:", sorted(drop & (pack.evttypes() or every)))
    assert "creat" in drop  # stk_open_write: not evt.rawres < 0
    assert not drop & {"connect", "execve", "openat", "unlink", "ptrace", "symlink"}

    both = Engine.from_files([falco_rules_path, *sorted(BUILTIN_RULES_DIR.glob("*.yaml"))])
    drop = failed_droppable(both.conditions("syscall"), every)
    # what neither set reads when it failed: a failed creat, dup, mkdir (a hidden directory made) or
    # utime* (a timestamp set) changed nothing
    want = {"creat", "dup", "dup2", "dup3", "mkdir", "mkdirat", "futimesat", "utime", "utimensat", "utimes"}
    assert drop & (both.evttypes() or every) == want


# -- soundness: "drop" means the interpreter matches no failed call ------------------------------

EDGE_RESULTS = [-1, -2, -3, -13, -115, -523, -4095, -4096, -(2**63)]
NUM_LITERALS = [
    "0",
    "-1",
    "-2",
    "1",
    "-0.5",
    "-1.5",
    "-4095",
    "-4096",
    "x",
    "",
    "0x10",
    "-0x1",
    " -1 ",
    "1e3",
]
NUM_LITERALS += ["nan", "inf", "-inf"]


def _failed(evttype: str, ret: int) -> dict[str, Any]:
    return {
        "evt.type": evttype,
        "evt.dir": "<",
        "evt.rawres": ret,
        "evt.res": errno.errorcode.get(-ret, str(ret)),
        "evt.failed": True,
    }


def _atoms() -> list[Check]:
    out = []
    for f in ("evt.rawres", "fd.num"):
        for op in ("=", "!=", "<", "<=", ">", ">="):
            out += [Check(field_ref(f), op, lit(v, False)) for v in NUM_LITERALS]
        out += [
            Check(field_ref(f), "in", ListLit((lit(a, False), lit(b, False))))
            for a in NUM_LITERALS
            for b in NUM_LITERALS
        ]
        out.append(Check(field_ref(f), "exists"))
    strs = ["SUCCESS", "success", "ENOENT", "EPERM", "EINPROGRESS", "E", "-523", ""]
    for op in ("=", "!=", "startswith", "contains", "<", ">"):
        out += [Check(field_ref("evt.res"), op, lit(v, False)) for v in strs]
    out += [
        Check(field_ref("evt.res"), "in", ListLit((lit(a, False), lit(b, False)))) for a in strs for b in strs
    ]
    for op in ("=", "!="):
        out += [Check(field_ref("evt.failed"), op, lit(v, False)) for v in ("true", "false", "1", "0", "x")]
        out += [Check(field_ref("evt.dir"), op, lit(v, False)) for v in ("<", ">")]
    return out


def test_every_decided_atom_holds_on_the_edges() -> None:
    """Each check on a known field, decided true or false, against failed calls at the edges."""
    decided = 0
    for atom in _atoms():
        t = truth(atom, failed_call_facts("openat"))
        if t is None:
            continue
        decided += 1
        for ret in EDGE_RESULTS:
            assert interp.eval_check(atom, _failed("openat", ret)) is t, (print_condition(atom), ret)
    assert decided > 250


OK_RESULTS = [0, 1, 2, 3, 4095, 2**31, 2**63 - 1]


def test_every_decided_atom_holds_on_the_edges_of_a_success() -> None:
    """The same for calls that succeeded (the interest filter's classes: a result of 0 or more)."""
    facts = class_facts("openat", READ_OK, True)
    decided = 0
    for atom in _atoms():
        t = truth(atom, facts)
        if t is None:
            continue
        decided += 1
        for ret in OK_RESULTS:
            ev = {"evt.type": "openat", "evt.dir": "<", "evt.rawres": ret, "evt.res": "SUCCESS"}
            ev |= {"evt.failed": False, "fd.num": ret}
            assert interp.eval_check(atom, ev) is t, (print_condition(atom), ret)
    assert decided > 250


RESULT_NUM_VALUES = ["0", "-1", "-2", "1", "-4095", "x", "0x10", "-0.5", "1.5", "-1.5", "nan", "inf", "-inf"]
RESULT_STR_VALUES = ["SUCCESS", "ENOENT", "EINPROGRESS", "E", "-523", "", "success"]


@st.composite
def result_checks(draw: st.DrawFn) -> Check:
    """Checks on what a failed call fixes: evt.rawres, fd.num, evt.res, evt.failed, evt.dir, evt.type."""
    kind = draw(st.sampled_from(["num", "num", "res", "failed", "dir", "type", "exists"]))
    q = draw(st.booleans())
    if kind == "exists":
        return Check(
            field_ref(draw(st.sampled_from(["evt.rawres", "fd.num", "evt.res", "evt.failed"]))), "exists"
        )
    if kind == "num":
        f = field_ref(draw(st.sampled_from(["evt.rawres", "fd.num"])))
        op = draw(st.sampled_from(["=", "!=", "<", "<=", ">", ">=", "in", "startswith"]))
        if op == "in":
            items = draw(st.lists(st.sampled_from(RESULT_NUM_VALUES), max_size=3))
            return Check(f, op, ListLit(tuple(lit(v, q) for v in items)))
        return Check(f, op, lit(draw(st.sampled_from(RESULT_NUM_VALUES)), q and op in ("=", "!=")))
    if kind == "res":
        op = draw(st.sampled_from(["=", "!=", "startswith", "contains", "in", "glob"]))
        if op == "in":
            items = draw(st.lists(st.sampled_from(RESULT_STR_VALUES), max_size=3))
            return Check(field_ref("evt.res"), op, ListLit(tuple(lit(v, q) for v in items)))
        return Check(field_ref("evt.res"), op, lit(draw(st.sampled_from(RESULT_STR_VALUES)), q))
    if kind == "failed":
        v = draw(st.sampled_from(["true", "false", "1", "0", "maybe"]))
        return Check(field_ref("evt.failed"), draw(st.sampled_from(["=", "!="])), lit(v, q))
    if kind == "dir":
        return Check(
            field_ref("evt.dir"), draw(st.sampled_from(["=", "!="])), lit(draw(st.sampled_from("<>")), q)
        )
    return Check(
        field_ref("evt.type"), draw(st.sampled_from(["=", "!="])), lit(draw(st.sampled_from(TYPES)), q)
    )


def conditions() -> st.SearchStrategy[Node]:
    return bool_trees(st.one_of(result_checks(), result_checks(), checks()), max_leaves=6)


@st.composite
def failed_calls(draw: st.DrawFn, evttype: str) -> dict[str, Any]:
    """A failed call of `evttype` as the eBPF decoder reports it (other fields from test_props)."""
    ev: dict[str, Any] = {}
    for k, strat in VALUE_POOL.items():
        v = draw(strat)
        if v is not None:
            ev[k] = v
    # the edges first: -1 (EPERM) sits on every comparison with 0 and -1
    ret = draw(
        st.one_of(
            st.sampled_from([-1, -2, -115, -523, -4095]), st.integers(-4095, -1), st.integers(-(2**63), -1)
        )
    )
    ev.update(_failed(evttype, ret))
    if "fd.num" not in failed_call_facts(evttype):  # e.g. connect: fd.num is the socket's descriptor
        fd = draw(st.one_of(st.none(), st.integers(-5, 100)))
        if fd is not None:
            ev["fd.num"] = fd
    return ev


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(conditions(), min_size=1, max_size=3), st.sampled_from(TYPES), st.data())
def test_a_dropped_failed_call_never_matches(conds: list[Node], evttype: str, data: st.DataObject) -> None:
    if evttype not in failed_droppable(conds, [evttype]):
        return
    for _ in range(4):
        ev = data.draw(failed_calls(evttype))
        for c in conds:
            assert not interp.evaluate(c, ev), (print_condition(c), ev)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conditions(), st.sampled_from(TYPES), st.data())
def test_a_decided_check_holds_for_every_failed_call(cond: Node, evttype: str, data: st.DataObject) -> None:
    """Stronger than the above: true and false both mean "for every failed call"."""
    t = truth(cond, failed_call_facts(evttype))
    if t is None:
        return
    for _ in range(4):
        ev = data.draw(failed_calls(evttype))
        assert interp.evaluate(cond, ev) is t, (print_condition(cond), ev)
