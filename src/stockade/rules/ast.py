"""The condition AST (Falco/libsinsp filter language).

Every node carries `pos`, the offset of its first character in the condition text; it takes no
part in equality, so two parses of the same text in different places compare equal.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

UNARY_OPS = ("exists",)
NUM_OPS = ("<=", "<", ">=", ">")
STR_OPS = (
    "==",
    "=",
    "!=",
    "bcontains",
    "bstartswith",
    "contains",
    "endswith",
    "glob",
    "icontains",
    "iglob",
    "startswith",
    "regex",
)
LIST_OPS = ("in", "intersects", "pmatch")
MODIFIERS = ("oneof", "anyof", "allof")
TRANSFORMERS = ("tolower", "toupper", "b64", "basename", "len", "join", "concat", "getopt", "storage")


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A field, with its argument: ``proc.aname[2]``."""

    name: str
    arg: str | None = None
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Transform:
    """tolower(x), join(sep, (a, b)), concat(a, b), getopt(args, "nt:")[t], and val(x) (name 'val')."""

    name: str
    args: tuple[Operand, ...]
    arg: str | None = None  # selector, e.g. getopt(...)[t]
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class StrLit:
    """A string operand; `quoted` when the condition wrote it in quotes."""

    value: str
    quoted: bool = False
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class ListLit:
    """A literal list operand: ``(a, b)``."""

    items: tuple[StrLit, ...]
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class ListRef:
    """A bare identifier where a list is expected (`proc.name in shell_binaries`)."""

    name: str
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class TransformerList:
    """A parenthesised list inside transformer arguments: join(",", (proc.name, fd.name))."""

    items: tuple[Operand, ...]
    pos: int = field(default=0, compare=False)


Operand = FieldRef | Transform | StrLit | TransformerList
Value = StrLit | ListLit | ListRef | FieldRef | Transform | None


@dataclass(frozen=True, slots=True)
class Check:
    """One comparison: a field (or transformer) `op` a value."""

    lhs: FieldRef | Transform
    op: str
    rhs: Value = None
    modifier: str | None = None
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class MacroRef:
    """A macro named in a condition (replaced by its condition when resolved)."""

    name: str
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class And:
    """Every child holds."""

    children: tuple[Node, ...]
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Or:
    """Some child holds."""

    children: tuple[Node, ...]
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Not:
    """The child does not hold."""

    child: Node
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class BoolConst:
    """Internal: the result of constant folding (e.g. an empty `in ()` list)."""

    value: bool
    pos: int = field(default=0, compare=False)


Node = And | Or | Not | Check | MacroRef | BoolConst


def walk(node: Node) -> Iterator[Node]:
    """Yield every boolean node, depth first."""
    yield node
    if isinstance(node, And | Or):
        for c in node.children:
            yield from walk(c)
    elif isinstance(node, Not):
        yield from walk(node.child)


def operand_fields(op: object) -> Iterator[FieldRef]:
    """Yield every FieldRef inside an operand or value."""
    if isinstance(op, FieldRef):
        yield op
    elif isinstance(op, Transform):
        for a in op.args:
            yield from operand_fields(a)
    elif isinstance(op, TransformerList):
        for a in op.items:
            yield from operand_fields(a)


def check_fields(node: Node) -> Iterator[FieldRef]:
    """Yield every FieldRef a condition reads."""
    for n in walk(node):
        if isinstance(n, Check):
            yield from operand_fields(n.lhs)
            yield from operand_fields(n.rhs)
