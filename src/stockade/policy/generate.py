"""A WorkloadPolicy from a learned profile: allow what the workload was seen to do, and nothing else.

:func:`generate_policy` turns each section of a :class:`~stockade.behavior.model.Profile` into
allow rules, under ``spec.action`` (block by default) for everything else:

* processes: one rule per executable; its ``parent`` only when every sighting had the same known
  parent. Argument shapes are not turned into ``args`` (one glob cannot hold several shapes, and
  a too narrow rule is what breaks learned policies); Monitor sees them in the profile.
  Executables are exact paths (a ``*``, ``?`` or ``[`` in one is escaped, :func:`globs.escape`);
  one without an absolute path cannot be named by a rule and is left out (a dry run shows it).
* files: one rule per path or pattern (the profile's entries are kept as they are: profiles and
  policies share one glob dialect, :mod:`stockade.behavior.pathglob`) with the accesses seen, in
  the order read, write, exec. A profile entry that is no valid policy glob is taken as an exact
  path. A pattern's ``except`` lists the profile's exclusions (its ``!`` entries of those accesses)
  that could match a path of it (:func:`~stockade.behavior.generalise.exclusions_of`; a relative
  ``**/*.key`` written ``/**/*.key``): a credential file a pattern would cover is allowed only when
  it was seen itself (its own exact rule). A pattern with an exclusion no policy glob can write is
  left out rather than allowed whole.
* network: egress as one rule per peer (``cidr:``, ``workload:``, ``dns:`` as recorded; no peer:
  any) and protocol, with the ports seen (port 0, any, makes the rule for any port); ingress and
  listen by port: one rule per protocol with the ports seen, any peer.
* privileged operations: one rule per operation seen.
* syscalls: the x86-64 system calls seen, sorted; None (not restricted) when the profile has none.
* what the container runtime itself reads in the container to run a command there (``runc init``
  reads ``/etc/passwd`` and ``/etc/group`` before every ``podman exec`` / ``kubectl exec``, health
  probes included): allowed for read in every container workload's policy, learned or not (the
  runtime's own operations are not learned: :func:`stockade.behavior.ops.is_runtime`), so that an
  exec into a protected container keeps working.

Rule names come from what the rule allows (``exec-usr-sbin-httpd``, ``read-etc-nginx-nginx-conf``,
``egress-tcp-cidr-10-0-0-0-8``, ``listen-tcp``, ``privileged-setuid``), made unique by a
``-2``, ``-3`` suffix in the order rules are written. The same profile gives the same policy.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import Literal

from stockade.behavior.generalise import EXCLUDE, exclusions_of
from stockade.behavior.model import FileAccess, NetDirection, Profile
from stockade.policy.decision import Action
from stockade.policy.globs import check_path_glob, escape, literal
from stockade.policy.model import (
    FileRule,
    Metadata,
    NetworkRule,
    Peer,
    PolicyError,
    PolicySpec,
    PrivilegedRule,
    ProcessRule,
    WorkloadPolicy,
)
from stockade.policy.syscalls import is_syscall

__all__ = ["GENERATED_ANNOTATION", "generate_policy", "slug"]

#: the annotation a generated policy carries: which profile it came from
GENERATED_ANNOTATION = "stockade.dev/generated-from"
_ACCESS_ORDER: tuple[FileAccess, ...] = ("read", "write", "exec")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_MAX_NAME = 63


def slug(text: str) -> str:
    """`text` as a name: lower case letters, digits and dashes, at most 63 characters (a longer
    one keeps its start and a hash of the whole)."""
    s = _NON_ALNUM.sub("-", text.lower()).strip("-") or "root"
    if len(s) <= _MAX_NAME:
        return s
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return s[: _MAX_NAME - 9].rstrip("-") + "-" + digest


class _Names:
    """Unique rule names, in the order asked."""

    def __init__(self) -> None:
        self.taken: set[str] = {"default"}

    def __call__(self, base: str) -> str:
        name, n = base, 1
        while name in self.taken:
            n += 1
            name = f"{base[: _MAX_NAME - 4]}-{n}"
        self.taken.add(name)
        return name


def _exact(path: str) -> str | None:
    """An exact path as a glob; None when it is not absolute."""
    return escape(path) if path.startswith("/") else None


def _process_rules(profile: Profile, names: _Names) -> list[ProcessRule]:
    parents: dict[str, set[str]] = defaultdict(set)
    for exe, pexe, _args in profile.processes:
        parents[exe].add(pexe)
    rules = []
    for exe in sorted(parents):
        path = _exact(exe)
        if path is None:
            continue
        seen = parents[exe]
        only = next(iter(seen)) if len(seen) == 1 else ""
        parent: str | None = _exact(only) if only else None
        rules.append(ProcessRule(name=names(slug(f"exec-{exe}")), path=path, parent=parent))
    return rules


def _absolute(pattern: str) -> str:
    """A profile's exclusion as a policy glob: a relative ``**/x`` is ``/**/x`` (the same on the
    absolute paths a file rule sees)."""
    return pattern if pattern.startswith("/") else "/" + pattern


def _exceptions(pattern: str, excluded: Iterable[str]) -> list[str] | None:
    """The policy globs of the exclusions that could match a path of `pattern` (none for an exact
    path: it was seen itself); None when one cannot be written as a policy glob."""
    if literal(pattern) is not None:
        return []
    out = [_absolute(x) for x in exclusions_of(pattern, sorted(set(excluded)))]
    return None if any(check_path_glob(x) is not None for x in out) else out


def _file_rules(profile: Profile, names: _Names) -> list[FileRule]:
    accesses: dict[str, set[FileAccess]] = defaultdict(set)
    excluded: dict[FileAccess, list[str]] = defaultdict(list)
    for path, access in profile.files:
        if path.startswith(EXCLUDE):
            excluded[access].append(path[len(EXCLUDE) :])
        else:
            accesses[path].add(access)
    rules = []
    for path in sorted(accesses):
        lit = literal(path)
        pattern = path if check_path_glob(path) is None else _exact(path if lit is None else lit)
        if pattern is None:
            continue
        seen = [a for a in _ACCESS_ORDER if a in accesses[path]]
        exceptions = _exceptions(pattern, (x for a in seen for x in excluded[a]))
        if exceptions is None:
            continue
        rules.append(
            FileRule(
                name=names(slug("-".join(seen) + "-" + (path if lit is None else lit))),
                path=pattern,
                except_=exceptions or None,
                access=seen,
            )
        )
    return rules


def _peer(text: str) -> Peer | None:
    """A profile's peer (``cidr:``, ``workload:``, ``dns:``, ``""``) as a rule's."""
    if not text:
        return None
    kind, _, value = text.partition(":")
    if kind == "cidr":
        return Peer(cidr=value)
    if kind == "workload":
        return Peer(workload=value)
    if kind == "dns":
        return Peer(dns=value)
    raise PolicyError(f"profile peer {text!r} is none of cidr:, workload:, dns:")


def _canonical_peer(text: str) -> str:
    """A profile's peer with its network in canonical form (``cidr:10.0.0.0/8``)."""
    kind, _, value = text.partition(":")
    if kind == "cidr":
        return f"cidr:{ipaddress.ip_network(value, strict=False)}"
    return text


