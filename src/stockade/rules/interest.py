"""Which path syscalls a sensor may drop in the kernel because no loaded rule cares about their path.

Most events of a busy node are opens of files no rule is about: shared libraries,
``/etc/ld.so.cache``, ``/proc/self/...``, an application's own files. Rules name the paths they
care about (``fd.name in (/etc/shadow, ...)``, ``fd.directory in (/etc/pam.d)``, ``fd.filename
endswith .pem``), so the kernel can drop a call whose path is related to none of those names
before it writes a record: no ring-buffer space, no wake-up, no decode.

**Needles.** A path is *related* to a needle when it equals it (:data:`EXACT`), starts with it
(:data:`PREFIX`), ends with it (:data:`SUFFIX`) or contains it (:data:`CONTAINS`). Each check a
condition makes on the call's path gives the needles its truth depends on: ``fd.name startswith
/etc/`` is false for every path not related to PREFIX ``/etc/``; ``fd.filename = shadow`` for every
path not related to SUFFIX ``/shadow``; ``fd.name glob /proc/*/environ`` for every path not related
to SUFFIX ``/environ`` (a glob's literal head, tail or one of its pieces: every match has them all).
``basename(<path field>)`` compares like ``fd.filename``; a check on an argument the syscall does
not have (``evt.arg.path`` of an unlinkat) is false, as the engine reads a missing field.

**Covers.** A *cover* of a condition is a set of needles such that the condition is false on every
call (of the class, below) whose path is related to none of them. It is built bottom-up on the
resolved condition, in three-valued logic (:func:`stockade.rules.prefilter.truth` decides the checks
on what the kernel knows besides the path): a check false anyway has the empty cover; a positive
check on the path has its needles; an ``and`` has the cover of one of its children (one false child
makes it false: the one whose needles relate to the fewest :data:`TYPICAL_PATHS`); an ``or`` the union of all its children's covers (each must be
false); a negated path check, a check on anything else the kernel does not know, or an unknown
node, has none. A condition without a cover keeps its syscall's class whole. The union of the
covers of all conditions is the class's needle set: a call whose path is related to none of them
matches no rule.

**Classes.** What the kernel knows besides the path splits a syscall's calls into four classes:
it succeeded or failed, and (opens) its flags only read (access mode ``O_RDONLY`` and none of
``O_CREAT``, ``O_TRUNC``, ``O_APPEND``, ``O_TMPFILE``) or not. Each class is analysed apart,
with the facts that hold for all its calls (:func:`class_facts`): Falco's ``open_write`` rules have
no say over a read-only open.

**What the kernel checks** (:meth:`InterestPlan.keeps` is the model the program implements, and
what the tests hold it to): a path that is not absolute, longer than :data:`MAX_PATH` bytes or not
in canonical form (it contains ``//`` or ``/.``, or ends in ``/``: the decoder's ``fd.name`` is then
another string) is related; so is one with a byte pair or a 4-byte window (hashed,
:func:`quad_hash`) chosen for a CONTAINS needle; otherwise EXACT and PREFIX needles are looked up in
a longest-prefix-match trie of the path, SUFFIX needles in one of the reversed path.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final, Literal

from stockade.rules import interp
from stockade.rules.ast import And, BoolConst, Check, FieldRef, ListLit, Node, Not, Or, StrLit, Transform
from stockade.rules.prefilter import (
    Const,
    Fact,
    Negative,
    NonNegative,
    OpenFlags,
    StrOtherThan,
    check_truth,
)

__all__ = [
    "CLASSES",
    "CONTAINS",
    "EXACT",
    "MAX_PATH",
    "PREFIX",
    "SUFFIX",
    "InterestPlan",
    "Needle",
    "Target",
    "call_class",
    "class_facts",
    "plan_interest",
    "quad_hash",
]

NeedleKind = Literal["exact", "prefix", "suffix", "contains"]
EXACT: Final = "exact"
PREFIX: Final = "prefix"
SUFFIX: Final = "suffix"
CONTAINS: Final = "contains"

#: succeeded read-only open, succeeded other call, failed read-only open, failed other call
READ_OK, OTHER_OK, READ_FAILED, OTHER_FAILED = 0, 1, 2, 3
CLASSES: Final = (READ_OK, OTHER_OK, READ_FAILED, OTHER_FAILED)
#: the longest path (bytes, without the NUL) the kernel compares; longer ones are kept
MAX_PATH: Final = 254
#: open(2) flags a read-only open has none of: the access mode bits, O_CREAT, O_TRUNC, O_APPEND,
#: __O_TMPFILE
READ_EXCLUDED_FLAGS: Final = 0o3 | 0o100 | 0o1000 | 0o2000 | 0o20000000
#: the flag names Falco renders that a read-only open may have (stockade.model.openflags)
_READ_FLAG_NAMES = frozenset(
    {
        "O_RDONLY",
        "O_EXCL",
        "O_NOCTTY",
        "O_NONBLOCK",
        "O_DSYNC",
        "O_DIRECT",
        "O_DIRECTORY",
        "O_NOFOLLOW",
        "O_NOATIME",
        "O_CLOEXEC",
        "O_PATH",
    }
)
#: byte pairs that make a path non-canonical (kept whole): "//", "/." and a trailing "/"
_NONCANONICAL = (b"//", b"/.", b"/\0")


#: paths a node opens all the time (shared libraries, the loader's cache, /proc/self, name service
#: and TLS files, application files): of two covers the one related to fewer of them is kept
TYPICAL_PATHS: Final = tuple(
    p.encode()
    for p in (
        "/etc/ld.so.cache",
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libssl.so.3",
        "/usr/lib/locale/locale-archive",
        "/etc/passwd",
        "/etc/group",
        "/etc/nsswitch.conf",
        "/etc/hosts",
        "/etc/resolv.conf",
        "/etc/localtime",
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/os-release",
        "/proc/self/status",
        "/proc/self/maps",
        "/proc/self/stat",
        "/proc/self/cgroup",
        "/proc/self/mountinfo",
        "/proc/1234/stat",
        "/proc/meminfo",
        "/proc/stat",
        "/sys/fs/cgroup/cpu.max",
        "/sys/devices/system/cpu/online",
        "/dev/null",
        "/dev/urandom",
        "/usr/share/zoneinfo/UTC",
        "/usr/local/lib/python3.12/site-packages/app/__init__.py",
        "/usr/share/nginx/html/index.html",
        "/opt/java/openjdk/lib/modules",
        "/app/config/settings.yaml",
        "/srv/node_modules/express/package.json",
        "/var/lib/postgresql/data/base/16384/2600",
        "/var/lib/kubelet/config.yaml",
        "/home/app/data/report.csv",
        "/root/.cache/pip/http/a1",
        "/tmp/tmpk3v1x9q0",
        "/run/containerd/io.containerd.runtime.v2.task/k8s.io/4f2a/rootfs",
    )
)


@dataclass(frozen=True, order=True, slots=True)
class Needle:
    """A string a path may be related to (equal, start with, end with, contain)."""

    kind: NeedleKind
    text: str

    @property
    def raw(self) -> bytes:
        """The needle as the kernel compares it."""
        return self.text.encode("utf-8", "surrogateescape")

    def related(self, path: bytes) -> bool:
        """Whether `path` is related to this needle."""
        t = self.raw
        if self.kind == EXACT:
            return path == t
        if self.kind == PREFIX:
            return path.startswith(t)
        if self.kind == SUFFIX:
            return path.endswith(t)
        return t in path


Cover = frozenset[Needle]
_EMPTY: Cover = frozenset()


def call_class(failed: bool, read_only: bool) -> int:
    """The class of a call: whether it failed, whether it is a read-only open."""
    return (READ_FAILED if failed else READ_OK) + (0 if read_only else 1)


def class_facts(evttype: str, cls: int, is_open: bool) -> dict[str, Fact]:
    """What every call of `evttype` in class `cls` says besides its path, as the eBPF decoder
    reports it (tests/sensor/test_ebpf_interest.py holds the decoder to it)."""
    failed = cls in (READ_FAILED, OTHER_FAILED)
    facts: dict[str, Fact] = {
        "evt.type": Const(evttype),
        "evt.dir": Const("<"),
        "evt.failed": Const(failed),
        "evt.rawres": Negative() if failed else NonNegative(),
        "evt.res": StrOtherThan(frozenset({"SUCCESS"})) if failed else Const("SUCCESS"),
    }
    if is_open:
        facts["fd.num"] = Negative() if failed else NonNegative()
        facts["fd.type"] = Const("file")
        facts["fd.typechar"] = Const("f")
        if cls in (READ_OK, READ_FAILED):
            facts["evt.arg.flags"] = OpenFlags(frozenset({"O_RDONLY"}), _READ_FLAG_NAMES)
            facts["evt.is_open_read"] = Const(True)
            facts["evt.is_open_write"] = Const(False)
            facts["evt.is_open_create"] = Const(False)
            facts["evt.is_open_exec"] = Const(False)
    return facts


# ---------------------------------------------------------------------------------------------
# the needles of one check
# ---------------------------------------------------------------------------------------------


def _glob_parts(pattern: str) -> tuple[str, str, list[str]] | None:
    """A glob's literal head, literal tail and literal pieces (fnmatch, as the interpreter reads
    it); None if it has no wildcard."""
    pieces: list[str] = []
    cur: list[str] = []
    wild = False
    head: str | None = None
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c in "*?[":
            j = i if c != "[" else interp.glob_bracket_end(pattern, i)
            if j < 0:  # an unclosed '[' is a literal
                cur.append(c)
                i += 1
                continue
            if head is None:
                head = "".join(cur)
            pieces.append("".join(cur))
            cur = []
            wild = True
            i = j + 1
            continue
        if c == "\\" and i + 1 < n:
            i += 1
            c = pattern[i]
        cur.append(c)
        i += 1
    if not wild:
        return None
    tail = "".join(cur)
    pieces.append(tail)
    return head or "", tail, [p for p in pieces if p]


def _cheapest(options: Iterable[Needle]) -> Cover | None:
    best = min((frozenset({n}) for n in options), key=_cost, default=None)
    return best


def _glob(rel: str, pattern: str) -> Cover | None:
    parts = _glob_parts(pattern)
    if parts is None:
        return _item(rel, "=", pattern)
    head, tail, pieces = parts
    opts: list[Needle] = []
    if rel == "name":
        opts += [Needle(PREFIX, head)] if head else []
        opts += [Needle(SUFFIX, tail)] if tail else []
    elif rel == "directory" and head:
        opts.append(Needle(PREFIX, head))
    elif rel == "filename":
        opts += [Needle(SUFFIX, tail)] if tail else []
        opts += [Needle(CONTAINS, "/" + head)] if head else []
    opts += [Needle(CONTAINS, p) for p in pieces]
    return _cheapest(opts)


_NAME_KINDS: dict[str, NeedleKind] = {"=": EXACT, "in": EXACT, "startswith": PREFIX, "pmatch": PREFIX}
_NAME_KINDS["endswith"] = SUFFIX


def _item(rel: str, op: str, it: str) -> Cover | None:
    """The needles of `<path field> op it`, for the path itself, its directory or its file name."""
    if op == "glob":
        return _glob(rel, it)
    if op == "contains":
        return frozenset({Needle(CONTAINS, it)}) if it else None
    if rel == "name":
        kind = _NAME_KINDS.get(op)
        return None if kind is None else frozenset({Needle(kind, it)})
    if rel == "directory":
        if op in ("=", "in"):
            return frozenset({Needle(EXACT, it), Needle(PREFIX, it.rstrip("/") + "/")})
        if op in ("startswith", "pmatch"):
            return frozenset({Needle(PREFIX, it)})
        return frozenset({Needle(CONTAINS, it)}) if op == "endswith" and it else None
    # the file name
    if op in ("=", "in"):
        return frozenset({Needle(SUFFIX, "/" + it)})
    if op == "startswith":
        return frozenset({Needle(CONTAINS, "/" + it)})
    return frozenset({Needle(SUFFIX, it)}) if op == "endswith" else None


_OPS = {"=": "=", "==": "=", "in": "in", "intersects": "in", "startswith": "startswith"}
_OPS.update({"endswith": "endswith", "contains": "contains", "glob": "glob", "pmatch": "pmatch"})


def _check_cover(node: Check, path_fields: frozenset[str]) -> Cover | None:
    """The needles a positive check on the call's path depends on; None if it is not one."""
    lhs = node.lhs
    op = _OPS.get(node.op)
    basename = isinstance(lhs, Transform) and lhs.name == "basename" and len(lhs.args) == 1
    if basename:
        lhs = lhs.args[0]  # type: ignore[union-attr,assignment]
    if op is None or not isinstance(lhs, FieldRef) or lhs.arg is not None or node.modifier is not None:
        return None
    if basename:
        if lhs.name not in path_fields:
            return None
        rel = "filename"  # of an absolute path, as the kernel compares them
    elif lhs.name in path_fields:
        rel = "name"
    elif lhs.name in ("fd.directory", "fd.filename"):
        rel = lhs.name[3:]
    else:
        return None
    rhs = node.rhs
    if isinstance(rhs, StrLit):
        items = [rhs.value]
    elif isinstance(rhs, ListLit):
        items = [i.value for i in rhs.items]
    else:
        return None
    out: set[Needle] = set()
    for it in items:
        c = _item(rel, op, it)
        if c is None:
            return None
        out |= c
    return frozenset(out)


