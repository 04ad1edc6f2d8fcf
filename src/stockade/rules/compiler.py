"""Compile resolved conditions into Python functions, one per event type.

For each event type a rule can match, the engine gets one generated function that tests, in load
order, every rule of that type with its `evt.type` checks already folded away. Common checks on
plain fields are inlined (`e.get("proc.name") == "bash"`, set membership on frozensets,
precompiled regex/glob, `str.startswith` with tuples); a value of an unexpected type, and the rare
operators, go to the reference interpreter (:mod:`stockade.rules.interp`), which defines the
semantics. Cheaper tests run first inside each and/or (conditions have no side effects).
"""

from __future__ import annotations

import marshal
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from stockade.model.fields import FIELD_ALIASES, FieldType, derivation, lookup
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
    Transform,
    walk,
)
from stockade.rules.evttypes import OTHER_TYPE, specialize

#: per-event evaluation: "first" returns the index of the first matching entry or -1;
#: "all" returns the list of matching indices
BucketFn = Callable[[dict[str, Any]], Any]


@dataclass(slots=True)
class Entry:
    """One condition to evaluate: a rule, or a step of a sequence rule."""

    ast: Node
    evttypes: frozenset[str] | None  # None: all types except `excluded`
    excluded: frozenset[str] = frozenset()


@dataclass(slots=True)
class CompiledSet:
    """The compiled conditions of one source: a bucket function per event type."""

    by_type: dict[str, BucketFn]
    other: BucketFn  # an event type no entry names
    untyped: BucketFn  # an event without evt.type
    #: bucket functions that test nothing (no entry applies): callers may skip them
    empty: frozenset[BucketFn] = frozenset()
    #: what rebuilds this set without generating and compiling it again (see :meth:`state`)
    mode: str = "all"
    #: evt.type (OTHER_TYPE: the others, None: untyped) -> (function name, code, tests something)
    codes: dict[str | None, tuple[str, Any, bool]] = field(default_factory=dict)
    consts: dict[str, Any] = field(default_factory=dict)
    recipes: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def fn_for(self, evttype: Any) -> BucketFn:
        """The bucket function for events of `evttype` (None: events without one)."""
        if evttype is None:
            return self.untyped
        return self.by_type.get(evttype, self.other)

    def state(self) -> dict[str, Any]:
        """A picklable description of the compiled set: the bucket functions' code objects
        (marshal) and their constants, those that are not plain data as recipes that rebuild them
        (field extractors, RE2 patterns). :func:`compiled_from_state` turns it back into the same
        set. Only valid for the same Stockade code and Python version (the cache key says so)."""
        consts = {
            k: ("r", *self.recipes[k]) if k in self.recipes else ("v", v) for k, v in self.consts.items()
        }
        codes = {k: (name, marshal.dumps(code), nonempty) for k, (name, code, nonempty) in self.codes.items()}
        return {"mode": self.mode, "codes": codes, "consts": consts}


