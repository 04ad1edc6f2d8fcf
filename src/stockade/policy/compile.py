"""A WorkloadPolicy made fast to evaluate: per event in Monitor mode, per exec and open in Protect.

:class:`CompiledPolicy` answers three questions:

* :meth:`~CompiledPolicy.evaluate`: the verdict on one event (a dict of Falco fields), through the
  one mapping from events to operations (:func:`stockade.behavior.ops.operation_of`); None for an
  event that is no operation, and for what a policy does not decide per event (syscalls: those go
  to the seccomp export only);
* :meth:`~CompiledPolicy.decide_file`: a :data:`~stockade.policy.decision.FileDecider` for the
  fanotify enforcer;
* :meth:`~CompiledPolicy.net_rules`: the :class:`~stockade.policy.decision.NetRules` for the cgroup
  BPF programs.

How rules decide (model.py's docstring): rules that block, then rules that audit, then rules that
allow; within one action the first rule in document order names the verdict; what none matches gets
``spec.action`` as rule ``default``. A file open asking for several accesses (``O_RDWR``) is decided
per access, and the strictest verdict wins.

What each rule matches:

* process: ``path`` the executable (``proc.exepath``), ``parent`` the parent's executable,
  ``args`` an argument glob over ``proc.args``. A constraint on a value the event lacks (an unknown
  parent) does not match.
* file: ``path`` with any of the rule's ``access`` (read, write, exec) the open asked for, unless
  one of its ``except`` globs matches the path too (then the rule does not match: the next rule,
  or ``spec.action``, decides).
* network: ``egress`` the peer's address, port and protocol of a connect or send; ``ingress`` the
  client's address and the local port of an accept; ``listen`` the local port bound. An event
  whose protocol is unknown matches rules of either protocol. A ``workload`` or ``dns`` peer has no
  address until a resolver gives it one (``resolve``, called once per such peer when the policy is
  compiled: the caller recompiles when the answer changes); unresolved, such a rule matches
  nothing, and :meth:`~CompiledPolicy.net_rules` lists its name in ``extra["unresolved"]``.
* privileged: the operation (:data:`stockade.behavior.model.PRIVILEGED_OPS`).

Fanotify sees a path and whether the open is for exec, nothing else, so :meth:`decide_file` reads:

* ``exec``: process rules by ``path`` and file rules with access ``exec``. An allow rule's
  ``parent`` and ``args`` cannot be checked there and are left to Monitor; a block or audit rule
  with such a constraint cannot be proved to apply and is left out.
* ``open``: file rules whatever their access (fanotify cannot tell a read from a write), and process
  rules by ``path``: an executable a policy lets run may be opened (exec opens it), one it blocks may
  not (running it as ``ld.so /path/to/binary`` opens it without an exec).

Hot path: exact paths are a dict lookup, the globs of one section and action one regular
expression (:func:`stockade.policy.globs.combine`; a rule's exceptions are a negative lookahead
in its alternative, :func:`stockade.policy.globs.excepting`), verdicts are built once, and privileged
operations are decided once per operation when compiled. A policy never changes once compiled, so
each decision is remembered by what decides it (a path and access, an executable, or the whole
operation when parents or arguments matter; at most :data:`MEMO_SIZE` of each, then started
again): the paths of a workload repeat, and a repeat costs one dict lookup.
``benchmarks/policy_eval.py`` measures it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, Protocol, TypeVar

from stockade.behavior.model import PRIVILEGED_OPS, FileAccess
from stockade.behavior.ops import FileOp, NetOp, PrivOp, ProcessOp, operation_of
from stockade.policy.decision import Action, FileKind, NetRule, NetRules, Verdict
from stockade.policy.globs import combine, excepting, literal, path_glob_regex, path_match, text_glob_regex
from stockade.policy.model import NetworkRule, Peer, ProcessRule, WorkloadPolicy

__all__ = ["ACTION_ORDER", "MEMO_SIZE", "CompiledPolicy", "Network", "Resolver", "parse_ports", "strictest"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: what a workload or dns peer stands for: its address ranges now
Resolver = Callable[[Peer], list[Network]]
#: the order rules are checked in: an explicit deny wins over a broad allow
ACTION_ORDER: tuple[Action, ...] = ("block", "audit", "allow")
_RANK = {"allow": 0, "audit": 1, "block": 2}
_ANY_NETS: tuple[Network, ...] = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
_ALL_PORTS = (0, 65535)


def strictest(verdicts: Iterable[Verdict]) -> Verdict:
    """The verdict that gives least (block over audit over allow; the first of equals)."""
    return max(verdicts, key=lambda v: _RANK[v.action])


def parse_ports(ports: Sequence[int | str] | None) -> tuple[tuple[int, int], ...]:
    """A rule's ``ports`` as inclusive ranges; all ports when absent (values are checked on load)."""
    if ports is None:
        return (_ALL_PORTS,)
    out: list[tuple[int, int]] = []
    for p in ports:
        if isinstance(p, int):
            out.append((p, p))
        else:
            lo, sep, hi = p.partition("-")
            out.append((int(lo), int(hi)) if sep else (int(lo), int(lo)))
    return tuple(out)


