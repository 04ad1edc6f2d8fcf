"""Falco's `append_output`: text and fields added to the output of the rules a `match` selects.

Falco 0.39's configuration key, kept with its meaning::

    append_output:
      - match: {source: syscall, tags: [container], rule: "Some Rule"}   # all optional, AND-ed
        extra_output: "on CPU %evt.cpu"      # appended to the output text
        extra_fields:                        # added to output_fields only, not to the text
          - proc.aname[2]
          - env: production                  # a static field

A rule matches when every given key matches: the same source, every listed tag among the rule's
tags, the same rule name. Stockade's default adds process ancestry and the image to syscall alerts
(config.py), what a responder needs first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from stockade.rules.output import OutputFormat, compile_output

__all__ = ["AppendOutput", "ExtraFields", "extra_for"]


@dataclass(frozen=True)
class AppendOutput:
    source: str | None = None
    tags: frozenset[str] = frozenset()
    rule: str | None = None
    extra_output: str = ""
    #: field names (rendered per event) in output_fields only
    extra_fields: tuple[str, ...] = ()
    #: constant name -> value pairs in output_fields
    static_fields: tuple[tuple[str, str], ...] = ()

    def matches(self, name: str, source: str, tags: Iterable[str]) -> bool:
        if self.source is not None and self.source != source:
            return False
        if self.rule is not None and self.rule != name:
            return False
        return self.tags <= set(tags)


@dataclass(slots=True)
class ExtraFields:
    """The extra output_fields of one rule: rendered fields, then constants."""

    fmt: OutputFormat | None
    static: dict[str, str] = field(default_factory=dict)

    def add_to(self, fields: dict[str, Any], data: dict[str, Any]) -> None:
        if self.fmt is not None:
            for k, v in self.fmt.render(data)[1].items():
                fields.setdefault(k, v)
        for k, s in self.static.items():
            fields.setdefault(k, s)


def extra_for(
    specs: Sequence[AppendOutput], name: str, source: str, tags: Iterable[str]
) -> tuple[str, ExtraFields | None]:
    """(text to append to the rule's output, its extra fields or None) for one rule.

    Raises OutputFormatError for an unknown field (as a rule's own output would)."""
    texts: list[str] = []
    names: list[str] = []
    static: dict[str, str] = {}
    tag_list = list(tags)
    for s in specs:
        if not s.matches(name, source, tag_list):
            continue
        if s.extra_output:
            texts.append(s.extra_output)
        names.extend(f for f in s.extra_fields if f not in names)
        static.update(s.static_fields)
    text = " ".join(texts)
    if not names and not static:
        return text, None
    fmt = compile_output(" ".join("%" + n for n in names), source) if names else None
    return text, ExtraFields(fmt, static)
