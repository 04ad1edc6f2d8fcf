"""The reference interpreter: Falco's condition semantics, written plainly.

It is the definition the compiled evaluator is tested against (tests/rules/test_compiler_props.py)
and what compiled code calls for the rarer operators. Semantics (libsinsp's):

* A missing field (extractor returns None) makes every comparison false; `exists` is false.
* Ancestor fields without an index (proc.aname, ...) and fields whose value is several values
  (fd.ip, fd.port, fd.net) match if any value matches.
* Declared list fields (ka.user.groups, ...): `in` is true if every value is in the set,
  `intersects` if any is; other operators match if any value matches.
* Numeric fields compare as numbers, boolean fields as booleans, IPNET fields by CIDR membership.
* `regex` is an RE2 full match; `glob` is fnmatch(3) without FNM_PATHNAME (`*` crosses `/`).
* Modifiers: anyof (any item), allof (every item), oneof (exactly one item).
"""

from __future__ import annotations

import base64
import ipaddress
import operator
import posixpath
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import re2

from stockade.model.fields import FieldType, lookup
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
    TransformerList,
)

ANCESTOR_FIELDS = frozenset({"proc.aname", "proc.apid", "proc.aexe", "proc.aexepath", "proc.acmdline"})
_MISSING = object()


class EvalError(Exception):
    """A condition cannot be evaluated as written (an invalid regex, a bad number)."""


# ---------------------------------------------------------------------------------------------
# values
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def extractor(name: str, arg: str | None) -> Callable[[dict[str, Any]], Any]:
    """How to read field `name` (with `arg`) from an event; an unknown field is read as its key."""
    spec = lookup(name)
    if spec is None:
        key = name if arg is None else f"{name}[{arg}]"
        return lambda e: e.get(key)
    return spec.extractor(arg)


def operand_value(op: Any, data: dict[str, Any]) -> Any:
    """The value of an operand (field, string, list, transformer) on `data`."""
    if isinstance(op, FieldRef):
        return extractor(op.name, op.arg)(data)
    if isinstance(op, StrLit):
        return op.value
    if isinstance(op, TransformerList):
        return [operand_value(x, data) for x in op.items]
    if isinstance(op, Transform):
        return apply_transform(op, data)
    raise EvalError(f"not an operand: {op!r}")


def _map(fn: Callable[[Any], Any], v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, list):
        return [fn(x) for x in v]
    return fn(v)


def to_str(v: Any) -> str:
    """A value as the text Falco compares strings with."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, bytes):
        return v.decode("utf-8", "surrogateescape")
    return str(v)


def _b64(v: Any) -> Any:
    try:
        return base64.b64decode(to_str(v), validate=True).decode("utf-8", "surrogateescape")
    except ValueError:
        return None


def getopt_value(args: str, optstring: str, sel: str | None) -> Any:
    """Parse `args` like getopt(3) with `optstring`; return the value of option `sel`
    ("" for a flag without value) or None if absent."""
    takes = {}
    i = 0
    while i < len(optstring):
        c = optstring[i]
        if c == ":":
            i += 1
            continue
        takes[c] = i + 1 < len(optstring) and optstring[i + 1] == ":"
        i += 1
    toks = args.split()
    found: dict[str, str] = {}
    j = 0
    while j < len(toks):
        t = toks[j]
        if t == "--" or not t.startswith("-") or t == "-":
            j += 1
            continue
        k = 1
        while k < len(t):
            c = t[k]
            if c not in takes:
                k += 1
                continue
            if takes[c]:
                if k + 1 < len(t):
                    found[c] = t[k + 1 :]
                elif j + 1 < len(toks):
                    j += 1
                    found[c] = toks[j]
                else:
                    found[c] = ""
                break
            found[c] = ""
            k += 1
        j += 1
    if sel is None:
        return " ".join(f"-{k} {v}".strip() for k, v in found.items()) or None
    return found.get(sel)


def _join(vals: list[Any]) -> str:
    """join(sep, a, b, ...): the values that are present (lists flattened) joined by `sep`."""
    sep = to_str(vals[0]) if vals else ""
    parts: list[str] = []
    for v in vals[1:]:
        if isinstance(v, list):
            for x in v:
                if isinstance(x, list):
                    parts.extend(to_str(y) for y in x if y is not None)
                elif x is not None:
                    parts.append(to_str(x))
        elif v is not None:
            parts.append(to_str(v))
    return sep.join(parts)


def _concat(vals: list[Any]) -> str | None:
    """concat(a, b, ...): the values' text end to end (lists flattened); None if one is missing."""
    flat: list[Any] = []
    for v in vals:
        flat.extend(v if isinstance(v, list) else [v])
    if any(v is None for v in flat):
        return None
    return "".join(to_str(v) for v in flat)