class _Gen:
    """Generates the code of one bucket function."""

    def __init__(self, consts: dict[str, Any], recipes: dict[str, tuple[Any, ...]]) -> None:
        self.consts = consts
        self.recipes = recipes
        self.n = 0
        self.uses: dict[str, int] = {}
        self.locals: dict[str, str] = {}
        #: fields read into their local before the guard (statements), so never "not read yet"
        self.preread: dict[str, str] = {}
        #: generating code that runs before the locals are marked "not read yet": read afresh
        self.fresh_reads = False

    def const(self, value: Any, recipe: tuple[Any, ...] | None = None) -> str:
        """A name for `value` in the generated code; `recipe` rebuilds a value that is not plain
        data (see :func:`_from_recipe`)."""
        name = f"_k{len(self.consts)}"
        self.consts[name] = value
        if recipe is not None:
            self.recipes[name] = recipe
        return name

    def fresh(self) -> int:
        self.n += 1
        return self.n

    # -- ordering: conditions are pure, so and/or operands may run in any order ----------------
    def cost(self, node: Node) -> float:
        if isinstance(node, Check):
            if self._transform_inlinable(node) or self._net_inlinable(node):
                return 4.0
            if not self._inlinable(node):
                return 20.0
            spec = lookup(node.lhs.name) if isinstance(node.lhs, FieldRef) else None
            return 2.0 if spec is not None and spec.make_extractor is None else 4.0
        if isinstance(node, Not):
            return self.cost(node.child)
        if isinstance(node, And | Or):
            return sum(self.cost(c) for c in node.children)
        return 0.0

    def p_true(self, node: Node) -> float:
        """A rough chance that the node is true on a typical event: equality and membership tests on
        values are selective, negations and inequalities are not."""
        if isinstance(node, Check):
            if node.op == "!=":
                return 0.9
            if node.op == "exists":
                return 0.5
            if node.op in ("<", "<=", ">", ">="):
                return 0.5
            return 0.1
        if isinstance(node, Not):
            return 1.0 - self.p_true(node.child)
        if isinstance(node, And):
            p = 1.0
            for c in node.children:
                p *= self.p_true(c)
            return p
        if isinstance(node, Or):
            q = 1.0
            for c in node.children:
                q *= 1.0 - self.p_true(c)
            return 1.0 - q
        if isinstance(node, BoolConst):
            return 1.0 if node.value else 0.0
        return 0.5

    def expr(self, node: Node) -> str:
        if isinstance(node, BoolConst):
            return "True" if node.value else "False"
        if isinstance(node, Not):
            return f"(not {self.expr(node.child)})"
        if isinstance(node, And | Or):
            if isinstance(node, And):
                # cheapest way to a False first: ascending cost / chance of being false
                kids = sorted(node.children, key=lambda c: self.cost(c) / max(1.0 - self.p_true(c), 0.01))
            else:
                kids = sorted(node.children, key=lambda c: self.cost(c) / max(self.p_true(c), 0.01))
            joiner = " and " if isinstance(node, And) else " or "
            return "(" + joiner.join(self.expr(c) for c in kids) + ")"
        if isinstance(node, Check):
            return self.check(node)
        raise TypeError(f"cannot compile {type(node).__name__}")

    # -- checks -----------------------------------------------------------------------------
    def _inlinable(self, node: Check) -> bool:
        lhs = node.lhs
        if not isinstance(lhs, FieldRef):
            return False
        spec = lookup(lhs.name)
        if spec is None or spec.is_list or (lhs.name in interp.ANCESTOR_FIELDS and lhs.arg is None):
            return False
        if spec.type == FieldType.IPNET or lhs.name in ("fd.ip", "fd.port"):
            return False
        if node.op == "exists":
            return True
        if not isinstance(node.rhs, StrLit | ListLit):
            return False
        if spec.type.numeric:
            return (
                node.op in ("=", "==", "!=", "<", "<=", ">", ">=", "in", "intersects")
                and node.modifier is None
            )
        if spec.type == FieldType.BOOL:
            return node.op in ("=", "==", "!=") and node.modifier is None
        if node.modifier is not None:
            return node.op in ("startswith", "endswith", "contains", "=", "==") and node.modifier in (
                "anyof",
                "allof",
            )
        return node.op in (
            "=",
            "==",
            "!=",
            "contains",
            "icontains",
            "startswith",
            "endswith",
            "in",
            "intersects",
            "pmatch",
            "glob",
            "iglob",
            "regex",
        )

    def _transform_inlinable(self, node: Check) -> bool:
        """basename/tolower/toupper of a string field, with a string test."""
        t = node.lhs
        if not (
            isinstance(t, Transform)
            and t.name in _STR_TRANSFORMS
            and t.arg is None
            and len(t.args) == 1
            and isinstance(t.args[0], FieldRef)
            and node.op != "exists"
        ):
            return False
        spec = lookup(t.args[0].name)
        inner = Check(t.args[0], node.op, node.rhs, node.modifier)
        return spec is not None and spec.type == FieldType.STRING and self._inlinable(inner)

    def _net_inlinable(self, node: Check) -> bool:
        """An address in networks: `fd.snet in (...)`, `fd.cnet = 10.0.0.0/8`."""
        lhs = node.lhs
        if not isinstance(lhs, FieldRef) or lhs.arg is not None or node.modifier is not None:
            return False
        spec = lookup(lhs.name)
        if spec is None or spec.type != FieldType.IPNET or spec.is_list or lhs.name == "fd.net":
            return False
        if node.op in ("=", "==", "!="):
            return isinstance(node.rhs, StrLit)
        return node.op in ("in", "intersects") and isinstance(node.rhs, ListLit)

    # -- field access: a field read more than once in a bucket is read once into a local -----
    def count_fields(self, node: Node) -> None:
        for n in walk(node):
            if isinstance(n, Check) and self._inlinable(n):
                assert isinstance(n.lhs, FieldRef)
                key = _key(n.lhs)
                self.uses[key] = self.uses.get(key, 0) + 1

    def prologue(self) -> list[str]:
        # fields read more than once start as "not read yet" and are read on first use
        return [f"    {name} = _M" for key, name in self.locals.items() if key not in self.preread]

    def pre_read(self, key: str) -> None:
        """Read field `key` into its local before the guard: the guard reads it on almost every
        event anyway, and then neither the guard nor the rules test whether it was read."""
        if key in self.preread:
            return
        name = self.locals.get(key)
        if name is None:
            name = self.locals[key] = f"_f{len(self.locals)}"
        self.preread[key] = f"    {name} = {self.raw(key)}"

    def raw(self, key: str) -> str:
        """Reading a key, with a field that is another's alias falling back to it."""
        alias = FIELD_ALIASES.get(key)
        if alias is None:
            return f"g({key!r})"
        fallback = self.locals[alias] if alias in self.preread else f"g({alias!r})"
        return f"(_a if (_a := g({key!r})) is not None else {fallback})"

    def value(self, f: FieldRef) -> tuple[str, str]:
        """(expression that evaluates the field and leaves it in `name`, name)."""
        spec = lookup(f.name)
        key = _key(f)
        derived = spec is not None and spec.make_extractor is not None and key not in FIELD_ALIASES
        x = ""
        if derived and spec is not None:
            raw = derivation(key) if f.arg is None else None
            if raw is not None:
                x = self.const(raw, ("derivation", key))
            else:
                x = self.const(spec.extractor(f.arg), ("extractor", f.name, f.arg))
        if self.uses.get(key, 0) >= 2 and not (self.fresh_reads and key not in self.preread):
            name = self.locals.get(key)
            if name is None:
                name = self.locals[key] = f"_f{len(self.locals)}"
            if key in self.preread:
                read = name
            else:
                read = f"({name} if {name} is not _M else ({name} := {self.raw(key)}))"
            if derived:
                return f"({name} if {read} is not None else ({name} := {x}(e)))", name
            return read, name
        n = self.fresh()
        name = f"_v{n}"
        if derived:
            t = f"_t{n}"
            return f"({name} := ({t} if ({t} := g({key!r})) is not None else {x}(e)))", name
        return f"({name} := {self.raw(key)})", name

    def _ancestor_any(self, node: Check) -> bool:
        lhs = node.lhs
        return (
            isinstance(lhs, FieldRef)
            and lhs.arg is None
            and lhs.name in ("proc.aname", "proc.aexe", "proc.aexepath", "proc.acmdline")
            and node.modifier is None
            and node.op in ("=", "==", "in", "intersects")
            and isinstance(node.rhs, StrLit | ListLit)
        )

    def _fd_part(self, key: str, a: _Atoms) -> bool:
        """An fd.directory / fd.filename set membership, tested on fd.name when the event lacks it."""
        return key in _FROM_FD_NAME and not (a.prefix or a.suffix or a.contains or a.true)

    def read_guard_fields(self, g: Guard) -> None:
        """Read the guard's fields first, each once."""
        for key in sorted(g):
            a = g[key]
            if self._fd_part(key, a):
                self.pre_read("fd.name")
            elif not (a.true and key in _OPEN_FLAGS_WORDS):
                self.pre_read(key)

    def field_guard(self, key: str, a: _Atoms, fd_part: bool) -> str:
        """The guard's test of one field: true if one of its atoms holds, or if the field has an
        unusual type (left to the full evaluation). `fd_part`: as decided for the merged guard."""
        if fd_part:
            return self._fd_part_guard(key, a.eq)
        parts = []
        base, _, arg = key.partition("[")
        acc, v = self.value(FieldRef(base, arg[:-1] if arg else None))
        tests = []
        if a.eq:
            tests.append(f"{v} in {self.const(frozenset(a.eq))}")
        if a.prefix:
            tests.append(self._prefix_test(v, a.prefix))
        if a.suffix:
            tests.append(self._suffix_test(v, a.suffix))
        # a substring that contains another is implied by it
        subs = sorted(a.contains, key=len)
        subs = [c for i, c in enumerate(subs) if not any(d in c for d in subs[:i])]
        tests.extend(f"{c!r} in {v}" for c in sorted(subs))
        if a.icontains:
            low = f"_l{self.fresh()}"
            first = sorted(a.icontains)
            tests.append(
                f"({first[0]!r} in ({low} := {v}.lower())"
                + "".join(f" or {c!r} in {low}" for c in first[1:])
                + ")"
            )
        if a.num:
            parts.append(
                f"(({v} in {self.const(frozenset(a.num))}) if {acc}.__class__ is int else {v} is not None)"
            )
            acc = v  # evaluated already
        if a.true and key in _OPEN_FLAGS_WORDS:
            # derived from the open flags: test the flags text itself, without deriving
            n = self.fresh()
            x, y = f"_v{n}", f"_w{n}"
            read = f"({y} := g('evt.arg.flags'))"
            if "evt.arg.flags" in self.preread:
                y = read = self.locals["evt.arg.flags"]
            words = _OPEN_FLAGS_WORDS[key]
            flag_test = " or ".join(f"{w!r} in {y}" for w in words)
            parts.append(
                f"(({x} is True or {x}.__class__ is not bool) if ({x} := g({key!r})) is not None else "
                f"(({flag_test}) if {read}.__class__ is str else {y} is not None))"
            )
        elif a.true:
            # a boolean must be true; any other type is left to the full evaluation
            parts.append(f"(({acc}) is True or ({v} is not None and {v}.__class__ is not bool))")
        if tests:
            parts.append(f"(({' or '.join(tests)}) if {acc}.__class__ is str else {v} is not None)")
        return "(" + " or ".join(parts) + ")" if parts else "False"

    def guard_index(
        self, merged: Guard | None, guards: list[Guard | None], gates: list[str | None]
    ) -> list[str]:
        """Statements that set `m` to the bit mask of the entries an event can match: bit j for the
        j-th entry of the bucket if its own guard holds (or it has none), and its gate (a cheap
        flag it requires, see :func:`entry_gate`) if it has one. Per field, the merged test, which
        fails for most events, comes first; only when it holds are the entries' own tests on that
        field made (equal values through one dict lookup). The per-entry tests are those of
        :meth:`field_guard` on each entry's own atoms, so the mask is exact for each entry's guard."""
        lines: list[str] = []
        ungated = [gd if gt is None else None for gd, gt in zip(guards, gates, strict=True)]
        if merged is not None:
            self.read_guard_fields(merged)
            lines += self._mask_blocks(merged, ungated, "    ")
        for gate in sorted({gt for gt in gates if gt is not None}):
            mine = [gd if gt == gate else None for gd, gt in zip(guards, gates, strict=True)]
            free = sum(
                1 << j
                for j, (gd, gt) in enumerate(zip(guards, gates, strict=True))
                if gt == gate and gd is None
            )
            self.fresh_reads = True
            lines.append(f"    if {self.field_guard(gate, _Atoms(true=True), False)}:")
            if free:
                lines.append(f"        m |= {free}")
            sub = merge_guards(mine)
            if sub is not None:
                lines += self._mask_blocks(sub, mine, "        ")
            self.fresh_reads = False
        return lines

    def _mask_blocks(self, merged: Guard, guards: list[Guard | None], ind: str) -> list[str]:
        lines = []
        for key in sorted(merged):
            fd_part = self._fd_part(key, merged[key])
            lines.append(f"{ind}if {self.field_guard(key, merged[key], fd_part)}:")
            # entries with the same atoms on this field share one test
            groups: dict[tuple[Any, ...], int] = {}
            for j, gd in enumerate(guards):
                a = gd.get(key) if gd is not None else None
                if a is not None:
                    k = _atoms_key(a)
                    groups[k] = groups.get(k, 0) | (1 << j)
            if len(groups) == 1:  # one test: the merged one
                lines.append(f"{ind}    m |= {next(iter(groups.values()))}")
                continue
            eq_only: dict[str, int] = {}
            eq_any = 0
            for k, mask in groups.items():
                a = _atoms_from_key(k)
                if not fd_part and a.eq and a.size() == 1:
                    for val in a.eq:
                        eq_only[val] = eq_only.get(val, 0) | mask
                    eq_any |= mask
                    continue
                lines.append(f"{ind}    if {self.field_guard(key, a, fd_part)}:")
                lines.append(f"{ind}        m |= {mask}")
            if eq_only:
                base, _, arg = key.partition("[")
                acc, v = self.value(FieldRef(base, arg[:-1] if arg else None))
                d = self.const(eq_only)
                lines.append(
                    f"{ind}    m |= ({d}.get({v}, 0) if {acc}.__class__ is str else ({eq_any} if {v} is not None else 0))"
                )
        return lines

    def _prefix_test(self, v: str, prefixes: set[str]) -> str:
        """`v` starts with one of `prefixes`; many path prefixes are looked up by their first
        directory ("/etc/") so only those under it are compared."""
        if len(prefixes) <= 6:
            return f"{v}.startswith({self.const(tuple(sorted(prefixes)))})"
        by_dir: dict[str, list[str]] = {}
        loose: list[str] = []
        for p in sorted(prefixes):
            cut = p.find("/", 1)
            if p.startswith("/") and cut > 0:
                by_dir.setdefault(p[: cut + 1], []).append(p)
            else:
                loose.append(p)
        table = self.const({d: tuple(ps) for d, ps in by_dir.items()})
        test = f"{v}.startswith({table}.get({v}[: {v}.find('/', 1) + 1], ()))"
        if loose:
            test = f"({test} or {v}.startswith({self.const(tuple(loose))}))"
        return test

    def _suffix_test(self, v: str, suffixes: set[str]) -> str:
        """`v` ends with one of `suffixes`; many are looked up by their last characters."""
        if len(suffixes) <= 6:
            return f"{v}.endswith({self.const(tuple(sorted(suffixes)))})"
        k = min(4, min(len(x) for x in suffixes))
        if k == 0:
            return "True"
        by_end: dict[str, list[str]] = {}
        for x in sorted(suffixes):
            by_end.setdefault(x[-k:], []).append(x)
        table = self.const({end: tuple(xs) for end, xs in by_end.items()})
        return f"{v}.endswith({table}.get({v}[-{k}:], ()))"

    def _fd_part_guard(self, key: str, values: set[str]) -> str:
        """fd.directory / fd.filename in a set, tested on fd.name (no derivation) when the event
        does not carry the field itself: a necessary condition, which is all a guard must be."""
        n = self.fresh()
        x = f"_v{n}"
        if "fd.name" in self.preread:
            y = read = self.locals["fd.name"]  # read before the guard
        else:
            y = f"_w{n}"
            read = f"({y} := g('fd.name'))"
        s = self.const(frozenset(values))
        if key == "fd.directory":
            test = self._prefix_test(y, {v.rstrip("/") + "/" for v in values})
        else:
            test = self._suffix_test(y, {"/" + v for v in values})
        return (
            f"(({x} in {s}) if ({x} := g({key!r})).__class__ is str else "
            f"(({test}) if {read}.__class__ is str else ({x} is not None or {y} is not None)))"
        )

    def check(self, node: Check) -> str:
        slow = self.const(partial(interp.eval_check, node))
        if self._ancestor_any(node):
            # "any ancestor": a list of names against a set
            assert isinstance(node.lhs, FieldRef)
            spec = lookup(node.lhs.name)
            assert spec is not None
            n = self.fresh()
            v = f"_v{n}"
            x = self.const(spec.extractor(None), ("extractor", node.lhs.name, None))
            items = _check_items(node) or []
            k = self.const(frozenset(items))
            return f"((not {k}.isdisjoint({v})) if ({v} := {x}(e)).__class__ is list else ({v} is not None and {slow}(e)))"
        if self._transform_inlinable(node):
            assert isinstance(node.lhs, Transform) and isinstance(node.lhs.args[0], FieldRef)
            acc, v = self.value(node.lhs.args[0])
            t = f"_x{self.fresh()}"
            tx = _STR_TRANSFORMS[node.lhs.name].format(v=v)
            items = _check_items(node) or []
            fast = self.str_test(node.op, node.modifier, t, items)
            return f"(({fast}) if {acc}.__class__ is str and ({t} := {tx}).__class__ is str else ({v} is not None and {slow}(e)))"
        if self._net_inlinable(node):
            assert isinstance(node.lhs, FieldRef)
            acc, v = self.value(node.lhs)
            if isinstance(node.rhs, StrLit):
                nets: tuple[str, ...] = (node.rhs.value,)
                ok = interp.parse_net(node.rhs.value) is not None
            else:
                assert isinstance(node.rhs, ListLit)
                nets = tuple(i.value for i in node.rhs.items)
                ok = True
            k = self.const(NetSet(nets), ("netset", nets))
            fast = "False" if not ok else f"not {k}({v})" if node.op == "!=" else f"{k}({v})"
            return f"(({fast}) if {acc}.__class__ is str else ({v} is not None and {slow}(e)))"
        if not self._inlinable(node):
            return f"{slow}(e)"
        assert isinstance(node.lhs, FieldRef)
        spec = lookup(node.lhs.name)
        assert spec is not None
        acc, v = self.value(node.lhs)
        if node.op == "exists":
            return f"({acc} is not None and {v} != [])"
        op = node.op
        items = _check_items(node) or []
        if spec.type.numeric:
            cls = "int"
            nums = [interp.parse_number(i) for i in items]
            if op in ("in", "intersects"):
                fast = f"{v} in {self.const(frozenset(nums))}"
            else:
                pyop = "==" if op in ("=", "==") else op
                fast = f"{v} {pyop} {nums[0]!r}"
        elif spec.type == FieldType.BOOL:
            cls = "bool"
            b = interp.parse_bool(items[0])
            fast = f"{v} is {b!r}" if op != "!=" else f"{v} is not {b!r}"
        else:
            cls = "str"
            fast = self.str_test(op, node.modifier, v, items)
        # the usual type: the inline test; anything else (missing, a list, a number as text): the interpreter
        return f"(({fast}) if {acc}.__class__ is {cls} else ({v} is not None and {slow}(e)))"

    def str_test(self, op: str, modifier: str | None, v: str, items: list[str]) -> str:
        if modifier == "allof":
            return "(" + " and ".join(self.str_test(op, None, v, [i]) for i in items) + ")"
        if modifier == "anyof":
            if op in ("=", "=="):
                return f"{v} in {self.const(frozenset(items))}"
            if op in ("startswith", "endswith"):
                return f"{v}.{op}({self.const(tuple(items))})"
            return "(" + " or ".join(self.str_test(op, None, v, [i]) for i in items) + ")"
        return self._str_op(op, v, items)

    def _str_op(self, op: str, v: str, items: list[str]) -> str:
        """:meth:`str_test` without a modifier."""
        lit = items[0] if items else ""
        simple = _STR_TESTS.get(op)
        if simple is not None:
            return simple(v, lit)
        if op in ("in", "intersects"):
            if not items:
                return "False"
            return f"{v} in {self.const(frozenset(items))}"
        if op == "pmatch":
            return f"{self.const(interp.path_prefix_match)}({v}, {self.const(tuple(items))})"
        if op in ("glob", "iglob"):
            return f"{self.const(interp.glob_regex(lit, op == 'iglob'))}.match({v}) is not None"
        if op == "regex":
            return f"{self.const(interp.regex(lit), ('regex', lit))}.fullmatch({v}) is not None"
        raise AssertionError(op)