# ---------------------------------------------------------------------------------------------
# covers of whole conditions
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=8192)
def _cost(c: Cover) -> tuple[int, int, int]:
    """How much of a node's usual traffic a cover keeps: the typical paths related to it, then
    (fewer is better) its CONTAINS needles, then its shortest needle (longer is better)."""
    hits = sum(1 for p in TYPICAL_PATHS if any(n.related(p) for n in c))
    return hits, sum(n.kind == CONTAINS for n in c), -min((len(n.text) for n in c), default=1 << 16)


def _reads_missing(node: Check, present: frozenset[str] | None) -> bool:
    """Whether the check reads an argument the syscall does not have (``evt.arg.path`` of an
    unlinkat), directly or through ``basename()``: a missing field makes every comparison false."""
    lhs = node.lhs
    if isinstance(lhs, Transform) and lhs.name == "basename" and len(lhs.args) == 1:
        lhs = lhs.args[0]  # type: ignore[assignment]
    return (
        present is not None
        and isinstance(lhs, FieldRef)
        and lhs.arg is None
        and lhs.name.startswith("evt.arg.")
        and lhs.name not in present
    )


@dataclass(slots=True)
class _Analysis:
    facts: Mapping[str, Fact]
    path_fields: frozenset[str]
    #: the evt.arg.* fields the syscall has (None: unknown)
    present: frozenset[str] | None = None

    def run(self, node: Node, negated: bool = False) -> tuple[bool | None, Cover | None]:
        """(truth, cover) of `node` (of its negation if `negated`) on the class's calls."""
        if isinstance(node, Not):
            return self.run(node.child, not negated)
        if isinstance(node, BoolConst):
            return self._known(node.value != negated)
        if isinstance(node, Check):
            if _reads_missing(node, self.present):
                return self._known(negated)
            t = check_truth(node, self.facts)
            if t is not None:
                return self._known(t != negated)
            return None, None if negated else _check_cover(node, self.path_fields)
        if isinstance(node, And | Or):
            # under a negation an `and` is an `or` of the negated children, and the other way round
            conj = isinstance(node, And) != negated
            return self._conj(node.children, negated) if conj else self._disj(node.children, negated)
        return None, None  # an unresolved macro: unknown

    @staticmethod
    def _known(t: bool) -> tuple[bool, Cover | None]:
        return t, (None if t else _EMPTY)

    def _conj(self, children: tuple[Node, ...], negated: bool) -> tuple[bool | None, Cover | None]:
        best: Cover | None = None
        truth: bool | None = True
        for c in children:
            t, cv = self.run(c, negated)
            if t is False:
                return False, _EMPTY
            if t is None:
                truth = None
            if cv is not None and (best is None or _cost(cv) < _cost(best)):
                best = cv
        return truth, (None if truth else best)

    def _disj(self, children: tuple[Node, ...], negated: bool) -> tuple[bool | None, Cover | None]:
        acc: set[Needle] | None = set()
        truth: bool | None = False
        for c in children:
            t, cv = self.run(c, negated)
            if t is True:
                return True, None
            if t is None:
                truth = None
            if cv is None:
                acc = None
            elif acc is not None:
                acc |= cv
        return truth, (None if acc is None else frozenset(acc))


