"""Path patterns for a profile's file entries: generalised names, directory collapse, and the one
list of credential files a generalisation never covers.

**Pattern language**: the one glob dialect of profiles and WorkloadPolicy file rules alike,
:mod:`stockade.behavior.pathglob` (``*`` within a path component, ``?``, ``[...]``, ``**`` across
components); :func:`glob_match` is the matcher, :func:`intersects` tells whether two patterns
have a path in common. Every entry of a profile's file section is such a glob: a path seen is
stored escaped (:func:`escape`: ``/srv/a?b`` as ``/srv/a[?]b``), so a ``*``, ``?`` or ``[`` in a
file's name never widens the entry, and :func:`literal` reads an exact entry back.

**Generalised names** (:func:`generalise_path`): in each path component, generated parts become
``*``: whole numbers (``/proc/1234``, ``/dev/pts/3``), ``self`` and ``thread-self`` under
``/proc``, UUIDs, hex runs of 12 characters or more, runs of 4 digits or more, dates
(``app-2026-12-06.log``), ``mktemp`` names (``tmp.Xa3bQ9k2``, ``name.Xa3bQ9``), Python
``tempfile`` names (``tmpab12cd_x``: ``tmp`` and 6-12 of ``[a-z0-9_]`` with a digit or ``_``) and
log rotation suffixes (``app.log.1``, ``app.log.gz``, ``app.log.1.gz`` -> ``app.log.*``).

**Directory collapse** (thresholds in :class:`Thresholds`): more than ``siblings`` (8) entries
directly in one directory become ``dir/*``; entries below more than ``subdirs`` (8) different
subdirectories of one directory become ``dir/**``. ``dir/*`` needs a directory at least
``min_depth_star`` (1) components deep (never ``/*``), ``dir/**`` one at least
``min_depth_tree`` (2) deep (``/usr/lib/**``, never ``/usr/**``).

**Credential files** (:data:`CREDENTIALS`): a path matching one of them is kept exact, never
generalised nor merged into a pattern. No pattern is made that could cover a system credential
file (a fixed path: ``/etc/shadow``, ``/etc/sudoers.d/**``, ``/var/run/secrets/**``,
``/proc/*/environ``, ...; :func:`may_generalise`): ``/etc/*`` is never made, the files of
``/etc`` stay exact. A pattern that could cover a credential file named anywhere (``**/*.key``,
``**/id_rsa*``, ``**/.aws/credentials``, ...) comes with *exclusions* (:func:`exclusions`): those
credential patterns, stored in the profile as ``!``-prefixed entries of the same access
(``!**/*.key``). A pattern entry
covers a path only when no exclusion of its access matches the path; an exact entry always covers
its own path (:func:`covers`). A policy made from a profile gives each pattern rule the
exclusions that intersect it (:func:`exclusions_of`) as exceptions.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from stockade.behavior.pathglob import compiled, escape, glob_match, intersects, is_pattern, literal, regex

__all__ = [
    "ANY_ARGS",
    "CREDENTIALS",
    "EXCLUDE",
    "SYSTEM_CREDENTIALS",
    "PathIndex",
    "Thresholds",
    "arg_shape",
    "covers",
    "depth",
    "escape",
    "exclusions",
    "exclusions_of",
    "generalise_name",
    "generalise_path",
    "glob_match",
    "intersects",
    "is_credential",
    "is_pattern",
    "literal",
    "literal_dir",
    "may_generalise",
    "parent_dir",
]

#: the prefix of an exclusion entry in a profile's file section
EXCLUDE: Final = "!"

#: credential files and directories (patterns): the one list. The rule pack names the same files in
#: Falco conditions (``endswith``, ``contains``, ``startswith``), which are not path patterns; its
#: path lists (``stk_password_files``, ``stk_account_files``'s secrets) are covered here, which a
#: test checks.
CREDENTIALS: Final[tuple[str, ...]] = (
    # password and group databases, sudo
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/master.passwd",
    "/etc/security/opasswd",
    "/etc/sudoers",
    "/etc/sudoers.d/**",
    # SSH: host keys, any user's .ssh, private keys wherever they are
    "/etc/ssh/ssh_host_*",
    "**/.ssh/**",
    "**/id_rsa*",
    "**/id_dsa*",
    "**/id_ecdsa*",
    "**/id_ed25519*",
    # TLS and other private keys (by the names tools give them)
    "**/*.key",
    "**/*-key.pem",
    "**/*_key.pem",
    "**/key.pem",
    "**/privkey*.pem",
    "**/*.p12",
    "**/*.pfx",
    "**/*.jks",
    "/etc/ssl/private/**",
    "/etc/pki/tls/private/**",
    # Kubernetes: service-account tokens, kubeconfigs, cluster PKI
    "/var/run/secrets/**",
    "/run/secrets/**",
    "**/.kube/config",
    "**/kubeconfig*",
    "/etc/kubernetes/*.conf",
    "/etc/kubernetes/pki/**",
    "/var/lib/kubelet/pki/**",
    # cloud and registry credentials
    "**/.aws/credentials",
    "**/.config/gcloud/**",
    "**/.azure/**",
    "**/.docker/config.json",
    "**/.config/containers/auth.json",
    "/run/containers/*/auth.json",
    "**/.netrc",
    "**/.pgpass",
    "**/.git-credentials",
    "**/.vault-token",
    # another process's secrets
    "/proc/*/environ",
    "/proc/*/mem",
)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When entries of one directory collapse into a pattern (module docstring)."""

    #: more than this many entries directly in one directory become ``dir/*``
    siblings: int = 8
    #: entries below more than this many subdirectories of one directory become ``dir/**``
    subdirs: int = 8
    #: ``dir/*`` only for a directory at least this many components deep
    min_depth_star: int = 1
    #: ``dir/**`` only for a directory at least this many components deep
    min_depth_tree: int = 2


