"""Version comparison per ecosystem, Debian's checked against dpkg itself, and OSV range checks."""

from __future__ import annotations

import functools
import itertools
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import need
from stockade.model.advisory import Affected, Range
from stockade.vulns.versions import InvalidVersionError, affected_by, compare, in_range

#: hand-written Debian pairs where dpkg's rules bite: epochs, tildes, revisions, letters, plus
TRICKY_DEBIAN = [
    "1.0",
    "1.0-1",
    "1.0-1+b1",
    "1.0-1+deb12u1",
    "1.0-1~bpo11+1",
    "1.0~rc1",
    "1.0~rc1-1",
    "1.0~~",
    "1.0~",
    "1.0+dfsg",
    "1.0+dfsg-1",
    "1.0a",
    "1.0.0",
    "1:0.9",
    "1:1.0",
    "2:0.1",
    "0:1.0",
    "1.00",
    "1.000-0",
    "10.0",
    "9.99",
    "1.0-10",
    "1.0-9",
    "1.0.1~beta",
    "2.38.1-5+deb12u3",
    "2.38.1-5",
    "3.0.11-1~deb12u2",
    "3.0.11-1",
    "1:2.36.1-8+deb12u1",
]


def _dpkg(a: str, op: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, op, b], check=False).returncode == 0


def _dpkg_cmp(a: str, b: str) -> int:
    if _dpkg(a, "lt", b):
        return -1
    return 0 if _dpkg(a, "eq", b) else 1


def _status_versions(root: Path) -> list[str]:
    text = (root / "var/lib/dpkg/status").read_text()
    found = set(re.findall(r"^Version: (\S+)$", text, re.M))
    found |= set(re.findall(r"^Source: \S+ \((\S+)\)$", text, re.M))
    return sorted(found)


@pytest.mark.root
@pytest.mark.slow
def test_debian_versions_of_a_real_tree_order_as_dpkg_says(debian_rootfs: Path) -> None:
    """Every version in a minbase tree's dpkg status plus tricky ones: sorted by compare(), each
    neighbour pair and a random sample of all pairs agree with `dpkg --compare-versions`."""
    need(shutil.which("dpkg"), "dpkg is not installed")
    versions = _status_versions(debian_rootfs) + TRICKY_DEBIAN
    assert len(versions) > 80

    def deb(a: str, b: str) -> int:
        return compare("Debian", a, b)

    ordered = sorted(versions, key=functools.cmp_to_key(deb))
    pairs = list(itertools.pairwise(ordered))
    rng = random.Random(16)
    pairs += rng.sample(list(itertools.combinations(versions, 2)), 150)
    pairs += rng.sample(list(itertools.combinations(TRICKY_DEBIAN, 2)), 120)
    disagree = [(a, b) for a, b in pairs if compare("Debian", a, b) != _dpkg_cmp(a, b)]
    assert not disagree


_deb_part = st.text(alphabet="0123456789abcz.+~", min_size=1, max_size=6)


@settings(max_examples=40, deadline=None)
@given(
    st.tuples(
        st.sampled_from(["", "1:", "2:"]), st.from_regex(r"[0-9][0-9a-z.+~]{0,6}", fullmatch=True), _deb_part
    ),
    st.tuples(
        st.sampled_from(["", "1:"]), st.from_regex(r"[0-9][0-9a-z.+~]{0,6}", fullmatch=True), _deb_part
    ),
)
def test_debian_generated_versions_agree_with_dpkg(a: tuple[str, str, str], b: tuple[str, str, str]) -> None:
    """Generated epoch:upstream-revision versions compare as dpkg compares them."""
    need(shutil.which("dpkg"), "dpkg is not installed")
    va, vb = f"{a[0]}{a[1]}-{a[2]}", f"{b[0]}{b[1]}-{b[2]}"
    assert compare("Debian", va, vb) == _dpkg_cmp(va, vb), (va, vb)


