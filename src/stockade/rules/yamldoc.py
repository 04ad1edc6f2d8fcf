"""Read rules YAML as Falco's reader (yaml-cpp) sees it: every scalar is text, tags are ignored.

Falco decodes each value itself (a string, a bool, an integer) from the scalar's text, whatever YAML
1.1 would have made of it: `desc: != after evt.type` is the text `after evt.type` with the tag `!=`,
`yes` or `0x1F` stay text until a key asks for a bool or a number, `<<` is not a merge key. PyYAML's
constructors would refuse or reinterpret these, so documents are built here from libyaml's events:

- a scalar is a `str`; a plain `~`, `null`, `Null`, `NULL` or empty scalar without a tag is `None`
  (yaml-cpp's null), a quoted `""` is the empty string;
- a sequence is a :class:`YSeq` (a list), a mapping a :class:`YMap` (a dict keeping the first of
  duplicate keys, as yaml-cpp's lookup does); both record where each item or value starts;
- aliases share their anchor's value; every document of a multi-document stream is returned.

This is linear in the size of the text and keeps one position tuple per value beyond the values.
"""

from __future__ import annotations

from typing import Any

import yaml

_NULLS = frozenset(("", "~", "null", "Null", "NULL"))
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YSeq(list[Any]):
    """A YAML sequence with the line and column it starts at (and each item's)."""

    __slots__ = ("column", "line", "marks")

    def __init__(self, line: int, column: int) -> None:
        super().__init__()
        self.line = line  # 1-based
        self.column = column
        #: (line, column, style) of each item, as YMap.marks has them for values
        self.marks: list[tuple[int, int, str]] = []


class YMap(dict[str, Any]):
    """A YAML mapping with the line and column it starts at (and each key's)."""

    __slots__ = ("column", "line", "marks")

    def __init__(self, line: int, column: int) -> None:
        super().__init__()
        self.line = line
        self.column = column
        #: key -> (line, column, style) of its value; style is '', '"', "'", '|' or '>'
        self.marks: dict[str, tuple[int, int, str]] = {}


class YamlError(Exception):
    """A YAML document that does not parse, with where."""

    def __init__(self, message: str, line: int | None, column: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column


def load_all(text: str) -> list[Any]:
    """Every document of `text` (None for an empty one); raises YamlError with its position."""
    try:
        return _build(yaml.parse(text, Loader=_Loader))
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem or e.context or str(e)
        if mark is None:
            raise YamlError(problem, None, None) from None
        raise YamlError(problem, mark.line + 1, mark.column + 1) from None
    except yaml.YAMLError as e:
        raise YamlError(str(e), None, None) from None


class _Builder:
    """PyYAML's events to documents of :class:`YMap` / :class:`YSeq` with their positions."""

    def __init__(self) -> None:
        self.docs: list[Any] = []
        self.anchors: dict[str, Any] = {}
        # stack of open containers; for a mapping, the pending key (or _NOKEY) sits beside it
        self.stack: list[Any] = []
        self.keys: list[Any] = []
        self.root: list[Any] = []

    def add(self, value: Any, mark: Any, style: str) -> None:
        """Put `value` where the document is: the root, a sequence's next item, a mapping's key or value."""
        if not self.stack:
            self.root.append(value)
            return
        top = self.stack[-1]
        if isinstance(top, YMap):
            key = self.keys[-1]
            if key is _NOKEY:
                self.keys[-1] = _key_text(value)
                return
            self.keys[-1] = _NOKEY
            if key not in top:  # yaml-cpp's lookup finds the first of duplicate keys
                top[key] = value
                top.marks[key] = (mark.line + 1, mark.column + 1, style)
        else:
            top.append(value)
            top.marks.append((mark.line + 1, mark.column + 1, style))

    def scalar(self, ev: Any) -> None:
        """A scalar: an unquoted null word is None."""
        style = ev.style or ""
        value = None if (not style and ev.tag is None and ev.value in _NULLS) else ev.value
        if ev.anchor is not None:
            self.anchors[ev.anchor] = value
        self.add(value, ev.start_mark, style)

    def start(self, ev: Any, container: YSeq | YMap, key: Any) -> None:
        """A sequence or mapping begins."""
        if ev.anchor is not None:
            self.anchors[ev.anchor] = container
        self.add(container, ev.start_mark, "")
        self.stack.append(container)
        self.keys.append(key)

    def end(self, _ev: Any) -> None:
        """A sequence or mapping ends."""
        self.stack.pop()
        self.keys.pop()

    def alias(self, ev: Any) -> None:
        """``*anchor``: the anchored value again."""
        if ev.anchor not in self.anchors:
            raise YamlError(f"unknown anchor '{ev.anchor}'", ev.start_mark.line + 1, ev.start_mark.column + 1)
        self.add(self.anchors[ev.anchor], ev.start_mark, "")

    def document_start(self, _ev: Any) -> None:
        """A document begins: anchors are per document."""
        self.root = []
        self.anchors = {}

    def document_end(self, _ev: Any) -> None:
        """A document ends."""
        self.docs.append(self.root[0] if self.root else None)


def _build(events: Any) -> list[Any]:
    b = _Builder()
    handlers: dict[type, Any] = {
        yaml.ScalarEvent: b.scalar,
        yaml.SequenceStartEvent: lambda ev: b.start(
            ev, YSeq(ev.start_mark.line + 1, ev.start_mark.column + 1), None
        ),
        yaml.MappingStartEvent: lambda ev: b.start(
            ev, YMap(ev.start_mark.line + 1, ev.start_mark.column + 1), _NOKEY
        ),
        yaml.SequenceEndEvent: b.end,
        yaml.MappingEndEvent: b.end,
        yaml.AliasEvent: b.alias,
        yaml.DocumentStartEvent: b.document_start,
        yaml.DocumentEndEvent: b.document_end,
    }
    for ev in events:
        handle = handlers.get(type(ev))
        if handle is not None:
            handle(ev)
    return b.docs


class _NoKey:
    __slots__ = ()


_NOKEY: Any = _NoKey()


def _key_text(key: Any) -> str:
    if key is None:
        return "~"
    if isinstance(key, str):
        return key
    return str(list(key) if isinstance(key, list) else dict(key))


_TRUE = frozenset(("y", "yes", "true", "on"))
_FALSE = frozenset(("n", "no", "false", "off"))


def as_bool(value: Any) -> bool | None:
    """yaml-cpp's bool: y/yes/true/on and n/no/false/off, all lower, all upper or capitalized."""
    if not isinstance(value, str):
        return None
    if not (value.islower() or value.isupper() or (value[:1].isupper() and value[1:].islower())):
        return None
    low = value.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    return None


def as_uint(value: Any) -> int | None:
    """yaml-cpp's unsigned integer: decimal, 0x hexadecimal or 0 octal, the whole text."""
    if not isinstance(value, str) or not value or value[0] == "-":
        return None
    v = value.strip()
    try:
        if v[:2] in ("0x", "0X"):
            return int(v[2:], 16)
        if len(v) > 1 and v[0] == "0":
            return int(v[1:], 8)
        return int(v, 10) if v.isdigit() else None
    except ValueError:
        return None