#: the generated test of string `v` against one literal, per operator
_STR_TESTS: dict[str, Callable[[str, str], str]] = {
    "=": lambda v, lit: f"{v} == {lit!r}",
    "==": lambda v, lit: f"{v} == {lit!r}",
    "!=": lambda v, lit: f"{v} != {lit!r}",
    "contains": lambda v, lit: f"{lit!r} in {v}",
    "icontains": lambda v, lit: f"{lit.lower()!r} in {v}.lower()",
    "startswith": lambda v, lit: f"{v}.startswith({lit!r})",
    "endswith": lambda v, lit: f"{v}.endswith({lit!r})",
}


# ---------------------------------------------------------------------------------------------
# Guards: a cheap necessary condition per bucket. Each rule's condition implies "one of these
# field tests is true"; the tests of all rules of a bucket are merged per field (one set lookup,
# one startswith/endswith on a tuple), so an event no rule can match costs a few lookups.
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Atoms:
    """Per field: values it may equal, prefixes, suffixes, substrings (any of them)."""

    eq: set[str] = field(default_factory=set)
    prefix: set[str] = field(default_factory=set)
    suffix: set[str] = field(default_factory=set)
    contains: set[str] = field(default_factory=set)
    #: substrings, case-insensitively (lowercase)
    icontains: set[str] = field(default_factory=set)
    #: numbers a numeric field may equal
    num: set[int | float] = field(default_factory=set)
    #: a boolean field that must be true
    true: bool = False

    def merge(self, o: _Atoms) -> None:
        self.eq |= o.eq
        self.prefix |= o.prefix
        self.suffix |= o.suffix
        self.contains |= o.contains
        self.icontains |= o.icontains
        self.num |= o.num
        self.true |= o.true

    def size(self) -> int:
        n = (1 if self.eq else 0) + (1 if self.prefix else 0) + (1 if self.suffix else 0) + len(self.contains)
        return n + len(self.icontains) + (1 if self.num else 0) + (1 if self.true else 0)