def _getopt(vals: list[Any], arg: str | None) -> Any:
    """getopt(args, optstring)[opt]: the option's value in a command line."""
    src, opts = ([*vals, None, None])[:2]
    if src is None:
        return None
    return getopt_value(to_str(src), to_str(opts or ""), arg)


def _length(v: Any) -> int:
    return len(v) if isinstance(v, list | str | bytes) else len(to_str(v))


#: transformers of one value, applied to each item of a list value
_MAPPED: dict[str, Callable[[Any], Any]] = {
    "tolower": lambda x: to_str(x).lower(),
    "toupper": lambda x: to_str(x).upper(),
    "basename": lambda x: posixpath.basename(to_str(x)),
    "b64": lambda x: _b64(x),
}


def apply_transform(t: Transform, data: dict[str, Any]) -> Any:
    """The value of a transformer (tolower, basename, join, ...) applied on `data`."""
    name = t.name
    if name == "val":
        return operand_value(t.args[0], data)
    if name in ("join", "concat", "getopt"):
        vals = [operand_value(a, data) for a in t.args]
        if name == "join":
            return _join(vals)
        return _concat(vals) if name == "concat" else _getopt(vals, t.arg)
    v = operand_value(t.args[0], data) if t.args else None
    if v is None:
        return None
    fn = _MAPPED.get(name)
    if fn is not None:
        return _map(fn, v)
    if name == "len":
        return _length(v)
    raise EvalError(f"unsupported transformer '{name}'")


# ---------------------------------------------------------------------------------------------
# literal conversion by field type
# ---------------------------------------------------------------------------------------------


def parse_number(s: Any) -> int | float | None:
    """A number from an int, float, bool or numeric text; None if it is not one."""
    if isinstance(s, bool):
        return int(s)
    if isinstance(s, int | float):
        return s
    if not isinstance(s, str):
        return None
    t = s.strip()
    try:
        if t[:2].lower() == "0x":
            return int(t, 16)
        return int(t)
    except ValueError:
        try:
            return float(t)
        except ValueError:
            return None


def parse_bool(s: Any) -> bool | None:
    """A boolean from a bool, an int or true/false text; None if it is not one."""
    if isinstance(s, bool):
        return s
    if isinstance(s, int):
        return s != 0
    if isinstance(s, str):
        t = s.strip().lower()
        if t == "true":
            return True
        if t == "false":
            return False
        n = parse_number(t)
        return None if n is None else n != 0
    return None


@lru_cache(maxsize=4096)
def parse_net(s: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    """The network `s` names (an address or CIDR); None if it is not one."""
    try:
        return ipaddress.ip_network(s.strip(), strict=False)
    except ValueError:
        return None


def in_net(v: Any, nets: list[Any]) -> bool:
    """Whether the address `v` is in one of `nets`."""
    try:
        ip = ipaddress.ip_address(to_str(v).strip("[]"))
    except ValueError:
        return False
    return any(n is not None and ip.version == n.version and ip in n for n in nets)


@lru_cache(maxsize=4096)
def glob_bracket_end(pattern: str, i: int) -> int:
    """Where the bracket expression opening at `pattern[i]` ('[') closes (its ']'), as fnmatch
    reads it (a ']' first in the set is a member); -1 if it does not close (the '[' is a literal)."""
    n = len(pattern)
    j = i + 1
    if j < n and pattern[j] in "!^":
        j += 1
    if j < n and pattern[j] == "]":
        j += 1
    while j < n and pattern[j] != "]":
        j += 1
    return j if j < n else -1


def glob_regex(pattern: str, icase: bool) -> re.Pattern[str]:
    """fnmatch(3) without FNM_PATHNAME/FNM_PERIOD: `*` and `?` match any character, `/` included."""
    out = []
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            j = glob_bracket_end(pattern, i)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : j]
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("(?s:" + "".join(out) + r")\Z", re.IGNORECASE if icase else 0)