@lru_cache(maxsize=8192)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


#: a rule's path as a _PathIndex reads it: (document order, glob, its exceptions, verdict)
_Entry = tuple[int, str, tuple[str, ...], Verdict]


class _PathIndex:
    """The paths of rules of one action: exact ones in a dict, globs in one regex (each leaving
    out its rule's exceptions); :meth:`find` names the first of them (in document order) that
    matches."""

    __slots__ = ("exact", "first_glob", "globs", "match")

    def __init__(self, entries: Sequence[_Entry]) -> None:
        self.exact: dict[str, tuple[int, Verdict]] = {}
        globs: list[tuple[int, Verdict]] = []
        regexes: list[str] = []
        for order, pattern, exceptions, verdict in entries:
            path = literal(pattern)
            if path is None:
                globs.append((order, verdict))
                regexes.append(excepting(pattern, exceptions))
            elif not any(path_match(e, path) for e in exceptions):
                self.exact.setdefault(path, (order, verdict))
        self.globs = globs
        self.first_glob = globs[0][0] if globs else 1 << 62
        self.match = combine(regexes).fullmatch if regexes else None

    def __bool__(self) -> bool:
        return bool(self.exact) or self.match is not None

    def find(self, path: str) -> tuple[int, Verdict] | None:
        """(document order, verdict) of the first rule whose path matches `path`, or None."""
        hit = self.exact.get(path)
        if self.match is None or (hit is not None and hit[0] < self.first_glob):
            return hit
        m = self.match(path)
        if m is None:
            return hit
        g = self.globs[(m.lastindex or 1) - 1]  # each alternative is one group
        return g if hit is None or g[0] < hit[0] else hit


@dataclass(frozen=True, slots=True)
class _Constrained:
    """A process rule with a parent or argument constraint, checked on its own."""

    order: int
    path: Callable[[str], Any]
    parent: Callable[[str], Any] | None
    args: Callable[[str], Any] | None
    verdict: Verdict

    def matches(self, op: ProcessOp) -> bool:
        if self.path(op.exe) is None:
            return False
        if self.parent is not None and (not op.parent or self.parent(op.parent) is None):
            return False
        return self.args is None or self.args(op.args) is not None


def _fullmatch(pattern: str, regex: str) -> Callable[[str], Any]:
    path = literal(pattern)
    if path is not None:
        return lambda s: True if s == path else None
    return combine([regex]).fullmatch


