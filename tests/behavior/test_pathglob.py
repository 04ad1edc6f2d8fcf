"""The one path glob dialect: escaping a path, reading it back, and the intersection of two globs
against a brute-force search (sets and ``?`` included)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stockade.behavior.pathglob import escape, glob_match, intersects, is_pattern, literal, regex

_NAME = st.text(alphabet="ab*?[]!/.-", max_size=10)


@given(_NAME)
def test_an_escaped_path_matches_itself_only(path: str) -> None:
    glob = escape(path)
    assert literal(glob) == path
    assert not is_pattern(glob)
    assert glob_match(glob, path)
    assert not glob_match(glob, path + "a")
    for i, c in enumerate(path):
        if c in "*?[":  # the wildcard reading would match another character there
            assert not glob_match(glob, path[:i] + "a" + path[i + 1 :])


@given(_NAME, _NAME)
def test_two_escaped_paths_intersect_only_when_equal(a: str, b: str) -> None:
    assert intersects(escape(a), escape(b)) is (a == b)


@pytest.mark.parametrize(
    ("pattern", "lit"),
    [
        ("/usr/bin/[[]", "/usr/bin/["),
        ("/a/[*]b[?]", "/a/*b?"),
        ("/a/[]]", "/a/]"),
        ("/a/[ab]", None),
        ("/a/[!a]", None),
        ("/a/[x", "/a/[x"),  # a "[" without its "]" is itself
        ("/a/[x/y]", "/a/[x/y]"),  # ... and a set never spans a "/"
        ("/a/?", None),
        ("/a/**", None),
    ],
)
def test_literal(pattern: str, lit: str | None) -> None:
    assert literal(pattern) == lit


#: the pieces globs are made of here: characters of the paths searched, and every kind of wildcard
_PIECES = ["a", "b", "/", "*", "?", "**", "[ab]", "[!a]", "[b-c]", "[]a]"]
_GLOBS = st.lists(st.sampled_from(_PIECES), min_size=1, max_size=3).map("".join)
#: every path of up to 6 characters over a, b, c, "]" and "/" (every set's members are among them,
#: and "c" is in none but [b-c] and [!a])
_PATHS = ["".join(p) for n in range(7) for p in itertools.product("abc]/", repeat=n)]


@settings(max_examples=150, deadline=None)
@given(_GLOBS, _GLOBS)
def test_intersects_agrees_with_a_search(a: str, b: str) -> None:
    """Three pieces each consume at most one character of a shortest common path, so a search of
    the paths up to 6 characters finds one whenever there is one."""
    both = any(glob_match(a, p) and glob_match(b, p) for p in _PATHS)
    assert intersects(a, b) is both, (a, b, regex(a), regex(b))


def test_sets_intersect_by_their_members() -> None:
    assert intersects("/x/[ab]", "/x/[!a]")  # b
    assert not intersects("/x/[ab]", "/x/[!ab]")
    assert intersects("/x/[!a]", "/x/[!b]")  # c, for one
    assert not intersects("/x/[a-c]", "/x/[d-f]")
    assert intersects("/x/[a-c]", "/x/?")
    assert not intersects("/x[/]", "/x/")  # no set spans "/": "[/]" is three characters
    assert intersects("/a/**", "/a/")  # everything below /a, the empty name too
