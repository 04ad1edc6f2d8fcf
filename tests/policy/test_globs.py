"""Path globs: the regex translation against a reference that matches component by component with
fnmatch, and the first-match order of combined globs."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stockade.policy.globs import (
    check_path_glob,
    combine,
    escape,
    is_glob,
    path_glob_regex,
    path_match,
    text_glob_regex,
)


def reference(pattern: str, path: str) -> bool:
    """The documented meaning: fnmatch per component; `**` any number of components (at the end:
    one or more)."""
    pc, tc = pattern.split("/"), path.split("/")

    def match(i: int, j: int) -> bool:
        if i == len(pc):
            return j == len(tc)
        if pc[i] == "**":
            if i == len(pc) - 1:
                return len(tc) - j >= 1
            return any(match(i + 1, k) for k in range(j, len(tc) + 1))
        return j < len(tc) and fnmatch.fnmatchcase(tc[j], pc[i]) and match(i + 1, j + 1)

    return match(0, 0)


_CHARS = "ab.-x"
_TEXT = st.text(alphabet=_CHARS, max_size=4)
_SET = st.builds(
    lambda neg, body: "[" + ("!" if neg else "") + body + "]",
    st.booleans(),
    st.text(alphabet="abx.-]", min_size=1, max_size=3).filter(lambda s: not s.startswith("]") or len(s) > 1),
)
_PIECE = st.one_of(_TEXT, st.just("*"), st.just("?"), _SET)
_COMPONENT = st.one_of(
    st.lists(_PIECE, max_size=3).map("".join),
    st.just("**"),
)
_PATTERNS = st.lists(_COMPONENT, min_size=1, max_size=5).map(lambda cs: "/" + "/".join(cs))
_PATHS = st.lists(st.text(alphabet=_CHARS + "]!", max_size=4), min_size=1, max_size=6).map(
    lambda cs: "/" + "/".join(cs)
)


def _instance(data: st.DataObject, pattern: str) -> str:
    """A path shaped like `pattern`: each wildcard replaced by some text (which may or may not be
    what it matches), so that about half the paths match."""
    out = []
    for comp in pattern.split("/")[1:]:
        if comp == "**":
            out.extend(data.draw(st.lists(_TEXT, max_size=2)))
            continue
        text = ""
        i = 0
        while i < len(comp):
            c = comp[i]
            if c == "[" and "]" in comp[i + 2 :]:
                i = comp.index("]", i + 2)
                text += data.draw(st.sampled_from(_CHARS + "/"))  # a set never matches "/"
            elif c in "*?":
                text += data.draw(_TEXT if c == "*" else st.sampled_from(_CHARS))
            else:
                text += c
            i += 1
        out.append(text)
    return "/" + "/".join(out)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_PATTERNS, _PATHS, st.data())
def test_path_glob_matches_as_the_reference(pattern: str, other: str, data: st.DataObject) -> None:
    if check_path_glob(pattern) is not None:
        return
    for path in (other, _instance(data, pattern)):
        assert path_match(pattern, path) is reference(pattern, path), (path, path_glob_regex(pattern))


@settings(max_examples=200, deadline=None)
@given(_PATTERNS)
def test_a_pattern_matches_what_it_generalises(pattern: str) -> None:
    """Replacing each wildcard by a sample of what it stands for gives a path it matches."""
    if check_path_glob(pattern) is not None or "[" in pattern:
        return
    sample = pattern.replace("**", "q/r").replace("*", "zz").replace("?", "y")
    assert path_match(pattern, sample)
    assert reference(pattern, sample)


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/var/log/app/**", "/var/log/app/x.log", True),
        ("/var/log/app/**", "/var/log/app/2024/x.log", True),
        ("/var/log/app/**", "/var/log/app", False),
        ("/a/**/b", "/a/b", True),
        ("/a/**/b", "/a/x/y/b", True),
        ("/a/**/b", "/a/x/y/c", False),
        ("/tmp/tmp.*", "/tmp/tmp.Xy12", True),
        ("/tmp/tmp.*", "/tmp/tmp.Xy12/inner", False),
        ("/proc/*/status", "/proc/1234/status", True),
        ("/proc/*/status", "/proc/1234/task/5/status", False),
        ("/x/[!a]", "/x/b", True),
        ("/x/[!a]", "/x/a", False),
        ("/etc/passwd", "/etc/passwd", True),
        ("/etc/passwd", "/etc/passwd-", False),
    ],
)
def test_documented_examples(pattern: str, path: str, expected: bool) -> None:
    assert path_match(pattern, path) is expected


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("", "empty"),
        ("etc/passwd", "not an absolute path"),
        ("/var/**log", "'**' must be a whole path component"),
        ("/tmp/[ab", "'[' without its ']'"),
    ],
)
def test_invalid_globs_say_why(pattern: str, problem: str) -> None:
    why = check_path_glob(pattern)
    assert why is not None and problem in why


@given(st.text(alphabet="/ab*?[]!.", min_size=1, max_size=12).map(lambda s: "/" + s))
def test_escape_matches_exactly_the_path(path: str) -> None:
    pattern = escape(path)
    assert check_path_glob(pattern) is None
    assert path_match(pattern, path)
    assert not path_match(pattern, path + "x")
    assert is_glob(pattern) is is_glob(path)


def test_combined_globs_name_the_first_that_matches() -> None:
    rx = combine([path_glob_regex(p) for p in ("/etc/*.conf", "/etc/**", "/etc/nginx.conf")])
    m = rx.fullmatch("/etc/nginx.conf")
    assert m is not None and m.lastindex == 1
    m = rx.fullmatch("/etc/nginx/x")
    assert m is not None and m.lastindex == 2
    assert rx.fullmatch("/usr/x") is None


def test_argument_globs_match_across_spaces_and_slashes() -> None:
    rx = combine([text_glob_regex("-c /etc/*")])
    assert rx.fullmatch("-c /etc/nginx/nginx.conf -g daemon off;")
    assert not rx.fullmatch("-t -c /etc/nginx.conf")