class _ProcessTier:
    """Process rules of one action."""

    __slots__ = ("constrained", "paths")

    def __init__(self, rules: Sequence[tuple[int, ProcessRule, Verdict]]) -> None:
        self.paths = _PathIndex(
            [(i, r.path, (), v) for i, r, v in rules if r.parent is None and r.args is None]
        )
        self.constrained = [
            _Constrained(
                i,
                _fullmatch(r.path, path_glob_regex(r.path)),
                None if r.parent is None else _fullmatch(r.parent, path_glob_regex(r.parent)),
                None if r.args is None else combine([text_glob_regex(r.args)]).fullmatch,
                v,
            )
            for i, r, v in rules
            if r.parent is not None or r.args is not None
        ]

    def __bool__(self) -> bool:
        return bool(self.paths) or bool(self.constrained)

    def find(self, op: ProcessOp) -> Verdict | None:
        hit = self.paths.find(op.exe)
        for c in self.constrained:
            if hit is not None and hit[0] < c.order:
                break
            if c.matches(op):
                return c.verdict
        return None if hit is None else hit[1]


@dataclass(frozen=True, slots=True)
class _NetEntry:
    """A network rule, compiled: address ranges (None: any peer), port ranges, protocol."""

    nets: tuple[Network, ...] | None
    ports: tuple[tuple[int, int], ...]
    protocol: Literal["tcp", "udp", "any"]
    verdict: Verdict

    def matches(self, op: NetOp) -> bool:
        if self.protocol != "any" and op.protocol and op.protocol != self.protocol:
            return False
        if not any(lo <= op.port <= hi for lo, hi in self.ports):
            return False
        if self.nets is None:
            return True
        ip = _address(op.ip)
        return ip is not None and any(ip.version == n.version and ip in n for n in self.nets)


class _Tier(Protocol):
    """Rules of one action that decide one kind of key (a path, an operation)."""

    def __bool__(self) -> bool: ...

    def find(self, key: Any, /) -> Verdict | None: ...


_Tiers = tuple[_Tier, ...]


def _first(tiers: _Tiers, key: Any, default: Verdict) -> Verdict:
    for tier in tiers:
        v = tier.find(key)
        if v is not None:
            return v
    return default


class _PathTiers:
    """Several path indexes per action, for the fanotify decisions: find() -> Verdict | None."""

    __slots__ = ("indexes",)

    def __init__(self, indexes: Sequence[_PathIndex]) -> None:
        self.indexes = [ix for ix in indexes if ix]

    def __bool__(self) -> bool:
        return bool(self.indexes)

    def find(self, path: str) -> Verdict | None:
        for ix in self.indexes:
            hit = ix.find(path)
            if hit is not None:
                return hit[1]
        return None


class _NetTier:
    """Network rules of one action and direction."""

    __slots__ = ("entries",)

    def __init__(self, entries: Sequence[_NetEntry]) -> None:
        self.entries = tuple(entries)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def find(self, op: NetOp) -> Verdict | None:
        for e in self.entries:
            if e.matches(op):
                return e.verdict
        return None


#: decisions a CompiledPolicy remembers per kind of key before it starts again
MEMO_SIZE = 16384


def _remember(memo: dict[Any, Verdict], key: Any, v: Verdict) -> Verdict:
    """`v`, remembered as the verdict for `key` (the memo emptied first when full)."""
    if len(memo) >= MEMO_SIZE:
        memo.clear()
    memo[key] = v
    return v


_T = TypeVar("_T", bound=_Tier)


def _live(tiers: Iterable[_T]) -> tuple[_T, ...]:
    return tuple(t for t in tiers if t)