@lru_cache(maxsize=4096)
def regex(pattern: str) -> Any:
    """`pattern` compiled as RE2; an EvalError if it is not a valid one."""
    try:
        return re2.compile(pattern)
    except re2.error as e:
        raise EvalError(f"invalid regular expression '{pattern}': {e}") from None


def hex_bytes(s: str) -> bytes:
    """The bytes a hex string stands for; an EvalError if it is not one."""
    try:
        return bytes.fromhex(s)
    except ValueError:
        raise EvalError(f"'{s}' is not a hex byte string") from None


def to_bytes(v: Any) -> bytes:
    """A value as bytes (text as UTF-8)."""
    if isinstance(v, bytes):
        return v
    return to_str(v).encode("utf-8", "surrogateescape")


def path_prefix_match(v: str, prefixes: tuple[str, ...]) -> bool:
    """Whether path `v` is one of `prefixes` or below one (pmatch)."""
    for p in prefixes:
        if v == p:
            return True
        q = p if p.endswith("/") else p + "/"
        if v.startswith(q) or v + "/" == q:
            return True
    return False


# ---------------------------------------------------------------------------------------------
# comparisons
# ---------------------------------------------------------------------------------------------


def _kind(lhs: Any) -> FieldType:
    """The value type a left-hand side yields (transformers yield strings, len a number)."""
    if isinstance(lhs, FieldRef):
        spec = lookup(lhs.name)
        return spec.type if spec is not None else FieldType.STRING
    if isinstance(lhs, Transform):
        if lhs.name == "len":
            return FieldType.UINT
        if lhs.name == "val" and lhs.args:
            return _kind(lhs.args[0])
    return FieldType.STRING


#: the ordering operators
_ORDER: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
#: operators that compare values as the field's type does (the others compare text)
_VALUE_OPS = frozenset({"=", "==", "!=", *_ORDER})
#: the text operators: (left text, right text) -> holds
_TEXT_OPS: dict[str, Callable[[str, str], bool]] = {
    "contains": lambda s, r: r in s,
    "icontains": lambda s, r: r.lower() in s.lower(),
    "startswith": lambda s, r: s.startswith(r),
    "endswith": lambda s, r: s.endswith(r),
    "glob": lambda s, r: glob_regex(r, False).match(s) is not None,
    "iglob": lambda s, r: glob_regex(r, True).match(s) is not None,
    "regex": lambda s, r: regex(r).fullmatch(s) is not None,
    "pmatch": lambda s, r: path_prefix_match(s, (r,)),
}


def _typed_sides(kind: FieldType, op: str, v: Any, rhs: Any) -> tuple[Any, Any] | None:
    """Both sides as a field of `kind` compares them; None when one is not of that type. Text
    ordered (<, >...) compares as numbers when both sides are numbers."""
    a: Any
    b: Any
    if kind.numeric:
        a, b = parse_number(v), parse_number(rhs)
    elif kind == FieldType.BOOL:
        a, b = parse_bool(v), parse_bool(rhs)
    else:
        a, b = to_str(v), to_str(rhs)
        if op in _ORDER:
            na, nb = parse_number(a), parse_number(b)
            if na is not None and nb is not None:
                return na, nb
    return None if a is None or b is None else (a, b)


def _compare_values(kind: FieldType, op: str, v: Any, rhs: Any) -> bool:
    """=, ==, !=, <, <=, >, >= as the field's type compares (networks: membership)."""
    if kind == FieldType.IPNET and op in ("=", "==", "!="):
        net = parse_net(to_str(rhs))
        if net is None:
            return False
        inside = in_net(v, [net])
        return inside if op != "!=" else not inside
    sides = _typed_sides(kind, op, v, rhs)
    if sides is None:
        return False
    a, b = sides
    if op in ("=", "=="):
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    try:
        return bool(_ORDER[op](a, b))
    except TypeError:
        return False


def compare_one(kind: FieldType, op: str, v: Any, rhs: Any) -> bool:
    """Compare one left value `v` (not None) with one right value (a string, or a value from val())."""
    if op in _VALUE_OPS:
        return _compare_values(kind, op, v, rhs)
    text = _TEXT_OPS.get(op)
    if text is not None:
        return text(to_str(v), to_str(rhs))
    if op == "bcontains":
        return hex_bytes(to_str(rhs)) in to_bytes(v)
    if op == "bstartswith":
        return to_bytes(v).startswith(hex_bytes(to_str(rhs)))
    if op in ("in", "intersects"):
        return compare_one(kind, "=", v, rhs)
    raise EvalError(f"unknown operator '{op}'")