# -- credentials ----------------------------------------------------------------------------------

_CREDENTIAL_RE = re.compile("|".join(f"(?:{regex(p)})" for p in CREDENTIALS), re.DOTALL)


def is_credential(path: str) -> bool:
    """Whether `path` (a file, not a pattern) is a credential file of :data:`CREDENTIALS`."""
    return _CREDENTIAL_RE.fullmatch(path) is not None


def literal_dir(pattern: str) -> str:
    """The directory above the first component holding a wildcard ("" for the root), as a path
    (its one-character sets read back: :func:`literal`)."""
    out: list[str] = []
    for comp in pattern.split("/")[:-1]:
        lit = literal(comp)
        if lit is None:
            break
        out.append(lit)
    return "/".join(out)


def parent_dir(path: str) -> str:
    """The directory a path or pattern is in ("" for an entry of the root)."""
    return path.rsplit("/", 1)[0]


def depth(directory: str) -> int:
    """How many components deep a directory is (``/`` and "" are 0, ``/usr/lib`` is 2)."""
    return len([c for c in directory.split("/") if c])


#: the credential patterns of fixed system paths (the others name files anywhere: ``**/...``)
SYSTEM_CREDENTIALS: Final = tuple(c for c in CREDENTIALS if c.startswith("/"))


@functools.lru_cache(maxsize=4096)
def may_generalise(pattern: str) -> bool:
    """Whether `pattern` may be made: never one that could cover a system credential file
    (``/etc/*`` could be ``/etc/shadow``, ``/proc/*/*`` ``/proc/1/environ``): their directories
    keep exact entries, so no policy made from a profile can allow one not seen, whatever it
    makes of exclusions."""
    return not any(intersects(pattern, c) for c in SYSTEM_CREDENTIALS)


@functools.lru_cache(maxsize=4096)
def exclusions(pattern: str) -> tuple[str, ...]:
    """The exclusions a pattern needs (without the ``!``): the credential patterns it could cover
    (``/tmp/tmp.*`` gets ``**/*.key``, ``**/*.p12``, ...; ``/var/log/app-*.log`` none)."""
    if not is_pattern(pattern):
        return ()
    return tuple(c for c in CREDENTIALS if intersects(pattern, c))


def exclusions_of(pattern: str, excluded: Iterable[str]) -> list[str]:
    """Of a profile's exclusions (``!`` stripped), those that apply to `pattern`."""
    return [x for x in excluded if intersects(pattern, x)]


def covers(entries: Iterable[str], path: str) -> bool:
    """Whether a file section's entries of one access (exact paths, patterns, ``!`` exclusions)
    cover `path`: an exact entry does; else a pattern does when no exclusion matches."""
    patterns: list[str] = []
    excluded = False
    exact = escape(path)
    for e in entries:
        if e == exact:
            return True
        if e.startswith(EXCLUDE):
            excluded = excluded or glob_match(e[1:], path)
        elif literal(e) == path:
            return True
        elif is_pattern(e):
            patterns.append(e)
    return not excluded and any(glob_match(p, path) for p in patterns)


# -- generalised names -----------------------------------------------------------------------------

