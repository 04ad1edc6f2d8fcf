"""Falco's `append_output`: text and fields added to the output of the rules a `match` selects.

Falco 0.39's configuration key, kept with its meaning::

    append_output:
      - match: {source: syscall, tags: [container], rule: "Some Rule"}   # all optional, AND-ed
        extra_output: "on CPU %evt.cpu"      # appended to the output text
        extra_fields:                        # added to output_fields only, not to the text
          - proc.aname[2]
          - env: production                  # a static field

A rule matches when every given key matches: the same source, every listed tag among the rule's
tags, the same rule name.

Stockade adds ``compact: true`` to an entry: its ``extra_output`` is then a list of words (usually
``label=%field``), and a word is left out of the text when all its fields are missing or empty (no
``<NA>`` clutter on a host process or outside Kubernetes) or when the rule's own output already shows
them (no ``container_id=`` twice). Its fields are in ``output_fields`` either way (``null`` when
missing), as Falco puts them there.

Stockade's default (config.py) is Falco's own default ``append_output`` for syscall rules, compact:
``container_id container_name container_image_repository container_image_tag k8s_pod_name
k8s_ns_name``, so every text alert line names the container and the pod when they are known;
plus process ancestry and the image in ``output_fields``, what a responder needs first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from stockade.rules.output import OutputFormat, compile_output

__all__ = ["AppendOutput", "ExtraFields", "extra_for"]


@dataclass(frozen=True)
class AppendOutput:
    """One append_output entry: the rules it selects (source, tags, rule) and what it adds to their output."""

    source: str | None = None
    tags: frozenset[str] = frozenset()
    rule: str | None = None
    extra_output: str = ""
    #: leave out of extra_output the words whose fields are missing or already in the rule's output
    compact: bool = False
    #: field names (rendered per event) in output_fields only
    extra_fields: tuple[str, ...] = ()
    #: constant name -> value pairs in output_fields
    static_fields: tuple[tuple[str, str], ...] = ()

    def matches(self, name: str, source: str, tags: Iterable[str]) -> bool:
        """Whether this entry selects the rule `name` of `source` with `tags`."""
        if self.source is not None and self.source != source:
            return False
        if self.rule is not None and self.rule != name:
            return False
        return self.tags <= set(tags)


@dataclass(slots=True)
class ExtraFields:
    """What append_output adds to one rule's alerts beyond its (extended) output format: compact
    words of text, rendered fields, constants."""

    fmt: OutputFormat | None
    static: dict[str, str] = field(default_factory=dict)
    #: the words of compact extra_output, each compiled on its own
    words: tuple[OutputFormat, ...] = ()

    def add_to(self, fields: dict[str, Any], data: dict[str, Any], text: str = "") -> str:
        """Add the extra fields to `fields` (the rule's own) and return `text` with the compact words."""
        for w in self.words:
            names = w.field_names
            if names and all(n in fields for n in names):
                continue  # the rule's output already shows them
            wtext, wfields = w.render(data)
            for k, v in wfields.items():
                fields.setdefault(k, v)
            if not names or any(v not in (None, "") for v in wfields.values()):
                text = f"{text} {wtext}" if text else wtext
        if self.fmt is not None:
            for k, v in self.fmt.render(data)[1].items():
                fields.setdefault(k, v)
        for k, s in self.static.items():
            fields.setdefault(k, s)
        return text


def extra_for(
    specs: Sequence[AppendOutput], name: str, source: str, tags: Iterable[str]
) -> tuple[str, ExtraFields | None]:
    """(text to append to the rule's output format, what to add at alert time or None) for one rule.

    Raises OutputFormatError for an unknown field (as a rule's own output would)."""
    texts: list[str] = []
    words: list[OutputFormat] = []
    names: list[str] = []
    static: dict[str, str] = {}
    tag_list = list(tags)
    for s in specs:
        if not s.matches(name, source, tag_list):
            continue
        if s.extra_output and s.compact:
            words.extend(compile_output(w, source) for w in s.extra_output.split())
        elif s.extra_output:
            texts.append(s.extra_output)
        names.extend(f for f in s.extra_fields if f not in names)
        static.update(s.static_fields)
    text = " ".join(texts)
    if not names and not static and not words:
        return text, None
    fmt = compile_output(" ".join("%" + n for n in names), source) if names else None
    return text, ExtraFields(fmt, static, tuple(words))
