"""The one path glob dialect of Stockade: a profile's file entries and a WorkloadPolicy's paths.

A glob is read character by character, a ``/`` separating components:

* ``*`` matches any characters but ``/`` (within one component);
* ``?`` matches one character but ``/``;
* ``[abc]``, ``[a-z]``, ``[!abc]`` match one character of a set, as :mod:`fnmatch` reads a set
  (a ``]`` first in the set is a member; a set never matches ``/``); a ``[`` whose ``]`` is not in
  the same component is itself;
* ``**`` as a whole component matches any number of components: ``/a/**/b`` matches ``/a/b``,
  ``/a/x/b``, ``/a/x/y/b``; a trailing ``/a/**`` matches everything below ``/a`` (not ``/a``
  itself); a leading ``**/x`` (a relative glob: the credential patterns of
  :mod:`stockade.behavior.generalise`) matches ``x`` at any depth, on an absolute path the same as
  ``/**/x``;
* ``**`` inside a component matches any characters, ``/`` included (WorkloadPolicy files refuse
  it: :func:`stockade.policy.globs.check_path_glob`);
* every other character is itself.

A path that has ``*``, ``?`` or ``[`` in it is written as a glob with each of them as a set of one
character (:func:`escape`: ``/usr/bin/[`` is ``/usr/bin/[[]``); :func:`literal` reads such a glob
back. :func:`glob_match` is the matcher, :func:`regex` its regular expression (no capturing
group, so several can be joined), :func:`intersects` tells whether two globs have a path in common.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "SPECIAL",
    "bracket_end",
    "compiled",
    "escape",
    "glob_match",
    "has_special",
    "intersects",
    "is_pattern",
    "literal",
    "regex",
]

#: the characters that make a text a glob rather than one path
SPECIAL: Final = "*?["

#: (kind, text): ("c", char), ("*", ""), ("?", ""), ("[", "[set]"), ("**", ""), ("**/", "")
_Token = tuple[str, str]


def has_special(text: str) -> bool:
    """Whether `text` has a character of :data:`SPECIAL` (it is then read as a glob)."""
    return any(c in text for c in SPECIAL)


def escape(path: str) -> str:
    """The glob that matches exactly `path` (its ``*``, ``?`` and ``[`` each as a one-character set)."""
    if not has_special(path):
        return path
    return "".join(f"[{c}]" if c in SPECIAL else c for c in path)


def bracket_end(pattern: str, i: int) -> int:
    """Where the set opening at ``pattern[i]`` (a ``[``) closes (its ``]``), as :mod:`fnmatch`
    reads it, within its component; -1 when it does not close there (the ``[`` is itself)."""
    n = len(pattern)
    j = i + 1
    if j < n and pattern[j] == "!":
        j += 1
    if j < n and pattern[j] == "]":
        j += 1
    while j < n and pattern[j] not in "]/":
        j += 1
    return j if j < n and pattern[j] == "]" else -1


@functools.lru_cache(maxsize=4096)
def _tokens(pattern: str) -> tuple[_Token, ...]:
    out: list[_Token] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "[" and (end := bracket_end(pattern, i)) >= 0:
            out.append(("[", pattern[i : end + 1]))
            i = end + 1
        elif pattern.startswith("**", i):
            whole = (i == 0 or pattern[i - 1] == "/") and i + 2 < n and pattern[i + 2] == "/"
            out.append(("**/", "") if whole else ("**", ""))  # "**/": components, each with its "/"
            i += 3 if whole else 2
        elif c in "*?":
            out.append((c, ""))
            i += 1
        else:
            out.append(("c", c))
            i += 1
    return tuple(out)


def literal(pattern: str) -> str | None:
    """The one path `pattern` matches when it has no wildcard (its one-character sets read back:
    ``/usr/bin/[[]`` is ``/usr/bin/[``); None when it may match several."""
    if not has_special(pattern):
        return pattern
    out: list[str] = []
    for kind, text in _tokens(pattern):
        if kind == "c":
            out.append(text)
        elif kind == "[" and len(text) == 3 and text[1] != "!":
            out.append(text[1])
        else:
            return None
    return "".join(out)


def is_pattern(pattern: str) -> bool:
    """Whether `pattern` may match more than one path (else it names one file: :func:`literal`)."""
    return literal(pattern) is None


@functools.lru_cache(maxsize=1024)
def _set_regex(text: str) -> str:
    """A set (``[...]``, as :func:`bracket_end` delimits it) as fnmatch translates it, never ``/``."""
    translated = fnmatch.translate(text)  # "(?s:[...])\Z"
    if not (translated.startswith("(?s:") and translated.endswith(")\\Z")):  # pragma: no cover
        raise ValueError(f"unexpected fnmatch translation of {text!r}: {translated!r}")
    return "(?!/)" + translated[4:-3]


_REGEX = {"*": "[^/]*", "?": "[^/]", "**": ".*", "**/": "(?:.*/)?"}


@functools.lru_cache(maxsize=8192)
def regex(pattern: str) -> str:
    """The regular expression of `pattern`, to be matched whole with ``re.DOTALL``; it has no
    capturing group, so several can be joined into one."""
    parts = []
    for kind, text in _tokens(pattern):
        if kind == "c":
            parts.append(re.escape(text))
        elif kind == "[":
            parts.append(_set_regex(text))
        else:
            parts.append(_REGEX[kind])
    return "".join(parts)


@functools.lru_cache(maxsize=8192)
def compiled(pattern: str) -> re.Pattern[str]:
    """:func:`regex`, compiled."""
    return re.compile(regex(pattern), re.DOTALL)


def glob_match(pattern: str, path: str) -> bool:
    """Whether `pattern` (module docstring) matches the whole of `path`."""
    return compiled(pattern).fullmatch(path) is not None


# -- intersection: the product of two automata ------------------------------------------------------

_LIT, _NS, _ANY, _SET = 0, 1, 2, 3  # edge labels: a character, any but "/", any, a set ("[...]")
_Edge = tuple[int, str, int]  # (label, character or set text, target)


@dataclass(slots=True)
class _Nfa:
    """A glob as an automaton: edges[state] = [(label, text, target)], eps[state] = [target]."""

    edges: list[list[_Edge]]
    eps: list[list[int]]

    @property
    def final(self) -> int:
        return len(self.edges) - 1

    def closure(self, states: Iterable[int]) -> frozenset[int]:
        todo, seen = list(states), set(states)
        while todo:
            for t in self.eps[todo.pop()]:
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
        return frozenset(seen)

    def state(self) -> int:
        self.edges.append([])
        self.eps.append([])
        return len(self.edges) - 1


_ONE = {"c": _LIT, "?": _NS, "[": _SET}


@functools.lru_cache(maxsize=1024)
def _nfa(pattern: str) -> _Nfa:
    nfa = _Nfa([], [])
    s = nfa.state()
    for kind, text in _tokens(pattern):
        t = nfa.state()
        if kind in _ONE:
            nfa.edges[s].append((_ONE[kind], text, t))
        elif kind in ("*", "**"):
            nfa.edges[s].append((_NS if kind == "*" else _ANY, "", s))
            nfa.eps[s].append(t)
        else:  # "**/": nothing, or anything then "/"
            mid = t
            t = nfa.state()
            nfa.eps[s] += [t, mid]
            nfa.edges[mid] += [(_ANY, "", mid), (_LIT, "/", t)]
        s = t
    return nfa


@functools.lru_cache(maxsize=1024)
def _set_rx(text: str) -> re.Pattern[str]:
    return re.compile(_set_regex(text), re.DOTALL)


def _witness(*sets: str) -> bool:
    """Whether one character is in every set of `sets` (each never holds ``/``). Each set is a
    union of ranges whose ends are characters of its text, or the complement of one: a range of
    their intersection starts at 0, just after ``/``, or at a character of a text or the one after."""
    points = {0, ord("/") + 1}
    for text in sets:
        for ch in text:
            points.update((ord(ch), ord(ch) + 1))
    return any(all(_set_rx(s).fullmatch(chr(p)) for s in sets) for p in sorted(points) if p <= 0x10FFFF)


def _compatible(la: int, ca: str, lb: int, cb: str) -> bool:
    """Whether two edges share a character."""
    if la > lb:
        la, ca, lb, cb = lb, cb, la, ca
    if la == _LIT:  # ca is one character
        if lb == _LIT:
            return ca == cb
        if lb == _SET:
            return _set_rx(cb).fullmatch(ca) is not None
        return lb == _ANY or ca != "/"
    if lb == _SET:  # with "any" or "any but /": the set holds something (never "/")
        return _witness(cb) if la != _SET else _witness(ca, cb)
    return True  # two classes share a character that is not "/"


@functools.lru_cache(maxsize=8192)
def intersects(a: str, b: str) -> bool:
    """Whether some path matches both globs `a` and `b` (product of their automata)."""
    na, nb = _nfa(a), _nfa(b)
    start = (na.closure([0]), nb.closure([0]))
    todo, seen = [start], {start}
    while todo:
        sa, sb = todo.pop()
        if na.final in sa and nb.final in sb:
            return True
        for p in sa:
            for la, ca, pt in na.edges[p]:
                for q in sb:
                    for lb, cb, qt in nb.edges[q]:
                        if _compatible(la, ca, lb, cb):
                            nxt = (na.closure([pt]), nb.closure([qt]))
                            if nxt not in seen:
                                seen.add(nxt)
                                todo.append(nxt)
    return False
