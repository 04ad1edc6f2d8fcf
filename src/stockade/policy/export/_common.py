"""What the exporters share: the workload a policy names, path globs, ports, rule names, actions,
and the YAML text with its comment header.

Workload ids (:mod:`stockade.behavior.workload`) are read back into their parts here:
``k8s/<namespace>/<kind>/<owner>``, ``container/<repository>/<name>`` (the repository may hold
slashes, the name never does: the last part is the name; ``container/<repository>`` alone, a
container without a name, is read as such only when nothing follows the first part) and ``host``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import yaml

from stockade.behavior.model import PRIVILEGED_OPS
from stockade.behavior.pathglob import SPECIAL
from stockade.behavior.workload import parse_workload_id
from stockade.policy.decision import Action
from stockade.policy.export.interface import ExportError
from stockade.policy.globs import literal
from stockade.policy.model import PolicySpec, WorkloadPolicy

__all__ = [
    "GLOB_CHARS",
    "PathShape",
    "Target",
    "comment_header",
    "dump_yaml",
    "exact",
    "has_glob",
    "named",
    "network_of",
    "path_shape",
    "port_ranges",
    "privileged_actions",
    "target_of",
]

#: the characters that make a path a glob (Stockade's * and **; ? and [...] as fnmatch reads them)
GLOB_CHARS = SPECIAL

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Target:
    """A workload id's parts."""

    kind: Literal["k8s", "container", "host"]
    id: str
    namespace: str = ""
    owner_kind: str = ""
    owner: str = ""
    repository: str = ""
    name: str = ""


def target_of(workload: str) -> Target:
    """The parts of workload id `workload` (module docstring); ExportError when it is not one."""
    ref = parse_workload_id(workload)
    if ref is None:
        raise ExportError(
            f"spec.workload: {workload!r} is not a workload id "
            "(k8s/<namespace>/<kind>/<owner>, container/<repository>/<name> or host)"
        )
    return Target(
        ref.kind,
        ref.id,
        namespace=ref.namespace or "",
        owner_kind=ref.owner_kind or "",
        owner=ref.owner or "",
        repository=ref.image_repository or "",
        name=ref.name or "",
    )


def has_glob(text: str) -> bool:
    """Whether `text` holds a wildcard (a glob that may match several texts; an escaped path such
    as ``/usr/bin/[[]`` holds none: :func:`stockade.policy.globs.literal`)."""
    return literal(text) is None


def exact(text: str) -> str:
    """The one path or name a glob without a wildcard matches (``/usr/bin/[[]``: ``/usr/bin/[``)."""
    lit = literal(text)
    return text if lit is None else lit


@dataclass(frozen=True, slots=True)
class PathShape:
    """How a policy path reads: ``exact`` (`base` is the path), ``dir`` (``/d/*``: the entries of
    `base`), ``tree`` (``/d/**``: everything below `base`) or ``pattern`` (any other glob: `base`
    is the directory before its first wildcard, `recursive` whether it may match below that
    directory's entries). `base` ends with ``/`` except for ``exact``, and is a path (escaped
    characters read back: :func:`exact`); `depth` is the number of components of the path."""

    kind: Literal["exact", "dir", "tree", "pattern"]
    base: str
    recursive: bool
    depth: int


def path_shape(path: str) -> PathShape:
    """The shape of policy path `path` (absolute; ``*`` within a component, ``**`` any depth)."""
    comps = path.rstrip("/").split("/") if path != "/" else [""]
    depth = len(comps) - 1
    first = next((i for i, c in enumerate(comps) if has_glob(c)), None)
    if first is None:
        return PathShape("exact", "/".join(exact(c) for c in comps) or "/", False, depth)
    base = "/".join(exact(c) for c in comps[:first]) + "/"
    rest = comps[first:]
    if rest == ["**"]:
        return PathShape("tree", base, True, depth)
    if rest == ["*"]:
        return PathShape("dir", base, False, depth)
    return PathShape("pattern", base, len(rest) > 1 or "**" in rest[0], depth)


def port_ranges(ports: Sequence[int | str] | None, where: str) -> list[tuple[int, int]] | None:
    """The inclusive port ranges of a rule's `ports` (None: any port); ExportError naming `where`
    for a port that is not 1-65535 or a range ``"LOW-HIGH"`` of them."""
    if ports is None:
        return None
    out: list[tuple[int, int]] = []
    for p in ports:
        lo_s, _, hi_s = str(p).strip().partition("-")
        try:
            lo, hi = int(lo_s), int(hi_s or lo_s)
        except ValueError:
            raise ExportError(f"{where}: port {p!r} is not a number or a range LOW-HIGH") from None
        if not 1 <= lo <= hi <= 65535:
            raise ExportError(f"{where}: port {p!r} is not within 1-65535 (LOW-HIGH with LOW <= HIGH)")
        if (lo, hi) not in out:
            out.append((lo, hi))
    return out


def network_of(cidr: str, where: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A peer's CIDR (or bare address) as a network (host bits cleared); ExportError when invalid."""
    try:
        return ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError:
        raise ExportError(f"{where}: {cidr!r} is not an IP address or CIDR") from None


def named(rules: Iterable[R], prefix: str) -> Iterator[tuple[str, R]]:
    """Each rule with its name: its own, else ``<prefix>-<n>`` (1-based, as the policy loader
    names them)."""
    for i, r in enumerate(rules, 1):
        yield (getattr(r, "name", None) or f"{prefix}-{i}"), r


def privileged_actions(spec: PolicySpec) -> dict[str, tuple[Action, str]]:
    """Each privileged operation's action and deciding rule: the first block or audit rule naming
    it, else the first allow rule naming it, else ``spec.action`` and ``"default"``."""
    out: dict[str, tuple[Action, str]] = {}
    rules = list(named(spec.privileged, "privileged"))
    for op in PRIVILEGED_OPS:
        mine = [(n, r) for n, r in rules if r.operation == op]
        mine.sort(key=lambda nr: nr[1].action == "allow")  # block and audit rules first (stable)
        out[op] = (mine[0][1].action, mine[0][0]) if mine else (spec.action, "default")
    return out


def comment_header(policy: WorkloadPolicy, what: str, notes: Sequence[str], warnings: Sequence[str]) -> str:
    """YAML comment lines: what the text is, from which policy, the notes, then the warnings."""
    lines = [
        f"# {what}, exported by Stockade from WorkloadPolicy {policy.metadata.name}",
        f"# (workload {policy.spec.workload}, spec.action {policy.spec.action}).",
    ]
    lines += [f"# {n}" for n in notes]
    lines += [f"# warning: {w}" for w in warnings]
    return "\n".join(lines) + "\n"


def dump_yaml(data: Any) -> str:
    """`data` as block-style YAML, keys in the order given, each value on one line (deterministic)."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True, width=1 << 16)