class CompiledPolicy:
    """A :class:`WorkloadPolicy` ready to decide (module docstring)."""

    def __init__(self, policy: WorkloadPolicy, *, resolve: Resolver | None = None) -> None:
        self.policy = policy
        self.name = policy.metadata.name
        self.workload = policy.spec.workload
        self._resolve = resolve
        spec = policy.spec
        self.default = Verdict(spec.action, self.name, "default")
        self._compile_process()
        self._compile_file()
        self._compile_fanotify()
        self._unresolved: list[str] = []
        self._net = {d: self._net_tiers(d) for d in ("egress", "ingress", "listen")}
        self._priv = {op: self._privileged(op) for op in PRIVILEGED_OPS}
        # decisions already made, by what decides them (module docstring: the hot path)
        self._proc_constrained = any(t.constrained for t in self._proc)
        self._proc_memo: dict[Any, Verdict] = {}
        self._net_memo: dict[Any, Verdict] = {}
        self._file_memo: dict[str, dict[Any, Verdict]] = {a: {} for a in ("read", "write", "exec")}
        self._fan_memo: dict[str, dict[Any, Verdict]] = {"exec": {}, "open": {}}

    # -- building ------------------------------------------------------------------------------
    def _verdict(self, name: str | None, section: str, index: int, action: Action) -> Verdict:
        """A rule's verdict; an unnamed rule is named as loading names it (``file-2``)."""
        return Verdict(action, self.name, name or f"{section}-{index + 1}")

    def _process_rules(self, action: Action) -> list[tuple[int, ProcessRule, Verdict]]:
        return [
            (i, r, self._verdict(r.name, "process", i, action))
            for i, r in enumerate(self.policy.spec.process)
            if r.action == action
        ]

    def _file_entries(self, action: Action, access: FileAccess | None) -> list[_Entry]:
        return [
            (i, r.path, tuple(r.except_ or ()), self._verdict(r.name, "file", i, action))
            for i, r in enumerate(self.policy.spec.file)
            if r.action == action and (access is None or access in r.access)
        ]

    def _compile_process(self) -> None:
        self._proc = _live(_ProcessTier(self._process_rules(a)) for a in ACTION_ORDER)

    def _compile_file(self) -> None:
        self._file: dict[str, _Tiers] = {
            acc: _live(_PathTiers([_PathIndex(self._file_entries(a, acc))]) for a in ACTION_ORDER)
            for acc in ("read", "write", "exec")
        }

    def _exe_index(self, action: Action, *, constrained: bool) -> _PathIndex:
        """Process rules of `action` by path; with `constrained`, those with a parent or args too."""
        return _PathIndex(
            [
                (i, r.path, (), v)
                for i, r, v in self._process_rules(action)
                if constrained or (r.parent is None and r.args is None)
            ]
        )

    def _compile_fanotify(self) -> None:
        exec_tiers, open_tiers = [], []
        for a in ACTION_ORDER:
            exe = self._exe_index(a, constrained=a == "allow")
            exec_tiers.append(_PathTiers([exe, _PathIndex(self._file_entries(a, "exec"))]))
            open_tiers.append(_PathTiers([_PathIndex(self._file_entries(a, None)), exe]))
        self._fan: dict[str, _Tiers] = {"exec": _live(exec_tiers), "open": _live(open_tiers)}

    def _peer_nets(self, rule: NetworkRule, name: str) -> tuple[Network, ...] | None:
        peer = rule.peer
        if peer is None:
            return None
        if peer.cidr is not None:
            return (ipaddress.ip_network(peer.cidr, strict=False),)
        nets = tuple(self._resolve(peer)) if self._resolve is not None else ()
        if not nets:
            self._unresolved.append(name)
        return nets

    def _net_tiers(self, direction: str) -> tuple[_NetTier, ...]:
        tiers = []
        for a in ACTION_ORDER:
            entries = []
            for i, r in enumerate(self.policy.spec.network):
                if r.direction != direction or r.action != a:
                    continue
                v = self._verdict(r.name, "network", i, a)
                entries.append(_NetEntry(self._peer_nets(r, v.rule), parse_ports(r.ports), r.protocol, v))
            tiers.append(_NetTier(entries))
        return _live(tiers)

    def _privileged(self, op: str) -> Verdict:
        rules = [(i, r) for i, r in enumerate(self.policy.spec.privileged) if r.operation == op]
        for a in ACTION_ORDER:
            for i, r in rules:
                if r.action == a:
                    return self._verdict(r.name, "privileged", i, a)
        return self.default

    # -- deciding ------------------------------------------------------------------------------
    def evaluate(self, data: dict[str, Any]) -> Verdict | None:
        """The verdict on one event (Falco fields); None when it is no operation a policy decides."""
        op = operation_of(data)
        if op is None:
            return None
        return self.decide(op)

    def decide(self, op: ProcessOp | FileOp | NetOp | PrivOp) -> Verdict:
        """The verdict on one operation."""
        if isinstance(op, FileOp):
            if len(op.access) == 1:
                return self._decide_path(self._file_memo, self._file, op.access[0], op.path)
            return strictest(self._decide_path(self._file_memo, self._file, a, op.path) for a in op.access)
        if isinstance(op, ProcessOp):
            key: Any = op if self._proc_constrained else op.exe
            v = self._proc_memo.get(key)
            if v is None:
                v = _remember(self._proc_memo, key, _first(self._proc, op, self.default))
            return v
        if isinstance(op, NetOp):
            v = self._net_memo.get(op)
            if v is None:
                v = _remember(self._net_memo, op, _first(self._net[op.direction], op, self.default))
            return v
        return self._priv.get(op.operation, self.default)

    def _decide_path(
        self, memos: dict[str, dict[Any, Verdict]], tiers: dict[str, _Tiers], kind: str, path: str
    ) -> Verdict:
        memo = memos[kind]
        v = memo.get(path)
        if v is None:
            v = _remember(memo, path, _first(tiers[kind], path, self.default))
        return v

    def decide_file(self, kind: FileKind, path: str) -> Verdict:
        """The fanotify decision on an exec or an open of `path` (module docstring)."""
        return self._decide_path(self._fan_memo, self._fan, kind, path)

    # -- network rules for the cgroup programs --------------------------------------------------
    def exec_globs(self) -> list[str]:
        """The paths (globs) of the allow rules that can let a program run: process rules and file
        rules with access ``exec``. An exec allow-list made of files (the exec killer's) starts
        from these and keeps what :meth:`decide_file` allows."""
        procs = [r.path for r in self.policy.spec.process if r.action == "allow"]
        files = [r.path for r in self.policy.spec.file if r.action == "allow" and "exec" in r.access]
        return list(dict.fromkeys(procs + files))

    def net_rules(self, resolve: Resolver | None = None) -> NetRules:
        """The egress and bind rules of this policy for the cgroup BPF programs (module
        docstring); `resolve` overrides the resolver the policy was compiled with. Ingress rules
        have no cgroup program: Monitor checks them and the NetworkPolicy export carries them."""
        compiled = self if resolve is None else CompiledPolicy(self.policy, resolve=resolve)
        raw = compiled._priv["raw_socket"]
        extra = {"unresolved": ",".join(compiled._unresolved)} if compiled._unresolved else {}
        return NetRules(
            policy=self.name,
            egress=compiled._cgroup_rules("egress"),
            bind=compiled._cgroup_rules("listen"),
            default_action=self.policy.spec.action,
            raw_sockets=raw.action,
            raw_rule=raw.rule,
            extra=extra,
        )

    def _cgroup_rules(self, direction: str) -> tuple[NetRule, ...]:
        """The rules of `direction` as NetRules, block and audit rules first (tiers are in order)."""
        return tuple(r for tier in self._net[direction] for e in tier.entries for r in _net_rules(e))


def _net_rules(e: _NetEntry) -> list[NetRule]:
    nets = _ANY_NETS if e.nets is None else e.nets
    return [NetRule(e.verdict.rule, n, p, e.protocol, e.verdict.action) for n in nets for p in e.ports]