@pytest.mark.parametrize(
    ("ecosystem", "older", "newer"),
    [
        ("PyPI", "1.0rc1", "1.0"),
        ("PyPI", "1.0", "1.0.post1"),
        ("PyPI", "1.0.dev0", "1.0a1"),
        ("PyPI", "2.9", "2.10"),
        ("PyPI", "2.0", "1!0.1"),
        ("Alpine", "1.2.3-r1", "1.2.3-r10"),
        ("Alpine", "1.2.3_rc1-r0", "1.2.3-r0"),
        ("Alpine", "3.0.8-r3", "3.1.4-r0"),
        ("Red Hat", "1.0-1.el8", "1.0-2.el8"),
        ("Red Hat", "2.0-1", "1:1.0-1"),
        ("Red Hat", "1.0~rc1-1", "1.0-1"),
        ("Rocky Linux", "3.0.7-25.el9_3", "3.0.7-27.el9"),
        ("npm", "1.0.0-alpha", "1.0.0"),
        ("npm", "1.0.0-alpha.1", "1.0.0-beta"),
        ("npm", "2.9.0", "2.10.0"),
        ("crates.io", "0.9.9", "0.10.0"),
        ("Go", "v1.2.3", "v1.2.4"),
        ("Go", "v0.0.0-20210101000000-abcdef123456", "v0.1.0"),
        ("Go", "v1.9.0", "v2.0.0+incompatible"),
        ("Go", "1.20.5", "1.21.0"),
        ("Maven", "2.9.1", "2.17.0"),
        ("Maven", "1.0-SNAPSHOT", "1.0"),
        ("Maven", "1.0-alpha-1", "1.0-beta-1"),
        ("Maven", "2.16.0", "2.17.0"),
        ("Debian:12", "2.36.1-8", "2.36.1-8+deb12u1"),
        ("Ubuntu:22.04:LTS", "1.0-1ubuntu1", "1.0-1ubuntu2"),
    ],
)
def test_orderings_per_ecosystem(ecosystem: str, older: str, newer: str) -> None:
    """Known orderings of each ecosystem's scheme hold both ways."""
    assert compare(ecosystem, older, newer) == -1
    assert compare(ecosystem, newer, older) == 1
    assert compare(ecosystem, newer, newer) == 0


def test_equal_spellings() -> None:
    """Versions equal in their scheme though spelled differently."""
    assert compare("PyPI", "1.0", "1.0.0") == 0
    assert compare("Debian", "0:1.0", "1.0") == 0
    assert compare("Maven", "1.0", "1.0.0") == 0


def test_an_unreadable_version_is_an_error_naming_it() -> None:
    """A version the scheme cannot read is an InvalidVersionError naming it."""
    with pytest.raises(InvalidVersionError, match="not-a-version"):
        compare("PyPI", "not-a-version", "1.0")


def _rng(*events: tuple[str, str], kind: str = "ECOSYSTEM") -> Range:
    return Range(kind, tuple(events))


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.9", (False, ())),
        ("1.0", (True, ("1.5",))),
        ("1.4.9", (True, ("1.5",))),
        ("1.5", (False, ())),
        ("1.9", (False, ())),
        ("2.0", (True, ("2.2",))),
        ("2.2", (False, ())),
        ("3.0", (True, ())),
        ("3.1", (False, ())),
    ],
)
def test_range_with_branches_and_last_affected(version: str, expected: tuple[bool, tuple[str, ...]]) -> None:
    """Two fixed branches and a last_affected one: inside an interval gives that interval's fix,
    at or above a fix nothing."""
    rng = _rng(("introduced", "1.0"), ("fixed", "1.5"), ("introduced", "2.0"), ("fixed", "2.2"))
    last = _rng(("introduced", "3.0"), ("last_affected", "3.0"))
    a, fa = in_range("PyPI", version, rng)
    b, fb = in_range("PyPI", version, last)
    assert (a or b, fa + fb) == expected


def test_limit_git_and_versions_list() -> None:
    """A limit bounds a range; a GIT range is not evaluated, its versions list is; withdrawn is
    the matcher's business."""
    assert in_range("npm", "1.5.0", _rng(("introduced", "0"), ("limit", "1.2.0"), kind="SEMVER")) == (
        False,
        (),
    )
    assert in_range("npm", "1.1.0", _rng(("introduced", "0"), ("limit", "1.2.0"), kind="SEMVER")) == (
        True,
        (),
    )
    git = Affected("PyPI", "x", ranges=(_rng(("introduced", "abc123"), ("fixed", "def456"), kind="GIT"),))
    assert affected_by(git, "1.0") == (False, ())
    listed = Affected("PyPI", "x", ranges=git.ranges, versions=("1.0", "1.1"))
    assert affected_by(listed, "1.1") == (True, ())
    assert affected_by(listed, "1.1.0") == (True, ())  # equal in PEP 440
    assert affected_by(listed, "1.2") == (False, ())


def test_introduced_zero_and_unsorted_events() -> None:
    """introduced 0 is the start of time; events given out of order are sorted first."""
    rng = _rng(("fixed", "2.0"), ("introduced", "0"))
    assert in_range("Go", "v1.9.9", rng) == (True, ("2.0",))
    assert in_range("Go", "v2.0.0", rng) == (False, ())