def cover(
    node: Node, facts: Mapping[str, Fact], path_fields: frozenset[str], present: frozenset[str] | None = None
) -> Cover | None:
    """Needles such that `node` is false on every call the facts describe whose path (read by
    `path_fields`, with fd.directory and fd.filename) is related to none of them; None if there
    are none. `present`: the evt.arg.* fields the calls have (others are missing)."""
    return _Analysis(facts, path_fields, present).run(node)[1]


# ---------------------------------------------------------------------------------------------
# the plan
# ---------------------------------------------------------------------------------------------


def quad_hash(window: int) -> int:
    """The bit of a 4-byte window (first byte lowest) in the kernel's 65,536-bit window map."""
    return ((window * 2654435761) & 0xFFFFFFFF) >> 16


def _windows(needles: Iterable[Needle]) -> tuple[frozenset[int], frozenset[int]]:
    """The byte pairs (first << 8 | second; NUL after the last byte) and the hashed 4-byte windows
    (:func:`quad_hash`) the kernel looks for: for each CONTAINS needle, its least common window
    (every pair starting with a one-byte needle); and the pairs of a non-canonical path."""
    pairs = {(a << 8) | b for a, b in _NONCANONICAL}
    quads: set[int] = set()
    for n in needles:
        if n.kind != CONTAINS:
            continue
        t = n.raw
        if len(t) == 1:
            pairs.update((t[0] << 8) | b for b in range(256))
        elif len(t) < 4:
            a, b = min(itertools.pairwise(t), key=lambda ab: _rarity(bytes(ab)))
            pairs.add((a << 8) | b)
        else:
            w = min((t[i : i + 4] for i in range(len(t) - 3)), key=_rarity)
            quads.add(quad_hash(int.from_bytes(w, "little")))
    return frozenset(pairs), frozenset(quads)