def _atoms_key(a: _Atoms) -> tuple[Any, ...]:
    return (
        frozenset(a.eq),
        frozenset(a.prefix),
        frozenset(a.suffix),
        frozenset(a.contains),
        frozenset(a.icontains),
        frozenset(a.num),
        a.true,
    )


def _atoms_from_key(k: tuple[Any, ...]) -> _Atoms:
    return _Atoms(set(k[0]), set(k[1]), set(k[2]), set(k[3]), set(k[4]), set(k[5]), k[6])


#: fields with few distinct values: a test on them says little about whether a rule can match
LOW_SELECTIVITY = frozenset(
    {
        "fd.typechar",
        "fd.type",
        "fd.l4proto",
        "fd.sockfamily",
        "evt.dir",
        "evt.res",
        "container.id",
        "evt.is_open_read",
    }
)


Guard = dict[str, _Atoms]  # field key -> atoms; the guard holds if any atom holds

#: derived from fd.name: their guard tests fd.name itself, without deriving
_FROM_FD_NAME = ("fd.directory", "fd.filename")
#: derived from the open flags: words that must be in the flags text for the field to be true
_OPEN_FLAGS_WORDS = {
    "evt.is_open_write": ("WR",),
    "evt.is_open_create": ("CREAT",),
}


def _guard_check(node: Check) -> Guard | None:
    """The guard one comparison gives (None: none that helps)."""
    lhs = node.lhs
    if isinstance(lhs, Transform):
        return _basename_guard(node)
    if not isinstance(lhs, FieldRef) or node.modifier not in (None, "anyof"):
        return None
    spec = lookup(lhs.name)
    if spec is None or spec.is_list or lhs.name in interp.ANCESTOR_FIELDS:
        return None
    if spec.type == FieldType.BOOL and node.op in ("=", "==") and isinstance(node.rhs, StrLit):
        if interp.parse_bool(node.rhs.value) is True:
            return {_key(lhs): _Atoms(true=True)}
        return None
    if lhs.name in ("fd.ip", "fd.port", "evt.type"):
        return None
    items = _check_items(node)
    if items is None:
        return None
    if spec.type.numeric:
        a = _numeric_atoms(node.op, items)
    elif spec.type != FieldType.STRING:
        return None
    elif node.op in ("glob", "iglob"):
        a = _glob_atoms(node.op, items)
    else:
        a = _string_atoms(node.op, items)
    return None if a is None else {_key(lhs): a}


