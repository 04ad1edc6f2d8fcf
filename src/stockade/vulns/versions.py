"""Version comparison per ecosystem, and OSV's range check.

One entry point, :func:`compare` ``(ecosystem, a, b) -> -1/0/1``, over well-kept libraries:
PEP 440 with ``packaging`` (PyPI), and ``univers`` for dpkg (Debian, Ubuntu), apk (Alpine,
Wolfi), rpmvercmp with epochs (Red Hat, Rocky, Alma, SUSE...), semver (npm, crates.io, NuGet...),
Go (semver with ``v``, pseudo-versions, ``+incompatible``), Maven (ComparableVersion), RubyGems
and Composer. An ecosystem it does not know compares with univers' generic scheme.

:func:`affected_by` is OSV's evaluation of one affected entry: a version is affected when it is in
the ``versions`` list or inside an ECOSYSTEM or SEMVER range (``introduced`` <= v < ``fixed``,
or <= ``last_affected``, and < any ``limit``); GIT ranges are not evaluated (their ``versions``
list is). It also gives the fix versions of the range the version falls in.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from packaging.version import InvalidVersion as PepInvalid
from packaging.version import Version as PepVersion
from univers import versions as uv

from stockade.errors import UsageError
from stockade.model.advisory import Affected, Range

__all__ = ["InvalidVersionError", "affected_by", "compare", "in_range", "scheme", "sort_key"]


class InvalidVersionError(UsageError):
    """A version string the ecosystem's scheme cannot parse."""


_SCHEMES: dict[str, type[uv.Version]] = {
    "deb": uv.DebianVersion,
    "apk": uv.AlpineLinuxVersion,
    "rpm": uv.RpmVersion,
    "semver": uv.SemverVersion,
    "go": uv.GolangVersion,
    "maven": uv.MavenVersion,
    "gem": uv.RubygemsVersion,
    "composer": uv.ComposerVersion,
    "nuget": uv.NugetVersion,
    "generic": uv.GenericVersion,
}

#: OSV ecosystem (without its release suffix) -> version scheme
ECOSYSTEM_SCHEMES: dict[str, str] = {
    "PyPI": "pep440",
    "Debian": "deb",
    "Ubuntu": "deb",
    "Alpine": "apk",
    "Wolfi": "apk",
    "Chainguard": "apk",
    "Red Hat": "rpm",
    "Rocky Linux": "rpm",
    "AlmaLinux": "rpm",
    "openSUSE": "rpm",
    "SUSE": "rpm",
    "Mageia": "rpm",
    "Photon OS": "rpm",
    "openEuler": "rpm",
    "Azure Linux": "rpm",
    "npm": "semver",
    "crates.io": "semver",
    "Hex": "semver",
    "Pub": "semver",
    "SwiftURL": "semver",
    "NuGet": "nuget",
    "Go": "go",
    "Maven": "maven",
    "RubyGems": "gem",
    "Packagist": "composer",
}


def scheme(ecosystem: str) -> str:
    """The version scheme of an OSV ecosystem (``Debian:12`` is Debian's)."""
    return ECOSYSTEM_SCHEMES.get(ecosystem.partition(":")[0], "generic")


@functools.lru_cache(maxsize=65536)
def _parse(kind: str, version: str) -> Any:
    v = version.strip()
    if kind == "pep440":
        try:
            return PepVersion(v)
        except PepInvalid as e:
            raise InvalidVersionError(f"{version!r} is not a PEP 440 version") from e
    if kind == "go":
        v = v.removeprefix("go")  # the standard library's "go1.21.3"
    try:
        return _SCHEMES[kind](v)
    except Exception as e:  # univers raises several kinds (InvalidVersion, ValueError, TypeError)
        raise InvalidVersionError(f"{version!r} is not a valid {kind} version") from e


def _cmp(x: Any, y: Any) -> int:
    return int(x > y) - int(x < y)


def compare(ecosystem: str, a: str, b: str) -> int:
    """-1, 0 or 1 as version `a` is older than, equal to or newer than `b` in `ecosystem`'s scheme;
    InvalidVersionError for a version the scheme cannot read."""
    kind = scheme(ecosystem)
    if a == b:
        return 0
    return _cmp(_parse(kind, a), _parse(kind, b))


def sort_key(ecosystem: str) -> Callable[[str], Any]:
    """A key function that sorts versions of `ecosystem` oldest first."""
    kind = scheme(ecosystem)
    return functools.partial(_parse, kind)


def _is_zero(v: str) -> bool:
    return v in ("0", "")


def in_range(ecosystem: str, version: str, rng: Range) -> tuple[bool, tuple[str, ...]]:
    """Whether `version` is inside the OSV range `rng` (ECOSYSTEM or SEMVER; a GIT range is never
    evaluated: False), and the fix versions of the interval it is in (the first ``fixed`` event
    above it; empty when none is known)."""
    if rng.type not in ("ECOSYSTEM", "SEMVER"):
        return False, ()
    eco = "npm" if rng.type == "SEMVER" and scheme(ecosystem) not in ("go",) else ecosystem
    v = _parse(scheme(eco), version)

    def key(ev: tuple[str, str]) -> tuple[int, Any]:
        kind, ver = ev
        return (0, 0) if _is_zero(ver) and kind == "introduced" else (1, _parse(scheme(eco), ver))

    limits = [ver for kind, ver in rng.events if kind == "limit" and ver not in ("*", "")]
    if any(_cmp(v, _parse(scheme(eco), lim)) >= 0 for lim in limits):
        return False, ()
    events = [e for e in rng.events if e[0] in ("introduced", "fixed", "last_affected")]
    # events of one version: introduced first (``introduced X, last_affected X`` affects X only)
    order = {"introduced": 0, "fixed": 1, "last_affected": 2}
    events.sort(key=lambda e: (key(e), order[e[0]]))
    affected = False
    fixed: tuple[str, ...] = ()
    # walk up the sorted events while they are at or below the version; the first one above it
    # ends the walk (and is the fix of the interval the version is in, when it is a fix)
    for kind, ver in events:
        if kind == "introduced":
            if not (_is_zero(ver) or _cmp(v, _parse(scheme(eco), ver)) >= 0):
                break
            affected = True
        elif kind == "fixed":
            if _cmp(v, _parse(scheme(eco), ver)) < 0:
                fixed = (ver,)
                break
            affected = False
        else:  # last_affected
            if _cmp(v, _parse(scheme(eco), ver)) <= 0:
                break
            affected = False
    return affected, fixed if affected else ()


def affected_by(entry: Affected, version: str) -> tuple[bool, tuple[str, ...]]:
    """Whether `version` of the package is affected by the advisory's `entry` (listed in its
    versions, or in one of its ranges), and the fix versions of the ranges it is in. A range whose
    versions cannot be read in the scheme is skipped (InvalidVersionError for the package's own
    version propagates: the caller counts it)."""
    eco = entry.ecosystem
    hit = version in entry.versions
    fixes: list[str] = []
    for rng in entry.ranges:
        try:
            inside, fixed = in_range(eco, version, rng)
        except InvalidVersionError:
            _parse(scheme(eco), version)  # the package's version: propagate; the advisory's: skip
            continue
        if inside:
            hit = True
            fixes.extend(f for f in fixed if f not in fixes)
    if not hit and entry.versions and scheme(eco) != "generic":
        hit = any(_same(eco, version, listed) for listed in entry.versions)
    return hit, tuple(fixes)


def _same(ecosystem: str, a: str, b: str) -> bool:
    try:
        return compare(ecosystem, a, b) == 0
    except InvalidVersionError:
        return False
