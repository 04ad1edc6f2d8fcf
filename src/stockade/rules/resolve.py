"""Turn a read Ruleset into resolved conditions: macros expanded, lists resolved, exceptions added,
fields checked against the rule's source, event types computed; then Falco's warnings.

Every problem is recorded in ``ruleset.problems`` with its location; a rule with an error is left
without an AST (it will not run) and the rest go on.
"""

from __future__ import annotations

from typing import Any

from stockade.errors import Location
from stockade.model.fields import ArgKind, lookup
from stockade.rules.ast import (
    LIST_OPS,
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
    walk,
)
from stockade.rules.evttypes import EvtTypes, rule_evttypes
from stockade.rules.interp import EvalError, validate_check
from stockade.rules.parser import ConditionSyntaxError, parse_condition, parse_operand
from stockade.rules.ruleset import SOURCES, ExceptionDef, RuleDef, Ruleset


class _Fail(Exception):
    def __init__(
        self, message: str, pos: int | None = None, code: str = "LOAD_ERR_COMPILE_CONDITION"
    ) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.code = code


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
    def __init__(self, rs: Ruleset) -> None:
        self.rs = rs
        self._macro_ast: dict[str, Node | None] = {}
        self._expanded: dict[str, Node] = {}
        self._expanding: list[str] = []
        self._list_cache: dict[str, tuple[str, ...]] = {}

    # -- lists ------------------------------------------------------------------------------------
    def list_items(self, name: str, seen: tuple[str, ...] = ()) -> tuple[str, ...]:
        if name in self._list_cache:
            return self._list_cache[name]
        ld = self.rs.lists[name]
        ld.used = True
        out: list[str] = []
        for it in ld.items:
            if it in self.rs.lists and it not in seen and it != name:
                out.extend(self.list_items(it, (*seen, name)))
            else:
                out.append(unquote(it))
        res = tuple(dict.fromkeys(out))
        self._list_cache[name] = res
        return res

    def resolve_value(self, rhs: Any) -> Any:
        if isinstance(rhs, ListRef):
            if rhs.name not in self.rs.lists:
                raise _Fail(f"undefined list '{rhs.name}'", rhs.pos)
            return ListLit(tuple(StrLit(x, True) for x in self.list_items(rhs.name)), rhs.pos)
        if isinstance(rhs, ListLit):
            items: list[StrLit] = []
            for it in rhs.items:
                if not it.quoted and it.value in self.rs.lists:
                    items.extend(StrLit(x, True) for x in self.list_items(it.value))
                else:
                    items.append(it)
            return ListLit(tuple(items), rhs.pos)
        return rhs

    # -- macros -----------------------------------------------------------------------------------
    def macro_ast(self, name: str, pos: int) -> Node:
        if name not in self.rs.macros:
            raise _Fail(f"undefined macro '{name}' used in filter", pos)
        md = self.rs.macros[name]
        md.used = True
        if name in self._expanding:
            chain = " -> ".join([*self._expanding, name])
            raise _Fail(f"macro cycle: {chain}", pos)
        if name not in self._macro_ast:
            try:
                self._macro_ast[name] = parse_condition(md.condition)
            except ConditionSyntaxError as e:
                self._macro_ast[name] = None
                self.rs.error(
                    "LOAD_ERR_COMPILE_CONDITION",
                    f"syntax error in condition: {e.message}",
                    position(md.cond_location or md.location, md.condition, e.offset, f"macro '{name}'"),
                )
        raw = self._macro_ast[name]
        if raw is None:
            raise _Fail(f"macro '{name}' has errors", pos, "LOAD_ERR_COMPILE_CONDITION")
        if name in self._expanded:
            return self._expanded[name]
        self._expanding.append(name)
        try:
            out = self.expand(raw, in_macro=name)
        finally:
            self._expanding.pop()
        self._expanded[name] = out
        return out

    def expand(self, node: Node, in_macro: str | None = None) -> Node:
        """Expand macros and resolve lists, recursively. Positions inside macros are not kept."""
        if isinstance(node, MacroRef):
            return self.macro_ast(node.name, node.pos if in_macro is None else None)  # type: ignore[arg-type]
        if isinstance(node, And):
            return And(tuple(self.expand(c, in_macro) for c in node.children), node.pos)
        if isinstance(node, Or):
            return Or(tuple(self.expand(c, in_macro) for c in node.children), node.pos)
        if isinstance(node, Not):
            return Not(self.expand(node.child, in_macro), node.pos)
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

    # -- fields -----------------------------------------------------------------------------------
    def check_fields(self, node: Node, source: str) -> None:
        for f in check_fields(node):
            check_field(f, source)
        for n in walk(node):
            if isinstance(n, Check):
                _check_operand(n.lhs, source)
                if n.op in LIST_OPS and not isinstance(n.rhs, ListLit | FieldRef | Transform):
                    raise _Fail(f"operator '{n.op}' needs a list", n.pos)
                try:
                    validate_check(n)
                except EvalError as e:
                    raise _Fail(str(e), n.pos) from None

    # -- exceptions -------------------------------------------------------------------------------
    def exceptions_ast(self, excs: list[ExceptionDef]) -> Node | None:
        alts: list[Node] = []
        for ex in excs:
            if not ex.values:
                continue
            if isinstance(ex.fields, list):
                fields = [_operand(f) for f in ex.fields]
                comps = ex.comps if isinstance(ex.comps, list) else ["="] * len(fields)
                if len(comps) != len(fields):
                    raise _Fail(
                        f"exception '{ex.name}': fields and comps have different lengths",
                        None,
                        "LOAD_ERR_VALIDATE",
                    )
                for tup in ex.values:
                    if not isinstance(tup, list) or len(tup) != len(fields):
                        raise _Fail(
                            f"exception '{ex.name}': each value must be a list of {len(fields)} items",
                            None,
                            "LOAD_ERR_VALIDATE",
                        )
                    checks = [
                        self._exc_check(f, str(c), v, ex.name)
                        for f, c, v in zip(fields, comps, tup, strict=True)
                    ]
                    alts.append(checks[0] if len(checks) == 1 else And(tuple(checks)))
            else:
                f = _operand(str(ex.fields))
                comp = str(ex.comps) if ex.comps else "in"
                if comp in LIST_OPS:
                    alts.append(self._exc_check(f, comp, list(ex.values), ex.name))
                else:
                    alts.extend(self._exc_check(f, comp, v, ex.name) for v in ex.values)
        if not alts:
            return None
        return alts[0] if len(alts) == 1 else Or(tuple(alts))

    def _exc_check(self, f: FieldRef | Transform, comp: str, value: Any, exname: str) -> Check:
        if comp in LIST_OPS:
            if isinstance(value, list):
                items: list[str] = []
                for v in value:
                    s = str(v)
                    items.extend(self.list_items(s) if s in self.rs.lists else [unquote(s)])
                return Check(f, comp, ListLit(tuple(StrLit(x, True) for x in items)))
            s = str(value)
            if s in self.rs.lists:
                return Check(f, comp, ListLit(tuple(StrLit(x, True) for x in self.list_items(s))))
            return Check(f, comp, ListLit((StrLit(unquote(s), True),)))
        if isinstance(value, list):
            raise _Fail(
                f"exception '{exname}': comparison '{comp}' needs a single value, not a list",
                None,
                "LOAD_ERR_VALIDATE",
            )
        return Check(f, comp, StrLit(unquote(str(value)), True))

    # -- rules ------------------------------------------------------------------------------------
    def condition(self, text: str, loc: Location | None, what: str, source: str) -> Node:
        try:
            raw = parse_condition(text)
        except ConditionSyntaxError as e:
            raise _Fail(f"syntax error in condition: {e.message}", e.offset) from None
        ast = self.expand(raw)
        self.check_fields(ast, source)
        return ast

    def rule(self, r: RuleDef) -> None:
        what = f"rule '{r.name}'"
        if r.source not in SOURCES:
            self.rs.warn(
                "LOAD_UNKNOWN_SOURCE",
                f"unknown source '{r.source}', rule skipped (known: {', '.join(SOURCES)})",
                r.location,
            )
            return
        try:
            if r.sequence is not None:
                types: list[EvtTypes] = []
                for i, step in enumerate(r.sequence.steps):
                    try:
                        step.ast = self.condition(step.condition, None, what, r.source)
                    except _Fail as f:
                        f.message = f"sequence step {i + 1}: {f.message}"
                        f.pos = None
                        raise
                    types.append(rule_evttypes(step.ast))
                union = types[0]
                for t in types[1:]:
                    union = union | t
                r.evttypes, r.evttypes_excluded = union.as_sets()
                if r.sequence.by != "process_tree":
                    by = _operand(r.sequence.by)
                    if not isinstance(by, FieldRef):
                        raise _Fail(f"sequence.by must be a field or process_tree, not '{r.sequence.by}'")
                    check_field(by, r.source)
                return
            ast = self.condition(r.condition, r.cond_location, what, r.source)
            exc = self.exceptions_ast(r.exceptions)
            if exc is not None:
                self.check_fields(exc, r.source)
                ast = And((ast, Not(exc)))
        except _Fail as f:
            loc = position(r.cond_location, r.condition, f.pos, what) if f.pos is not None else None
            self.rs.error(f.code, f.message, loc or r.location)
            return
        r.ast = ast
        et = rule_evttypes(ast)
        r.evttypes, r.evttypes_excluded = et.as_sets()
        if r.source == "syscall" and et.is_empty():
            self.rs.warn(
                "LOAD_NEVER_MATCHES", "the condition can never match: no event type satisfies it", r.location
            )
        elif r.source == "syscall" and r.evttypes is None and r.warn_evttypes:
            self.rs.warn(
                "LOAD_NO_EVTTYPE",
                "rule matches all event types (no evt.type restriction): it runs on every event; "
                "add an evt.type condition",
                r.location,
            )
        elif r.source == "k8s_audit" and isinstance(ast, BoolConst) and not ast.value:
            self.rs.warn("LOAD_NEVER_MATCHES", "the condition can never match", r.location)


