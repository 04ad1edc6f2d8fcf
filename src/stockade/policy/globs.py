"""The globs of WorkloadPolicy rules, as regular expressions.

A *path glob* (a process rule's ``path`` and ``parent``, a file rule's ``path``) is an absolute
path read component by component:

* ``*`` matches any text within one component (``/tmp/tmp.*``), ``?`` one character of it,
  ``[abc]`` / ``[a-z]`` / ``[!abc]`` one character of a set, as :func:`fnmatch.fnmatchcase` reads
  a component (a set never matches ``/``);
* ``**`` as a whole component matches any number of components: ``/a/**/b`` matches ``/a/b``,
  ``/a/x/b`` and ``/a/x/y/b``; at the end (``/var/log/app/**``) it matches everything below the
  directory, one component or more (not the directory itself);
* a pattern without ``*``, ``?`` or ``[`` is an exact path; a path that has one of them is
  written with it as a set of one character (``/usr/bin/[[]`` for the program ``[``, :func:`escape`).

An *argument glob* (a process rule's ``args``, matched against ``proc.args``) is plain text in
:mod:`fnmatch`'s reading: ``*`` matches anything, spaces and ``/`` included.

:func:`combine` joins the globs of several rules into one regular expression whose match names the
first rule (in the given order) that matches, so a policy runs one regex per section and action.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from functools import lru_cache

from stockade.rules.interp import glob_bracket_end

__all__ = [
    "check_path_glob",
    "combine",
    "escape",
    "is_glob",
    "path_glob_regex",
    "path_match",
    "text_glob_regex",
]

_SPECIAL = frozenset("*?[")
_ANY_DEPTH = "(?:/[^/]*)*"
_SOME_DEPTH = "(?:/[^/]*)+"


def is_glob(pattern: str) -> bool:
    """Whether `pattern` has a wildcard (else it names one exact path)."""
    return not _SPECIAL.isdisjoint(pattern)


def escape(path: str) -> str:
    """A glob that matches `path` exactly (its ``*``, ``?`` and ``[`` each as a one-character set)."""
    if not is_glob(path):
        return path
    return "".join(f"[{c}]" if c in _SPECIAL else c for c in path)


def check_path_glob(pattern: str) -> str | None:
    """What is wrong with `pattern` as a path glob, or None when it is a valid one."""
    if not pattern:
        return "empty"
    if not pattern.startswith("/"):
        return "not an absolute path (it must start with '/')"
    for comp in pattern.split("/"):
        if "**" in comp and comp != "**":
            return f"'**' must be a whole path component (in {comp!r}); use '*' within a component"
        i = comp.find("[")
        while i >= 0:
            end = glob_bracket_end(comp, i)
            if end < 0:
                return f"'[' without its ']' in {comp!r}"
            i = comp.find("[", end + 1)
    return None


def _bracket(comp: str, i: int, end: int) -> str:
    """The set ``comp[i:end+1]`` as fnmatch translates it, never matching '/'."""
    inner = fnmatch.translate(comp[i : end + 1])  # "(?s:[...])\Z"
    return "(?!/)" + inner[4:-3]


def _component(comp: str) -> str:
    out: list[str] = []
    i, n = 0, len(comp)
    while i < n:
        c = comp[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (end := glob_bracket_end(comp, i)) >= 0:
            out.append(_bracket(comp, i, end))
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


@lru_cache(maxsize=4096)
def path_glob_regex(pattern: str) -> str:
    """The regular expression (to be matched whole) of a valid path glob (:func:`check_path_glob`)."""
    comps = pattern.split("/")
    out: list[str] = []
    last = len(comps) - 1
    for k, comp in enumerate(comps):
        if k == 0:
            out.append(_component(comp))  # "" for an absolute pattern
        elif comp == "**":
            out.append(_SOME_DEPTH if k == last else _ANY_DEPTH)
        else:
            out.append("/" + _component(comp))
    return "".join(out)


def text_glob_regex(pattern: str) -> str:
    """The regular expression (to be matched whole) of an argument glob."""
    return fnmatch.translate(pattern)[:-2]  # without fnmatch's trailing \Z


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(path_glob_regex(pattern), re.DOTALL)


def path_match(pattern: str, path: str) -> bool:
    """Whether `path` matches the path glob `pattern`."""
    return _compiled(pattern).fullmatch(path) is not None


def combine(regexes: Sequence[str]) -> re.Pattern[str]:
    """One expression matching what any of `regexes` matches (whole): a match's ``lastindex`` - 1
    is the position of the first of them that matches (each is wrapped in one capturing group;
    the regexes themselves must have none, as those of this module)."""
    rx = re.compile("|".join(f"({r})" for r in regexes), re.DOTALL)
    if rx.groups != len(regexes):
        raise ValueError("a combined regex must not have capturing groups of its own")
    return rx