def _in_set(kind: FieldType, v: Any, items: list[str]) -> bool:
    if kind == FieldType.IPNET:
        return in_net(v, [parse_net(i) for i in items])
    return any(compare_one(kind, "=", v, i) for i in items)


def eval_check(node: Check, data: dict[str, Any]) -> bool:
    """Whether one comparison holds on `data` (Falco's semantics, missing values included)."""
    lhs, op = node.lhs, node.op
    v = operand_value(lhs, data)
    if op == "exists":
        return v is not None and v != []
    if v is None or v == []:
        return False
    kind = _kind(lhs)
    is_decl_list = (
        isinstance(lhs, FieldRef)
        and lhs.arg is None
        and lhs.name not in ANCESTOR_FIELDS
        and (spec := lookup(lhs.name)) is not None
        and spec.is_list
    )
    values = v if isinstance(v, list) else [v]
    values = [x for x in values if x is not None]
    if not values:
        return False
    rhs = node.rhs
    if isinstance(rhs, FieldRef | Transform):
        r = operand_value(rhs, data)
        if r is None:
            return False
        rlist = [to_str(x) for x in r] if isinstance(r, list) else [r]
        if op in ("in", "intersects", "pmatch"):
            items = [to_str(x) for x in rlist]
            return _list_op(kind, op, values, items, is_decl_list)
        return any(compare_one(kind, op, x, rlist[0]) for x in values)
    if op in ("in", "intersects", "pmatch"):
        assert isinstance(rhs, ListLit)
        items = [i.value for i in rhs.items]
        return _list_op(kind, op, values, items, is_decl_list)
    if node.modifier is not None:
        assert isinstance(rhs, ListLit)
        items = [i.value for i in rhs.items]

        def one(x: Any) -> bool:
            hits = sum(1 for i in items if compare_one(kind, op, x, i))
            if node.modifier == "anyof":
                return hits > 0
            if node.modifier == "allof":
                return hits == len(items)
            return hits == 1

        return any(one(x) for x in values)
    assert isinstance(rhs, StrLit)
    return any(compare_one(kind, op, x, rhs.value) for x in values)


def _list_op(kind: FieldType, op: str, values: list[Any], items: list[str], decl_list: bool) -> bool:
    if op == "pmatch":
        prefixes = tuple(items)
        return any(path_prefix_match(to_str(x), prefixes) for x in values)
    if op == "in" and decl_list:
        return all(_in_set(kind, x, items) for x in values)
    return any(_in_set(kind, x, items) for x in values)


def evaluate(node: Node, data: dict[str, Any]) -> bool:
    """Evaluate a resolved condition (no macros left) on an event's data."""
    if isinstance(node, Check):
        return eval_check(node, data)
    if isinstance(node, And):
        return all(evaluate(c, data) for c in node.children)
    if isinstance(node, Or):
        return any(evaluate(c, data) for c in node.children)
    if isinstance(node, Not):
        return not evaluate(node.child, data)
    if isinstance(node, BoolConst):
        return node.value
    raise EvalError(f"cannot evaluate {type(node).__name__} (unresolved macro?)")


def validate_check(node: Check) -> None:
    """Raise EvalError if a literal cannot work with its operator (a bad regex, hex or number)."""
    rhs = node.rhs
    items: list[str] = []
    if isinstance(rhs, StrLit):
        items = [rhs.value]
    elif isinstance(rhs, ListLit):
        items = [i.value for i in rhs.items]
    kind = _kind(node.lhs)
    for it in items:
        if node.op == "regex":
            regex(it)
        elif node.op in ("bcontains", "bstartswith"):
            hex_bytes(it)
        elif (
            kind.numeric
            and node.op in ("=", "==", "!=", "<", "<=", ">", ">=", "in", "intersects")
            and parse_number(it) is None
        ):
            name = node.lhs.name if isinstance(node.lhs, FieldRef) else "the value"
            raise EvalError(f"'{it}' is not a number ({name} is numeric)")