def _operand(text: str) -> FieldRef | Transform:
    try:
        return parse_operand(text)
    except ConditionSyntaxError as e:
        raise _Fail(f"invalid field '{text}': {e.message}", None, "LOAD_ERR_VALIDATE") from None


def check_field(f: FieldRef, source: str) -> None:
    spec = lookup(f.name)
    if spec is None:
        raise _Fail(f"filter_check called with nonexistent field {f.name}", f.pos)
    if spec.source not in (source, "*"):
        raise _Fail(f"field {f.name} belongs to source '{spec.source}', not '{source}'", f.pos)
    if f.arg is None and spec.arg_required:
        raise _Fail(f"field {f.name} requires an argument, e.g. {f.name}[...]", f.pos)
    if f.arg is not None:
        if spec.arg == ArgKind.NONE:
            raise _Fail(f"field {f.name} does not take an argument", f.pos)
        if spec.arg == ArgKind.INDEX and not f.arg.isdigit():
            raise _Fail(f"field {f.name} needs a numeric index, not '{f.arg}'", f.pos)


def _check_operand(op: object, source: str) -> None:
    if isinstance(op, Transform) and op.name not in ("val",) and not op.args:
        raise _Fail(f"transformer {op.name}() needs an argument", op.pos)
    if isinstance(op, TransformerList):
        for x in op.items:
            _check_operand(x, source)


def resolve(rs: Ruleset) -> Ruleset:
    """Resolve every rule in place; record problems and Falco's load warnings."""
    res = Resolver(rs)
    for r in rs.rules.values():
        res.rule(r)
    # macros and lists nobody used (Falco: LOAD_UNUSED_MACRO / LOAD_UNUSED_LIST)
    for m in rs.macros.values():
        if not m.used:
            try:
                parse_condition(m.condition)
            except ConditionSyntaxError as e:
                rs.error(
                    "LOAD_ERR_COMPILE_CONDITION",
                    f"syntax error in condition: {e.message}",
                    position(m.cond_location or m.location, m.condition, e.offset, f"macro '{m.name}'"),
                )
            rs.warn("LOAD_UNUSED_MACRO", f"macro '{m.name}' is not used by any rule", m.location)
    for ld in rs.lists.values():
        if not ld.used:
            rs.warn("LOAD_UNUSED_LIST", f"list '{ld.name}' is not used by any rule or macro", ld.location)
    return rs
