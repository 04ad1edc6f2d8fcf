"""The globs of WorkloadPolicy rules, as regular expressions.

A *path glob* (a process rule's ``path`` and ``parent``, a file rule's ``path`` and ``except``) is
an absolute path in Stockade's one glob dialect, that of profiles too
(:mod:`stockade.behavior.pathglob`), read component by component:

* ``*`` matches any text within one component (``/tmp/tmp.*``), ``?`` one character of it,
  ``[abc]`` / ``[a-z]`` / ``[!abc]`` one character of a set, as :func:`fnmatch.fnmatchcase` reads
  a component (a set never matches ``/``);
* ``**`` as a whole component matches any number of components: ``/a/**/b`` matches ``/a/b``,
  ``/a/x/b`` and ``/a/x/y/b``; at the end (``/var/log/app/**``) it matches everything below the
  directory, one component or more (not the directory itself); ``**`` inside a component is refused;
* a pattern without ``*``, ``?`` or ``[`` is an exact path; a path that has one of them is
  written with it as a set of one character (``/usr/bin/[[]`` for the program ``[``, :func:`escape`;
  :func:`literal` reads it back).

An *argument glob* (a process rule's ``args``, matched against ``proc.args``) is plain text in
:mod:`fnmatch`'s reading: ``*`` matches anything, spaces and ``/`` included.

:func:`combine` joins the globs of several rules into one regular expression whose match names the
first rule (in the given order) that matches, so a policy runs one regex per section and action;
:func:`excepting` makes a glob's expression leave out what other globs match (a file rule's
``except``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

from stockade.behavior.pathglob import bracket_end, escape, glob_match, has_special, literal, regex

__all__ = [
    "check_path_glob",
    "combine",
    "escape",
    "excepting",
    "is_glob",
    "literal",
    "path_glob_regex",
    "path_match",
    "text_glob_regex",
]


def is_glob(pattern: str) -> bool:
    """Whether `pattern` has a wildcard character (``*``, ``?``, ``[``); one that has none names
    one exact path (an escaped path has some, and still names one: :func:`literal`)."""
    return has_special(pattern)


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
            end = bracket_end(comp, i)
            if end < 0:
                return f"'[' without its ']' in {comp!r}"
            i = comp.find("[", end + 1)
    return None


def path_glob_regex(pattern: str) -> str:
    """The regular expression (to be matched whole, with ``re.DOTALL``) of a valid path glob
    (:func:`check_path_glob`); it has no capturing group."""
    return regex(pattern)


def excepting(pattern: str, exceptions: Sequence[str]) -> str:
    """The regular expression of path glob `pattern` that matches no path one of `exceptions`
    (path globs) matches: a negative lookahead before it, so it still joins (:func:`combine`)."""
    if not exceptions:
        return regex(pattern)
    return "(?!(?:" + "|".join(regex(e) for e in exceptions) + r")\Z)" + regex(pattern)


def path_match(pattern: str, path: str) -> bool:
    """Whether `path` matches the path glob `pattern`."""
    return glob_match(pattern, path)


def text_glob_regex(pattern: str) -> str:
    """The regular expression (to be matched whole) of an argument glob."""
    return fnmatch.translate(pattern)[:-2]  # without fnmatch's trailing \Z


def combine(regexes: Sequence[str]) -> re.Pattern[str]:
    """One expression matching what any of `regexes` matches (whole): a match's ``lastindex`` - 1
    is the position of the first of them that matches (each is wrapped in one capturing group;
    the regexes themselves must have none, as those of this module)."""
    rx = re.compile("|".join(f"({r})" for r in regexes), re.DOTALL)
    if rx.groups != len(regexes):
        raise ValueError("a combined regex must not have capturing groups of its own")
    return rx