def _rarity(window: bytes) -> tuple[int, float]:
    """How common a window is in paths (lower: rarer): in the typical paths, then by its bytes."""
    score = 1.0
    for byte in window:
        c = chr(byte)
        score *= 1.0 if c.islower() or c == "/" else 0.5 if c.isdigit() or c in ".-_" else 0.1
    return sum(window in p for p in TYPICAL_PATHS), score


@dataclass(frozen=True, slots=True)
class InterestPlan:
    """What the kernel drops: per syscall, the classes (bit mask) whose calls on an unrelated path
    are dropped; per needle, the classes (bit mask) in which a path related to it is kept."""

    classes: Mapping[str, int] = field(default_factory=dict)
    needles: Mapping[Needle, int] = field(default_factory=dict)
    #: the byte pairs and hashed 4-byte windows the kernel looks for (of the CONTAINS needles)
    pairs: frozenset[int] = field(init=False, default=frozenset())
    quads: frozenset[int] = field(init=False, default=frozenset())

    def __post_init__(self) -> None:
        pairs, quads = _windows(self.needles)
        object.__setattr__(self, "pairs", pairs)
        object.__setattr__(self, "quads", quads)

    def keeps(self, evttype: str, cls: int, path: bytes) -> bool:
        """Whether the kernel keeps a call of `evttype` in class `cls` on `path` (the model)."""
        if not (self.classes.get(evttype, 0) >> cls) & 1:
            return True
        return self.related(cls, path)

    def related(self, cls: int, path: bytes) -> bool:
        """Whether `path` may matter to some rule in class `cls`."""
        if not path.startswith(b"/") or len(path) > MAX_PATH or b"\0" in path:
            return True
        pairs, quads = self.pairs, self.quads
        z = path + b"\0"
        if any(((z[i] << 8) | z[i + 1]) in pairs for i in range(len(path))):
            return True
        if quads and any(
            quad_hash(int.from_bytes(path[i : i + 4], "little")) in quads for i in range(len(path) - 3)
        ):
            return True
        bit = 1 << cls
        return any(mask & bit and n.kind != CONTAINS and n.related(path) for n, mask in self.needles.items())

    @property
    def active(self) -> bool:
        """Whether it drops anything."""
        return any(self.classes.values())