_HEXC = "[0-9a-fA-F]"
_IN_NAME = re.compile(
    "|".join(
        (
            rf"{_HEXC}{{8}}-{_HEXC}{{4}}-{_HEXC}{{4}}-{_HEXC}{{4}}-{_HEXC}{{12}}",  # uuid
            r"\d{4}-?\d{2}-?\d{2}(?:[T_-]?\d{2}[:-]?\d{2}(?:[:-]?\d{2})?)?",  # a date (and time)
            rf"(?<![0-9a-zA-Z]){_HEXC}{{12,}}(?![0-9a-zA-Z])",  # a hash or id
            r"\d{4,}",  # a pid, a timestamp, a counter
        )
    )
)
_MKTEMP = re.compile(r"^tmp\.[A-Za-z0-9]{6,}$")
_PYTEMP = re.compile(r"^tmp(?=[a-z0-9_]*[0-9_])[a-z0-9_]{6,12}((?:\.[A-Za-z0-9]{1,8})?)$")
_TEMPLATE = re.compile(r"^(.+\.)([A-Za-z0-9]{6,12})$")
_ROTATED = re.compile(r"^(.+\.log)(?:\.\d+)?(?:\.(?:gz|bz2|xz|zst|lz4|old))?$")
_PROC_SELF = frozenset({"self", "thread-self"})


def _random_token(tok: str) -> bool:
    """A mktemp template's random part: upper and lower case, or letters and 2+ digits."""
    upper = any(c.isupper() for c in tok)
    lower = any(c.islower() for c in tok)
    digits = sum(c.isdigit() for c in tok)
    return (upper and lower) or ((upper or lower) and digits >= 2)


def generalise_name(name: str) -> str:
    """One path component with its generated parts replaced by ``*`` (module docstring); the
    rest is kept as it is (:func:`generalise_path` gives it the component escaped)."""
    if not name or name in (".", ".."):
        return name
    if name.isdigit():
        return "*"
    m = _MKTEMP.match(name)
    if m:
        return "tmp.*"
    m = _PYTEMP.match(name)
    if m:
        return f"tmp*{m.group(1)}"
    m = _ROTATED.match(name)
    if m and m.group(0) != m.group(1):
        return f"{m.group(1)}.*"
    m = _TEMPLATE.match(name)
    if m and _random_token(m.group(2)) and not m.group(2).isdigit():
        return f"{m.group(1)}*"
    out = _IN_NAME.sub("*", name)
    return re.sub(r"\*{2,}", "*", out)


def generalise_path(path: str) -> str:
    """The glob of `path` (escaped: :func:`escape`) with generated names replaced
    (:func:`generalise_name`; ``/proc/<pid>``, ``/proc/self`` -> ``/proc/*``); a credential file
    is the glob of itself alone, and so are a relative path and a path whose generalisation could
    cover a system credential file (:func:`may_generalise`)."""
    exact = escape(path)
    if is_credential(path) or not path.startswith("/"):
        return exact
    parts = exact.split("/")
    out = [parts[0]]
    for i, name in enumerate(parts[1:], 1):
        if i == 2 and parts[1] == "proc" and name in _PROC_SELF:
            out.append("*")
        else:
            out.append(generalise_name(name))
    pattern = "/".join(out)
    return pattern if pattern == exact or may_generalise(pattern) else exact


#: a program's arguments generalised away entirely (too many shapes)
ANY_ARGS: Final = "**"
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[a-zA-Z]{1,3})?")
_HEX_ID = re.compile(r"(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}")
_OPTION = re.compile(r"-{0,2}[A-Za-z][\w.-]*")


def _arg_value(v: str) -> str:
    if _NUMBER.fullmatch(v) or _HEX_ID.fullmatch(v):
        return "*"
    if v.startswith("/"):
        return generalise_path(v)
    return "/".join(generalise_name(c) for c in v.split("/"))


def arg_shape(args: str) -> str:
    """A command line's arguments with generated values as ``*``: numbers (``30``, ``1.5s``,
    ``512M``), hex ids of 8 characters or more, and in names and paths what
    :func:`generalise_name` replaces; ``--id=1234`` and ``key=1234`` keep their key
    (``sleep 30`` and ``sleep 31`` are both ``*``)."""
    out: list[str] = []
    for tok in args.split():
        key, eq, val = tok.partition("=")
        if eq and _OPTION.fullmatch(key):
            out.append(f"{key}={_arg_value(val)}" if val else tok)
        else:
            out.append(_arg_value(tok))
    return " ".join(out)


