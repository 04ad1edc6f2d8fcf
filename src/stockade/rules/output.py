"""Rule output formats: `%field`, `%field[arg]`, `%transformer(field)`, as Falco formats them.

A format is compiled once per rule into a list of literal parts and value getters. A missing value
prints as `<NA>` in the text and is `null` in `output_fields`, as in Falco.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stockade.model.fields import lookup
from stockade.rules.ast import FieldRef, Transform
from stockade.rules.interp import EvalError, operand_value
from stockade.rules.parser import ConditionSyntaxError, parse_operand
from stockade.rules.printer import print_operand

NA = "<NA>"
_FIELD = re.compile(r"%([a-zA-Z][a-zA-Z0-9_]*(?:\.[a-zA-Z0-9_][a-zA-Z0-9_\-]*)+)(\[[^\]]*\])?")
_TRANSFORM = re.compile(r"%([a-z0-9_]+)\(")
#: what `%container.info` stands for (Falco's default when no container engine overrides it)
CONTAINER_INFO = "container_id=%container.id container_name=%container.name"


class OutputFormatError(Exception):
    """An output format that cannot be compiled, with the offset of the problem."""

    def __init__(self, message: str, offset: int, unknown_field: bool = False) -> None:
        super().__init__(message)
        self.offset = offset
        #: the format names a field that does not exist (Falco's skip-if-unknown-filter skips the rule)
        self.unknown_field = unknown_field


def value_text(v: Any) -> str:
    """A field value as an output prints it (<NA> when missing)."""
    if v is None:
        return NA
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return ",".join(value_text(x) for x in v)
    if isinstance(v, dict):
        import orjson

        return orjson.dumps(v).decode()
    return str(v)


def json_value(v: Any) -> Any:
    """A field value as it goes into an alert's JSON output_fields."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v


@dataclass(slots=True)
class OutputFormat:
    """A compiled output format: literal text and the fields to read."""

    text: str
    parts: list[str | tuple[str, Callable[[dict[str, Any]], Any]]]
    #: parts that are declared list fields: printed "(a,b)", as Falco prints them
    list_parts: frozenset[str] = frozenset()

    @property
    def field_names(self) -> list[str]:
        """The fields the format prints, in order."""
        return [p[0] for p in self.parts if isinstance(p, tuple)]

    def render(self, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The output text for one event, and the fields it printed (output_fields)."""
        out: list[str] = []
        fields: dict[str, Any] = {}
        for p in self.parts:
            if isinstance(p, str):
                out.append(p)
                continue
            name, get = p
            try:
                v = get(data)
            except (EvalError, TypeError, ValueError):
                v = None
            fields[name] = json_value(v)
            if v is not None and name in self.list_parts:
                out.append("(" + ",".join(value_text(x) for x in (v if isinstance(v, list) else [v])) + ")")
            else:
                out.append(value_text(v))
        return "".join(out), fields


def _closing_paren(text: str, start: int) -> int:
    depth = 0
    i = start
    quote = ""
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


_Part = tuple[str, Callable[[dict[str, Any]], Any]]


def compile_output(text: str, source: str = "syscall") -> OutputFormat:
    """Compile an output format; raises OutputFormatError for unknown fields or bad syntax."""
    text = text.replace("%container.info", CONTAINER_INFO)
    parts: list[str | _Part] = []
    list_parts: set[str] = set()
    i = 0
    lit: list[str] = []
    while i < len(text):
        if text[i] != "%":
            lit.append(text[i])
            i += 1
            continue
        if lit:
            parts.append("".join(lit))
            lit = []
        if _TRANSFORM.match(text, i):
            part, i = _transform_part(text, i, source)
        else:
            part, i, is_list = _field_part(text, i, source)
            if is_list:
                list_parts.add(part[0])
        parts.append(part)
    if lit:
        parts.append("".join(lit))
    return OutputFormat(text, parts, frozenset(list_parts))


def _transform_part(text: str, i: int, source: str) -> tuple[_Part, int]:
    """The transformer expression at offset `i` (``%tolower(proc.name)``), and where it ends."""
    m = _TRANSFORM.match(text, i)
    assert m is not None
    end = _closing_paren(text, m.end() - 1)
    if end < 0:
        raise OutputFormatError("unbalanced parenthesis in output", i)
    expr = text[i + 1 : end + 1]
    if end + 1 < len(text) and text[end + 1] == "[":
        close = text.find("]", end)
        if close > 0:
            expr = text[i + 1 : close + 1]
            end = close
    try:
        op = parse_operand(expr)
    except ConditionSyntaxError as e:
        raise OutputFormatError(f"invalid output expression '%{expr}': {e.message}", i) from None
    _check_fields(op, source, i)
    return (print_operand(op), _getter(op)), end + 1


def _field_part(text: str, i: int, source: str) -> tuple[_Part, int, bool]:
    """The field at offset `i` (libsinsp: every '%' starts a field, the longest prefix that is one,
    never plain text), where it ends, and whether it prints as a list."""
    if i == len(text) - 1:
        raise OutputFormatError("invalid formatting syntax: formatting cannot end with a %", i)
    m = _FIELD.match(text, i)
    name = m.group(1) if m else ""
    spec = lookup(name) if m else None
    while m and spec is None and "." in name:
        name = name[:-1]
        spec = lookup(name)
    if m is None or spec is None:
        token = re.match(r"%[^\s%]*", text[i:])
        raise OutputFormatError(
            f"invalid formatting token {token.group(0)[1:] if token else ''}", i, unknown_field=True
        )
    if spec.source not in (source, "*"):
        raise OutputFormatError(f"field '{name}' is not available for source '{source}'", i)
    arg = m.group(2) if name == m.group(1) else None
    a = arg[1:-1] if arg else None
    key = name if a is None else f"{name}[{a}]"
    # the plugins' list fields; syscall fields that are lists only for matching (proc.aname) print plainly
    is_list = spec.is_list and spec.source == "k8s_audit"
    end = m.end() if name == m.group(1) else i + 1 + len(name)
    return (key, _getter(FieldRef(name, a))), end, is_list


def _check_fields(op: Any, source: str, offset: int) -> None:
    from stockade.rules.ast import operand_fields

    for f in operand_fields(op):
        spec = lookup(f.name)
        if spec is None:
            raise OutputFormatError(f"invalid formatting token {f.name}", offset, unknown_field=True)
        if spec.source not in (source, "*"):
            raise OutputFormatError(f"field '{f.name}' is not available for source '{source}'", offset)


def _getter(op: FieldRef | Transform) -> Callable[[dict[str, Any]], Any]:
    if isinstance(op, FieldRef):
        spec = lookup(op.name)
        if spec is not None:
            return spec.extractor(op.arg)
    return lambda d: operand_value(op, d)