def _check_items(node: Check) -> list[str] | None:
    """The literal values a comparison compares with (None: not literals)."""
    if isinstance(node.rhs, StrLit):
        return [node.rhs.value]
    if isinstance(node.rhs, ListLit):
        return [i.value for i in node.rhs.items]
    return None


def _numeric_atoms(op: str, items: list[str]) -> _Atoms | None:
    nums = [interp.parse_number(i) for i in items]
    if op not in ("=", "==", "in", "intersects") or any(n is None for n in nums):
        return None
    return _Atoms(num={n for n in nums if n is not None})


def _glob_atoms(op: str, items: list[str]) -> _Atoms | None:
    if op == "iglob":
        return None
    a = _Atoms()
    for pattern in items:
        # every match starts with the literal text before the first wildcard and contains every
        # literal piece; keep the piece that says most (a short path prefix says little)
        pieces = [p for p in re.split(r"\[[^\]]*\]|[*?]", pattern) if p]
        if not pieces:
            return None
        head = pattern.startswith(pieces[0])
        if head and not _short_prefix(pieces[0]):
            a.prefix.add(pieces[0])
            continue
        rest = pieces[1:] if head else pieces
        best = max(rest, key=len) if rest else pieces[0]
        if head and len(pieces[0]) > 2 * len(best):
            a.prefix.add(pieces[0])
        else:
            a.contains.add(best)
    return a


