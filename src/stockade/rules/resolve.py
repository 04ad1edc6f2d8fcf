"""Turn a read Ruleset into resolved conditions: macros expanded, lists resolved, exceptions added,
fields checked against the rule's source, event types computed; then Falco's warnings.

Every problem is recorded in ``ruleset.problems`` with its location; a rule with an error is left
without an AST (it will not run) and the rest go on. A rule with `skip-if-unknown-filter: true` whose
condition or output names an unknown field or event type is skipped with a LOAD_UNKNOWN_FILTER
warning, as in Falco.
"""

from __future__ import annotations

import re
from typing import Any

from stockade.errors import Location
from stockade.model.evtnames import EVENT_TYPE_NAMES
from stockade.model.fields import ArgKind, FieldType, lookup
from stockade.rules.ast import (
    LIST_OPS,
    MODIFIERS,
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
    check_fields,
    operand_fields,
    walk,
)
from stockade.rules.evttypes import EvtTypes, rule_evttypes
from stockade.rules.interp import EvalError, validate_check
from stockade.rules.output import OutputFormatError, compile_output
from stockade.rules.parser import ConditionSyntaxError, parse_condition, parse_operand
from stockade.rules.ruleset import SOURCES, ExceptionDef, RuleDef, Ruleset, SequenceDef

_QUIET = "quiet"  # a failure already reported elsewhere