def _ports(ports: Iterable[int]) -> list[int | str] | None:
    got = sorted(set(ports))
    return None if not got or got[0] == 0 else list(got)


Protocol = Literal["tcp", "udp", "any"]


def _protocol(proto: str) -> Protocol:
    return "tcp" if proto == "tcp" else "udp" if proto == "udp" else "any"


def _network_rules(profile: Profile, names: _Names) -> list[NetworkRule]:
    groups: dict[tuple[NetDirection, str, Protocol], set[int]] = defaultdict(set)
    for direction, peer, port, proto in profile.network:
        key_peer = _canonical_peer(peer) if direction == "egress" else ""
        groups[(direction, key_peer, _protocol(proto))].add(port)
    order = {"egress": 0, "ingress": 1, "listen": 2}
    rules = []
    for direction, peer, proto in sorted(groups, key=lambda k: (order[k[0]], k[1], k[2])):
        base = f"{direction}-{proto}" + (f"-{peer}" if peer else "")
        rules.append(
            NetworkRule(
                name=names(slug(base)),
                direction=direction,
                peer=_peer(peer),
                ports=_ports(groups[(direction, peer, proto)]),
                protocol=proto,
            )
        )
    return rules


#: files the container runtime reads in a container to run a command there (module docstring)
RUNTIME_READS = ("/etc/passwd", "/etc/group")


def _runtime_reads(profile: Profile, names: _Names) -> list[FileRule]:
    if not profile.workload.startswith(("container/", "k8s/")):
        return []
    seen = {path for path, access in profile.files if access == "read"}
    return [
        FileRule(name=names(f"runtime-read-{slug(path)}"), path=path, access=["read"])
        for path in RUNTIME_READS
        if path not in seen
    ]


def generate_policy(profile: Profile, *, name: str | None = None, action: Action = "block") -> WorkloadPolicy:
    """The policy that allows what `profile` saw (module docstring); `action` for the rest."""
    names = _Names()
    syscalls = sorted(s for s in profile.syscalls if is_syscall(s))
    annotations = {GENERATED_ANNOTATION: f"profile {profile.workload} version {profile.version}"}
    if profile.image_digest:
        annotations["stockade.dev/image-digest"] = profile.image_digest
    return WorkloadPolicy(
        apiVersion="stockade.dev/v1alpha1",
        kind="WorkloadPolicy",
        metadata=Metadata(name=name or slug(profile.workload), annotations=annotations),
        spec=PolicySpec(
            workload=profile.workload,
            action=action,
            process=_process_rules(profile, names),
            file=_file_rules(profile, names) + _runtime_reads(profile, names),
            network=_network_rules(profile, names),
            privileged=[
                PrivilegedRule(name=names(f"privileged-{op}"), operation=op)
                for op in sorted(profile.privileged)
            ],
            syscalls=syscalls if profile.syscalls else None,
        ),
    )