def _string_atoms(op: str, items: list[str]) -> _Atoms | None:
    a = _Atoms()
    if op == "icontains" and all(items):
        a.icontains.update(i.lower() for i in items)
    elif op in ("=", "==", "in", "intersects"):
        a.eq.update(items)
    elif op == "startswith":
        a.prefix.update(items)
    elif op == "endswith":
        a.suffix.update(items)
    elif op == "contains" and all(items):
        a.contains.update(items)
    elif op == "pmatch":
        a.eq.update(items)
        a.prefix.update(i if i.endswith("/") else i + "/" for i in items)
    else:
        return None
    return a


def _basename_guard(node: Check) -> Guard | None:
    """basename(X) = s / in (s, ...): X is s or ends with "/s" (s without a '/', not empty)."""
    t = node.lhs
    if not (
        isinstance(t, Transform)
        and t.name == "basename"
        and t.arg is None
        and len(t.args) == 1
        and isinstance(t.args[0], FieldRef)
        and node.modifier is None
        and node.op in ("=", "==", "in", "intersects")
    ):
        return None
    f = t.args[0]
    spec = lookup(f.name)
    if spec is None or spec.type != FieldType.STRING or spec.is_list or f.name in interp.ANCESTOR_FIELDS:
        return None
    rhs = node.rhs
    items = (
        [rhs.value]
        if isinstance(rhs, StrLit)
        else [i.value for i in rhs.items]
        if isinstance(rhs, ListLit)
        else None
    )
    if not items or any(not i or "/" in i for i in items):
        return None
    return {_key(f): _Atoms(eq=set(items), suffix={"/" + i for i in items})}


def _guard_weight(g: Guard) -> int:
    """Smaller is better: few tests, on fields that tell events apart. What an event acts on
    (its file, its arguments) says more than who acts (most activity comes from a few programs)."""
    w = sum(a.size() for a in g.values()) + len(g)
    for k, a in g.items():
        if k in LOW_SELECTIVITY:
            w += 100
        elif not k.startswith(("fd.", "evt.arg.")):
            w += 5
        if a.true:
            w += 8  # a flag is true for a share of events, a name or path for few
        # a short path prefix ("/etc/", "/proc/") matches much of what processes open
        w += 20 * sum(1 for p in a.prefix if _short_prefix(p))
    return w