@dataclass(frozen=True, slots=True)
class Target:
    """A syscall the kernel can drop by its path: what its calls say."""

    #: the fields whose value is the path as given (for an absolute path, fd.name is too)
    fields: frozenset[str]
    #: an open (its result is a descriptor: fd.num, fd.type)
    is_open: bool
    #: the kernel knows its open(2) flags (read-only calls are a class of their own)
    has_flags: bool
    #: the evt.arg.* fields its events have (None: unknown; a rule reading another finds it missing)
    args: frozenset[str] | None = None

    @property
    def classes(self) -> tuple[int, ...]:
        """The classes its calls fall in."""
        return CLASSES if self.has_flags else (OTHER_OK, OTHER_FAILED)


def plan_interest(conditions: Iterable[Node], syscalls: Mapping[str, Target]) -> InterestPlan:
    """The plan for `conditions` over `syscalls` (by name)."""
    conds = list(conditions)
    classes: dict[str, int] = {}
    needles: dict[Needle, int] = {}
    for name, target in syscalls.items():
        for cls in target.classes:
            facts = class_facts(name, cls, target.is_open)
            found: set[Needle] = set()
            for c in conds:
                cv = cover(c, facts, target.fields, target.args)
                if cv is None:
                    break
                found |= cv
            else:
                classes[name] = classes.get(name, 0) | (1 << cls)
                for n in found:
                    needles[n] = needles.get(n, 0) | (1 << cls)
    return InterestPlan(classes, needles)