# -- directory collapse ----------------------------------------------------------------------------


def _components(entry: str) -> list[str]:
    return entry.split("/")[1:]


class PathIndex:
    """The entries of one access of a file section (exact paths and patterns, credential files
    left out), indexed to find the pattern covering a path and the directories to collapse."""

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        self.thresholds = thresholds or Thresholds()
        self._reset()

    def _reset(self) -> None:
        self.entries: set[str] = set()
        self._patterns: dict[str, dict[str, re.Pattern[str]]] = {}  # literal dir -> pattern -> regex
        self._excluded: set[str] = set()
        self._excluded_rx: re.Pattern[str] | None = None
        self._direct: dict[str, set[str]] = {}  # directory -> entries directly in it
        self._below: dict[str, set[str]] = {}  # directory -> its subdirectories holding entries

    def add(self, entry: str) -> None:
        """Index an entry (a credential file is not indexed: it is never generalised)."""
        if entry.startswith(EXCLUDE):
            self.exclude(entry[1:])
            return
        lit = literal(entry)
        if entry in self.entries or (lit is not None and is_credential(lit)):
            return
        self.entries.add(entry)
        if lit is None:
            self._patterns.setdefault(literal_dir(entry), {})[entry] = compiled(entry)
        comps = _components(entry)
        if "**" not in comps[-1]:
            self._direct.setdefault(parent_dir(entry), set()).add(entry)
        for k in range(len(comps) - 1):
            d = "/" + "/".join(comps[:k]) if k else ""
            self._below.setdefault(d, set()).add(comps[k])

    def exclude(self, pattern: str) -> None:
        """Add an exclusion: no pattern covers what it matches."""
        if pattern not in self._excluded:
            self._excluded.add(pattern)
            self._excluded_rx = re.compile(
                "|".join(f"(?:{regex(p)})" for p in sorted(self._excluded)), re.DOTALL
            )

    def rebuild(self, entries: Iterable[str]) -> None:
        """Index exactly `entries` (after a collapse removed some)."""
        excluded = self._excluded
        self._reset()
        for p in excluded:
            self.exclude(p)
        for e in entries:
            self.add(e)

    def covering(self, path: str) -> str | None:
        """The pattern entry that covers `path` (none when an exclusion matches it)."""
        if self._excluded_rx is not None and self._excluded_rx.fullmatch(path):
            return None
        d = path
        while "/" in d:
            d = d.rsplit("/", 1)[0]
            for pattern, rx in self._patterns.get(d, {}).items():
                if rx.fullmatch(path):
                    return pattern
        return None

    def collapse_for(self, entry: str) -> tuple[str, list[str]] | None:
        """After `entry` was added: the pattern its directory (or an ancestor) collapses into and
        the entries it replaces, when a threshold is crossed (never a pattern that could cover a
        system credential file: :func:`may_generalise`)."""
        th = self.thresholds
        d = parent_dir(entry)
        star = f"{d}/*"
        if (
            len(self._direct.get(d, ())) > th.siblings
            and depth(d) >= th.min_depth_star
            and may_generalise(star)
        ):
            return star, sorted(self._direct[d])
        comps = _components(entry)
        for k in range(len(comps) - 2, 0, -1):
            d = "/" + "/".join(comps[:k])
            tree = f"{d}/**"
            if (
                len(self._below.get(d, ())) > th.subdirs
                and depth(d) >= th.min_depth_tree
                and may_generalise(tree)
            ):
                return tree, self._under(d)
        return None

    def roomiest(self) -> tuple[str, list[str]] | None:
        """The collapse that replaces the most entries, thresholds aside (to make room): a
        directory's entries into ``dir/*``, else a tree's into ``dir/**``."""
        th = self.thresholds
        stars = [
            (len(m), f"{d}/*", d)
            for d, m in self._direct.items()
            if len(m) > 1 and depth(d) >= th.min_depth_star
        ]
        for _n, pattern, d in sorted(stars, reverse=True):
            if may_generalise(pattern):
                return pattern, sorted(self._direct[d])
        trees = [
            (len(u), d, u)
            for d in self._below
            if depth(d) >= th.min_depth_tree and len(u := self._under(d)) > 1
        ]
        for _n, d, under in sorted(trees, reverse=True):
            if may_generalise(f"{d}/**"):
                return f"{d}/**", under
        return None

    def _under(self, directory: str) -> list[str]:
        prefix = directory + "/"
        return sorted(e for e in self.entries if e.startswith(prefix))