def _short_prefix(p: str) -> bool:
    return p.count("/") <= 2 and len(p) <= 8


def guard_of(node: Node) -> Guard | None:
    """A necessary condition of `node` made of positive string tests, or None if there is none."""
    if isinstance(node, Check):
        return _guard_check(node)
    if isinstance(node, BoolConst):
        return None if node.value else {}
    if isinstance(node, And):
        best: Guard | None = None
        for c in node.children:
            g = guard_of(c)
            if g is not None and (best is None or _guard_weight(g) < _guard_weight(best)):
                best = g
        return best
    if isinstance(node, Or):
        out: Guard = {}
        for c in node.children:
            g = guard_of(c)
            if g is None:
                return None
            for k, a in g.items():
                out.setdefault(k, _Atoms()).merge(a)
        return out
    return None  # not: a negation is no positive evidence


def _conjuncts(node: Node) -> list[Node]:
    if isinstance(node, And):
        return [x for c in node.children for x in _conjuncts(c)]
    return [node]


def entry_guard(node: Node) -> tuple[Guard | None, str | None]:
    """(guard, gate) of one entry. The gate is a cheap flag the entry requires (an open for
    writing); when there is one, the guard is the best of the other conditions it requires, so
    the entry is a candidate only if both hold. The guard is None when there is none (or only
    one that says little)."""
    parts = _conjuncts(node)
    gate = None
    for c in parts:
        g = guard_of(c)
        if g is not None and len(g) == 1:
            ((k, a),) = g.items()
            if k in _OPEN_FLAGS_WORDS and a.true and a.size() == 1:
                gate = k
                parts = [x for x in parts if x is not c]
                break
    g = guard_of(And(tuple(parts))) if len(parts) > 1 else guard_of(parts[0]) if parts else None
    if g is None or any(k in LOW_SELECTIVITY for k in g):
        g = None
    return g, gate


def merge_guards(guards: list[Guard | None]) -> Guard | None:
    """The union of the guards that exist (None if none does): an event that fails it can match
    only the entries without a guard."""
    out: Guard | None = None
    for g in guards:
        if g is None:
            continue
        if out is None:
            out = {}
        for k, a in g.items():
            out.setdefault(k, _Atoms()).merge(a)
    return out


_NOT_READ = object()

#: transformers compiled inline on a string value `v` (as :func:`interp.apply_transform` does)
_STR_TRANSFORMS = {
    "basename": "{v}[{v}.rfind('/') + 1 :]",  # posixpath.basename
    "tolower": "{v}.lower()",
    "toupper": "{v}.upper()",
}


class NetSet:
    """Whether an address (text) is in any of some networks, as :func:`interp.in_net` says, with
    the answers for recent addresses kept (an address is parsed once, not per event)."""

    __slots__ = ("nets", "seen")

    def __init__(self, items: tuple[str, ...]) -> None:
        self.nets = [interp.parse_net(i) for i in items]
        self.seen: dict[str, bool] = {}

    def __call__(self, v: str) -> bool:
        """Whether the address `v` is in one of the networks (results cached, bounded)."""
        r = self.seen.get(v)
        if r is None:
            r = interp.in_net(v, self.nets)
            if len(self.seen) >= 4096:
                self.seen.clear()
            self.seen[v] = r
        return r


def _key(f: FieldRef) -> str:
    return f.name if f.arg is None else f"{f.name}[{f.arg}]"


#: entries per bit-mask chunk: a chunk none of whose entries can match is skipped with one test
_CHUNK = 8


def _bucket_source(
    name: str,
    exprs: list[tuple[int, str]],
    mode: str,
    prologue: list[str],
    index: list[str] | None = None,
    always: int = 0,
    preread: Sequence[str] = (),
) -> str:
    """The bucket function: the guard's fields read, the mask `m` of the entries whose guard holds
    (`index`; `always`: the entries without a guard), the other locals marked "not read yet" (only
    for the events some guarded entry may match), then the entries in order, each only if its bit
    is set."""
    lines = [f"def {name}(e):", "    g = e.get", *preread]
    fail = "-1" if mode == "first" else "[]"
    if index is not None:
        lines.append(f"    m = {always}")
        lines.extend(index)
        if not always:
            lines.append("    if not m:")
            lines.append(f"        return {fail}")
    lines.extend(prologue)
    if mode != "first":
        lines.append("    r = []")
    for c in range(0, len(exprs), _CHUNK):
        chunk = exprs[c : c + _CHUNK]
        pad = "    "
        if index is not None:
            cmask = ((1 << len(chunk)) - 1) << c
            if cmask & always != cmask:
                lines.append(f"    if m & {cmask}:")
                pad = "        "
        for j, (idx, ex) in enumerate(chunk, start=c):
            bit = 1 << j
            test = ex if index is None or bit & always else f"m & {bit} and {ex}"
            lines.append(f"{pad}if {test}:")
            lines.append(f"{pad}    return {idx}" if mode == "first" else f"{pad}    r.append({idx})")
    lines.append(f"    return {fail}" if mode == "first" else "    return r")
    return "\n".join(lines) + "\n"