class _Fail(Exception):
    def __init__(
        self,
        message: str,
        pos: int | None = None,
        code: str = "LOAD_ERR_COMPILE_CONDITION",
        unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.code = code
        #: an unknown field or event type (Falco's skip-if-unknown-filter turns it into a warning)
        self.unknown = unknown


def unquote(item: str) -> str:
    """List items are expanded as text in Falco: '"a b"' stands for the string a b."""
    if len(item) >= 2 and item[0] == item[-1] and item[0] in "\"'":
        return item[1:-1]
    return item


def position(base: Location | None, text: str, offset: int | None, item: str) -> Location | None:
    """The file position of `offset` inside a condition whose text starts at `base`."""
    if base is None:
        return None
    if offset is None:
        return Location(base.file, base.line, base.column or None, item)
    if base.column == 0:
        # block scalar: YAML folded/kept the lines; find the line the offset falls on
        before = text[:offset]
        line = (base.line or 1) + before.count("\n")
        col = offset - (before.rfind("\n") + 1) + 1
        return Location(base.file, line, col, item)
    return Location(base.file, base.line, (base.column or 1) + offset, item)


class Resolver:
    """Falco's compiler (rule_loader_compiler.cpp) on Stockade's AST.

    Lists: a list's items that name a list defined before it (in load order, up to its last
    definition or append) are replaced by that list's own items, one level; a condition's reference is
    then expanded as Falco's text substitution does, the lists taken in load order, so an item that
    names a later list is expanded by it and anything else, a reference loop included, stays text.
    Macros: every macro is resolved, in load order, seeing the macros defined before its last
    definition or append (an undefined or not yet visible macro, or a reference loop, is an error
    even in an unused macro); rules see every macro.
    """

    def __init__(self, rs: Ruleset) -> None:
        self.rs = rs
        self._macro_raw: dict[str, Node | None] = {}
        self._resolved: dict[str, Node] = {}
        self._failed: set[str] = set()
        self._compiled: dict[str, list[str]] = {}
        self._list_cache: dict[tuple[str, int], tuple[str, ...]] = {}

    # -- lists ------------------------------------------------------------------------------------
    def compiled_list(self, name: str) -> list[str]:
        """The list's items, references to lists visible to it replaced by their items (one level)."""
        out = self._compiled.get(name)
        if out is not None:
            return out
        ld = self.rs.lists[name]
        out = []
        lists = self.rs.lists
        for it in ld.items:
            ref = lists.get(it)
            if ref is not None and ref.index < ld.visibility:
                ref.used = True
                out.extend(ref.items)
            else:
                out.append(it)
        self._compiled[name] = out
        return out

    def list_items(self, name: str, after: int = 0) -> tuple[str, ...]:
        """What a reference to list `name` stands for, lists before load index `after` left as text."""
        key = (name, after)
        cached = self._list_cache.get(key)
        if cached is not None:
            return cached
        ld = self.rs.lists[name]
        ld.used = True
        lists = self.rs.lists
        nxt = ld.index + 1
        out: list[str] = []
        for it in self.compiled_list(name):
            ref = lists.get(it)
            if ref is not None and ref.index >= nxt:
                out.extend(self.list_items(it, nxt))
            else:
                out.append(unquote(it))
        res = tuple(dict.fromkeys(out))
        self._list_cache[key] = res
        return res

    def resolve_value(self, rhs: Any) -> Any:
        """A right-hand value with list references replaced by their items."""
        if isinstance(rhs, ListRef):
            if rhs.name not in self.rs.lists:
                raise _Fail(f"undefined list '{rhs.name}'", rhs.pos)
            return ListLit(tuple(StrLit(x, True) for x in self.list_items(rhs.name)), rhs.pos)
        if isinstance(rhs, ListLit):
            if not any(not it.quoted and it.value in self.rs.lists for it in rhs.items):
                return rhs
            items: list[StrLit] = []
            for it in rhs.items:
                if not it.quoted and it.value in self.rs.lists:
                    items.extend(StrLit(x, True) for x in self.list_items(it.value))
                else:
                    items.append(it)
            return ListLit(tuple(items), rhs.pos)
        return rhs

    # -- macros -----------------------------------------------------------------------------------
    def resolve_macros(self) -> None:
        """Parse and resolve every macro in load order, as Falco's compile_macros_infos does."""
        ordered = sorted(self.rs.macros.values(), key=lambda m: m.index)
        for md in ordered:
            try:
                self._macro_raw[md.name] = parse_condition(md.condition)
            except ConditionSyntaxError as e:
                self._macro_raw[md.name] = None
                self._failed.add(md.name)
                self.rs.error(
                    "LOAD_ERR_COMPILE_CONDITION",
                    f"syntax error in condition: {e.message}",
                    position(md.cond_location or md.location, md.condition, e.offset, f"macro '{md.name}'"),
                )
        for md in ordered:
            raw = self._macro_raw[md.name]
            if raw is None:
                continue
            vis = md.visibility
            try:
                self._resolved[md.name] = self.expand(
                    raw, in_macro=md.name, visible=lambda m, vis=vis: m.index < vis, path=(md.name,)
                )
            except _Fail as f:
                self._failed.add(md.name)
                if f.code != _QUIET:
                    self.rs.error(f.code, f.message, md.location)

    def macro_ast(self, name: str, pos: int | None, visible: Any, path: tuple[str, ...]) -> Node:
        """The resolved tree of macro `name` (cycles and undefined macros are errors)."""
        md = self.rs.macros.get(name)
        if md is None or (visible is not None and not visible(md)):
            raise _Fail(f"Undefined macro '{name}' used in filter.", pos, "LOAD_ERR_VALIDATE")
        if name in path:
            raise _Fail(f"reference loop in macro '{name}'", pos, "LOAD_ERR_VALIDATE")
        md.used = True
        if name in self._failed:
            # its own error is reported (Falco stops there); what uses it does not load, quietly
            raise _Fail(f"macro '{name}' has errors", pos, _QUIET)
        done = self._resolved.get(name)
        if done is not None:
            return done
        raw = self._macro_raw.get(name)
        if raw is None:  # not parsed yet (resolve_macros parses all first): cannot happen
            raise _Fail(f"macro '{name}' has errors", pos)
        # a macro defined later but visible (the referrer was redefined or appended after it)
        return self.expand(raw, in_macro=name, visible=visible, path=(*path, name))

    def expand(
        self, node: Node, in_macro: str | None = None, visible: Any = None, path: tuple[str, ...] = ()
    ) -> Node:
        """Expand macros and resolve lists, recursively. Positions inside macros are not kept."""
        if isinstance(node, MacroRef):
            return self.macro_ast(node.name, node.pos if in_macro is None else None, visible, path)
        if isinstance(node, And):
            return And(tuple(self.expand(c, in_macro, visible, path) for c in node.children), node.pos)
        if isinstance(node, Or):
            return Or(tuple(self.expand(c, in_macro, visible, path) for c in node.children), node.pos)
        if isinstance(node, Not):
            return Not(self.expand(node.child, in_macro, visible, path), node.pos)
        if isinstance(node, Check):
            try:
                rhs = self.resolve_value(node.rhs)
            except _Fail as f:
                if in_macro is not None:
                    f.message += f" (in macro '{in_macro}')"
                    f.pos = None
                raise
            if rhs is not node.rhs:
                return Check(node.lhs, node.op, rhs, node.modifier, node.pos)
        return node

    # -- fields ---------------------------------------------------------------------------------
    def check_fields(self, node: Node, source: str) -> None:
        """Check that every field of `node` exists for `source` and its values have the field's type."""
        for f in check_fields(node):
            check_field(f, source)
        for n in walk(node):
            if isinstance(n, Check):
                _check_operand(n.lhs, source)
                if n.op in LIST_OPS and not isinstance(n.rhs, ListLit | FieldRef | Transform):
                    raise _Fail(f"operator '{n.op}' needs a list", n.pos)
                _check_evttype_values(n)
                _check_value_types(n)
                try:
                    validate_check(n)
                except EvalError as e:
                    raise _Fail(str(e), n.pos) from None

    # -- exceptions -------------------------------------------------------------------------------
    def exceptions_ast(self, excs: list[ExceptionDef]) -> Node | None:
        """`not (...)` terms for the exceptions, as Falco's build_rule_exception_infos writes them."""
        alts: list[Node] = []
        for ex in excs:
            if not ex.values:
                continue
            if isinstance(ex.fields, list):
                fields = [_operand(f) for f in ex.fields]
                comps = ex.comps if isinstance(ex.comps, list) else ["="] * len(fields)
                for tup in ex.values:
                    if not isinstance(tup, list) or len(tup) != len(fields):
                        raise _Fail(
                            "Fields and values lists must have equal length", None, "LOAD_ERR_VALIDATE"
                        )
                    checks = [
                        self._exc_check(f, str(c), v) for f, c, v in zip(fields, comps, tup, strict=True)
                    ]
                    alts.append(checks[0] if len(checks) == 1 else And(tuple(checks)))
            else:
                f = _operand(str(ex.fields))
                comp = str(ex.comps) if ex.comps else "in"
                if any(isinstance(v, list) for v in ex.values):
                    raise _Fail(
                        "Expected values array to contain a list of strings", None, "LOAD_ERR_VALIDATE"
                    )
                alts.append(self._exc_check(f, comp, list(ex.values)))
        if not alts:
            return None
        return alts[0] if len(alts) == 1 else Or(tuple(alts))

    def _exc_items(self, values: list[Any]) -> ListLit:
        items: list[str] = []
        for v in values:
            s = str(v)
            items.extend(self.list_items(s) if s in self.rs.lists else [unquote(s)])
        return ListLit(tuple(StrLit(x, True) for x in items))

    def _exc_check(self, f: FieldRef | Transform, comp: str, value: Any) -> Check:
        base, _, mod = comp.rpartition(" ")
        op, modifier = (base, mod) if mod in MODIFIERS else (comp, None)
        if op in LIST_OPS or modifier is not None:
            # a list value, or one value put in parentheses (a list name there is expanded)
            return Check(f, op, self._exc_items(value if isinstance(value, list) else [value]), modifier)
        if isinstance(value, list):
            return Check(f, op, self._exc_items(value), None)
        return Check(f, op, StrLit(unquote(str(value)), True), None)

    # -- rules ------------------------------------------------------------------------------------
    def condition(self, text: str) -> Node:
        """The parsed tree of a condition; a syntax error at its offset."""
        try:
            raw = parse_condition(text)
        except ConditionSyntaxError as e:
            raise _Fail(f"syntax error in condition: {e.message}", e.offset) from None
        return self.expand(raw)

    def rule(self, r: RuleDef) -> None:
        """Resolve one rule's condition (or sequence steps) and exceptions; problems are recorded."""
        what = f"rule '{r.name}'"
        if r.source not in SOURCES:
            return  # LOAD_UNKNOWN_SOURCE was reported when it was read; the rule is skipped
        if r.sequence is None and not self._output_compiles(r, what):
            return
        try:
            if r.sequence is not None:
                self._sequence(r, r.sequence)
                return
            ast = self.condition(r.condition)
            exc = self.exceptions_ast(r.exceptions)
            if exc is not None:
                ast = And((ast, Not(exc)))
            self.check_fields(ast, r.source)
        except _Fail as f:
            loc = position(r.cond_location, r.condition, f.pos, what) if f.pos is not None else None
            if f.unknown and r.skip_if_unknown_filter:
                self.rs.warn(
                    "LOAD_UNKNOWN_FILTER",
                    f"{f.message} (rule skipped: skip-if-unknown-filter)",
                    loc or r.location,
                )
            elif f.code != _QUIET:
                self.rs.error(f.code, f.message, loc or r.location)
            return
        r.ast = ast
        self._warn_condition(r, ast)

    def _output_compiles(self, r: RuleDef, what: str) -> bool:
        """Whether the rule's output format compiles (the problem recorded when not)."""
        try:
            compile_output(r.output, r.source)
        except OutputFormatError as e:
            loc = position(r.output_location, r.output, e.offset, what) or r.location
            if e.unknown_field and r.skip_if_unknown_filter:
                self.rs.warn("LOAD_UNKNOWN_FILTER", f"{e} (rule skipped: skip-if-unknown-filter)", loc)
            else:
                self.rs.error("LOAD_ERR_COMPILE_OUTPUT", str(e), loc)
            return False
        return True

    def _sequence(self, r: RuleDef, seq: SequenceDef) -> None:
        """Resolve a sequence rule's steps and key; its event types are those of all its steps."""
        types: list[EvtTypes] = []
        for i, step in enumerate(seq.steps):
            try:
                step.ast = self.condition(step.condition)
                self.check_fields(step.ast, r.source)
            except _Fail as f:
                f.message = f"sequence step {i + 1}: {f.message}"
                f.pos = None
                raise
            types.append(rule_evttypes(step.ast))
        union = types[0]
        for t in types[1:]:
            union = union | t
        r.evttypes, r.evttypes_excluded = union.as_sets()
        if seq.by != "process_tree":
            by = _operand(seq.by)
            if not isinstance(by, FieldRef):
                raise _Fail(f"sequence.by must be a field or process_tree, not '{seq.by}'")
            check_field(by, r.source)

    def _warn_condition(self, r: RuleDef, ast: Node) -> None:
        """Record the rule's event types, with warnings for a condition that never matches, one
        that runs on every event, and a comparison with <NA>."""
        et = rule_evttypes(ast)
        r.evttypes, r.evttypes_excluded = et.as_sets()
        if r.source == "syscall" and et.is_empty():
            self.rs.warn(
                "LOAD_NEVER_MATCHES", "the condition can never match: no event type satisfies it", r.location
            )
        elif r.source == "syscall" and r.evttypes is None and r.warn_evttypes:
            self.rs.warn(
                "LOAD_NO_EVTTYPE",
                "Rule matches too many evt.type values. This has a significant performance penalty. "
                "(no evt.type restriction: it runs on every event; add an evt.type condition)",
                r.location,
            )
        elif r.source == "k8s_audit" and isinstance(ast, BoolConst) and not ast.value:
            self.rs.warn("LOAD_NEVER_MATCHES", "the condition can never match", r.location)
        if _unsafe_na_check(ast):
            self.rs.warn(
                "LOAD_UNSAFE_NA_CHECK",
                "Comparing a field value with <NA> is unsafe and can lead to unpredictable behavior of the "
                "rule condition; use the 'exists' operator to check for a field",
                r.cond_location or r.location,
            )


def _operand(text: str) -> FieldRef | Transform:
    try:
        return parse_operand(text)
    except ConditionSyntaxError as e:
        raise _Fail(f"invalid field '{text}': {e.message}", None, "LOAD_ERR_VALIDATE") from None


def valid_lhs_field(text: str, source: str) -> bool:
    """A field or transformer Falco accepts on the left of an exception comparison."""
    try:
        op = parse_operand(text.strip())
        for f in operand_fields(op):
            check_field(f, source)
    except (ConditionSyntaxError, _Fail):
        return False
    return True


def check_field(f: FieldRef, source: str) -> None:
    """Check that field `f` exists for `source` and takes the argument it is given."""
    spec = lookup(f.name)
    if spec is None:
        raise _Fail(f"filter_check called with nonexistent field {f.name}", f.pos, unknown=True)
    if spec.source not in (source, "*"):
        raise _Fail(f"field {f.name} belongs to source '{spec.source}', not '{source}'", f.pos, unknown=True)
    if f.arg is None and spec.arg_required:
        raise _Fail(f"field {f.name} requires an argument, e.g. {f.name}[...]", f.pos)
    if f.arg is not None:
        if spec.arg == ArgKind.NONE:
            raise _Fail(f"field {f.name} does not take an argument", f.pos)
        if spec.arg == ArgKind.INDEX and not f.arg.isdigit():
            raise _Fail(f"field {f.name} needs a numeric index, not '{f.arg}'", f.pos)


_EVTTYPE_OPS = ("=", "==", "!=", "in", "intersects")


def _check_evttype_values(n: Check) -> None:
    """libsinsp refuses an evt.type compared with a name that is no event type."""
    if not (isinstance(n.lhs, FieldRef) and n.lhs.name == "evt.type" and n.op in _EVTTYPE_OPS):
        return
    values = n.rhs.items if isinstance(n.rhs, ListLit) else (n.rhs,) if isinstance(n.rhs, StrLit) else ()
    for v in values:
        if v.value not in EVENT_TYPE_NAMES:
            raise _Fail(f"unknown event type {v.value}", v.pos or n.pos, unknown=True)


_NUMERIC_OPS = frozenset(("=", "==", "!=", "<", "<=", ">", ">=", "in", "intersects", "exists"))
_BOOL_OPS = frozenset(("=", "==", "!=", "in", "intersects", "exists"))
_INTEGER = re.compile(r"[+-]?[0-9]+")


def _check_value_types(n: Check) -> None:
    """The operators and values libsinsp accepts for a numeric or bool field (flt_is_comparable and
    its value parsers): sysdig 0.29.3 refuses `proc.pid = 1.5` ("1.5 is not a valid number"),
    `proc.pid contains 1` ("'contains' not supported for numeric filters"), `proc.pid pmatch (1)`,
    `evt.is_open_read = 1` ("unrecognized boolean value 1")."""
    if not isinstance(n.lhs, FieldRef) or n.op == "exists":
        return
    spec = lookup(n.lhs.name)
    if spec is None or spec.is_list:
        return
    values = n.rhs.items if isinstance(n.rhs, ListLit) else (n.rhs,) if isinstance(n.rhs, StrLit) else ()
    if spec.type.numeric:
        if n.op not in _NUMERIC_OPS or n.modifier is not None:
            raise _Fail(f"'{n.op}' operator not supported for numeric filters", n.pos)
        if spec.type in (FieldType.INT, FieldType.UINT):
            for v in values:
                if not _INTEGER.fullmatch(v.value):
                    raise _Fail(f"{v.value} is not a valid number", v.pos or n.pos)
    elif spec.type == FieldType.BOOL:
        if n.op not in _BOOL_OPS or n.modifier is not None:
            raise _Fail(f"'{n.op}' operator not supported for bool filters", n.pos)
        for v in values:
            if v.value not in ("true", "false"):
                raise _Fail(f"filter error: unrecognized boolean value {v.value}", v.pos or n.pos)


_EQUALITY_OPS = ("==", "=", "!=", "in", "intersects", "pmatch")


def _unsafe_na_check(node: Node) -> bool:
    """Falco's LOAD_UNSAFE_NA_CHECK: a k8s audit (ka.*, jevt.*) field compared for equality with <NA>."""
    for n in walk(node):
        if (
            isinstance(n, Check)
            and isinstance(n.lhs, FieldRef)
            and n.lhs.name.startswith(("ka.", "jevt."))
            and n.op in _EQUALITY_OPS
        ):
            items = (
                n.rhs.items if isinstance(n.rhs, ListLit) else (n.rhs,) if isinstance(n.rhs, StrLit) else ()
            )
            if any(i.value == "<NA>" for i in items):
                return True
    return False


def _check_operand(op: object, source: str) -> None:
    if isinstance(op, Transform) and op.name not in ("val",) and not op.args:
        raise _Fail(f"transformer {op.name}() needs an argument", op.pos)
    if isinstance(op, TransformerList):
        for x in op.items:
            _check_operand(x, source)


def resolve(rs: Ruleset) -> Ruleset:
    """Resolve every rule in place; record problems and Falco's load warnings."""
    res = Resolver(rs)
    for ld in rs.lists.values():
        res.compiled_list(ld.name)  # marks the lists a list refers to as used, as Falco does
    res.resolve_macros()
    for r in rs.rules.values():
        res.rule(r)
    # macros and lists nobody referred to (Falco: LOAD_UNUSED_MACRO / LOAD_UNUSED_LIST)
    for m in rs.macros.values():
        if not m.used:
            rs.warn("LOAD_UNUSED_MACRO", "Macro not referred to by any other rule/macro", m.location)
    for ld in rs.lists.values():
        if not ld.used:
            rs.warn("LOAD_UNUSED_LIST", "List not referred to by any other rule/macro", ld.location)
    return rs