def mentioned_evttypes(node: Node) -> set[str]:
    """Every event type an `evt.type` check of the condition names (each gets its own bucket, so
    that specialising for "a type no rule names" is exact)."""
    out: set[str] = set()
    for n in walk(node):
        if (
            isinstance(n, Check)
            and isinstance(n.lhs, FieldRef)
            and n.lhs.name == "evt.type"
            and n.lhs.arg is None
        ):
            if isinstance(n.rhs, StrLit):
                out.add(n.rhs.value)
            elif isinstance(n.rhs, ListLit):
                out.update(i.value for i in n.rhs.items)
    return out


def compile_entries(entries: Sequence[Entry], mode: str = "all") -> CompiledSet:
    """Compile entries (in load order) into per-event-type functions.

    mode "first": a function returns the index of the first matching entry, or -1.
    mode "all": it returns the list of indices of every matching entry.
    """
    named: set[str] = set()
    for en in entries:
        if en.evttypes is not None:
            named |= en.evttypes
        named |= en.excluded
        named |= mentioned_evttypes(en.ast)
    consts: dict[str, Any] = {}
    recipes: dict[str, tuple[Any, ...]] = {}
    codes: dict[str | None, tuple[str, Any, bool]] = {}  # evt.type (None: untyped) -> ...
    fns: dict[str, BucketFn] = {}
    empty: set[BucketFn] = set()

    def build(fname: str, evttype: str | None) -> BucketFn:
        gen = _Gen(consts, recipes)
        nodes: list[tuple[int, Node]] = []
        for idx, en in enumerate(entries):
            if evttype is not None:
                applies = (
                    (evttype in en.evttypes)
                    if en.evttypes is not None
                    else (evttype not in en.excluded or evttype == OTHER_TYPE)
                )
                if not applies:
                    continue
                node = specialize(en.ast, evttype)
            else:
                node = en.ast
            if isinstance(node, BoolConst) and not node.value:
                continue
            nodes.append((idx, node))
            gen.count_fields(node)
        both = [entry_guard(node) for _, node in nodes]
        guards = [gd for gd, _ in both]
        gates = [gt for _, gt in both]
        merged = merge_guards([gd if gt is None else None for gd, gt in both])
        index: list[str] | None = None
        always = 0
        if merged is not None or any(gates):
            for k in merged or ():  # the guard reads these too: keep them in locals
                gen.uses[k] = gen.uses.get(k, 0) + 2
            index = gen.guard_index(merged, guards, gates)
            always = sum(1 << j for j, (gd, gt) in enumerate(both) if gd is None and gt is None)
        exprs = [(idx, gen.expr(node)) for idx, node in nodes]
        src = _bucket_source(fname, exprs, mode, gen.prologue(), index, always, list(gen.preread.values()))
        nonempty = bool(exprs)
        ns: dict[str, Any] = dict(consts)
        ns["_M"] = _NOT_READ
        code = compile(src, f"<stockade rules:{fname}>", "exec")
        codes[evttype] = (fname, code, nonempty)
        exec(code, ns)
        fn: BucketFn = ns[fname]
        if not nonempty:
            empty.add(fn)
        return fn

    for i, t in enumerate(sorted(named)):
        fns[t] = build(f"_b{i}", t)
    other = build("_b_other", OTHER_TYPE)
    untyped = build("_b_untyped", None)
    return CompiledSet(fns, other, untyped, frozenset(empty), mode, codes, consts, recipes)


def compiled_from_state(state: dict[str, Any]) -> CompiledSet:
    """The :class:`CompiledSet` that :meth:`CompiledSet.state` describes (no code generated; the
    generated source is not kept)."""
    consts: dict[str, Any] = {}
    recipes: dict[str, tuple[Any, ...]] = {}
    for k, (kind, *rest) in state["consts"].items():
        if kind == "v":
            consts[k] = rest[0]
        else:
            recipes[k] = tuple(rest)
            consts[k] = _from_recipe(tuple(rest))
    ns: dict[str, Any] = dict(consts)
    ns["_M"] = _NOT_READ
    fns: dict[str | None, BucketFn] = {}
    codes: dict[str | None, tuple[str, Any, bool]] = {}
    empty: set[BucketFn] = set()
    for key, (fname, blob, nonempty) in state["codes"].items():
        code = marshal.loads(blob)
        codes[key] = (fname, code, nonempty)
        exec(code, ns)
        fn: BucketFn = ns[fname]
        fns[key] = fn
        if not nonempty:
            empty.add(fn)
    other, untyped = fns.pop(OTHER_TYPE), fns.pop(None)
    by_type = {t: f for t, f in fns.items() if t is not None}
    return CompiledSet(by_type, other, untyped, frozenset(empty), state["mode"], codes, consts, recipes)


def _from_recipe(recipe: tuple[Any, ...]) -> Any:
    kind = recipe[0]
    if kind == "derivation":
        return derivation(recipe[1])
    if kind == "extractor":
        spec = lookup(recipe[1])
        assert spec is not None, recipe
        return spec.extractor(recipe[2])
    if kind == "regex":
        return interp.regex(recipe[1])
    if kind == "netset":
        return NetSet(tuple(recipe[1]))
    raise ValueError(f"unknown constant recipe {recipe!r}")


def compile_condition(ast: Node) -> Callable[[dict[str, Any]], bool]:
    """A single resolved condition as a function of the event data (for tests and tools)."""
    cs = compile_entries([Entry(ast, None)], mode="first")

    def run(data: dict[str, Any]) -> bool:
        return bool(cs.fn_for(data.get("evt.type"))(data) == 0)

    return run
