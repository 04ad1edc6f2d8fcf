"""NetGuard: each container's network policy enforced by cgroup BPF programs (EPERM to the caller).

The programs (``bpf/netguard.bpf.c``, built by ``scripts/build-bpf.sh``) are loaded once and
attached, as multi-attach bpf_links, to each protected container's cgroup2 directory
(``/sys/fs/cgroup/unified/...`` on a hybrid host: a v1 directory refuses them): ``connect4/6``
and ``sendmsg4/6`` (unconnected UDP) decide the destination address, port and protocol against
the container's ``egress`` rules, ``bind4/6`` the local address and port against its ``bind``
rules (the ports it may listen on; a bind to port 0, an ephemeral port, is decided as port 0), and
``sock_create`` refuses ``SOCK_RAW`` sockets of AF_INET/AF_INET6 per ``raw_sockets``. Processes of
other cgroups, the host's included, never run these programs; a sub-cgroup of a protected
directory is covered (the programs are inherited) and decided by its nearest protected ancestor.

Semantics. Block and audit rules are checked before allow rules, each group in rule order; what no
rule matches gets ``default_action`` (rule ``default``). Loopback (127.0.0.0/8, ::1) is an address
like any other: a container that must reach its own listener on 127.0.0.1 needs a rule for it. An
IPv4-mapped IPv6 destination (``::ffff:a.b.c.d``) is decided as the IPv4 address. Each decision
that is not a plain allow is sent to a ring buffer with the cgroup id, pid, command, operation,
address, port, protocol and rule index, and turned here into a :class:`Denial` naming the policy
and the rule (``blocked`` is False for audit rules and for ``audit_only`` containers, whose
operations all go ahead). At most ``rate`` records per second and container reach the ring buffer;
the others are counted (``stats.suppressed``), so a flood of denied connects cannot flood the agent.

Rules are stored in one LPM trie keyed by (cgroup id, generation, kind, family) followed by the
address. At each rule network the agent stores the entries of every rule whose network covers it,
in precedence order: since the networks containing an address are nested, the longest match holds
every rule that can apply, so one lookup decides whatever the number of rules (a hash keyed by
(cgroup id, prefix) would need one lookup per prefix length in use). Replacing a container's rules
writes the new generation's entries, then flips its configuration (one hash element, replaced
whole), then deletes the old entries: there is never a moment where everything is allowed.

Fail closed or open. With ``fail_closed=True`` (the default) the maps are pinned under ``pin_dir``
(``pin_dir/maps``; bpffs is mounted at /sys/fs/bpf when missing) and each container's links under
``pin_dir/links/<cgroup id>``: when the agent stops with ``stop(keep=True)``, crashes or is killed,
the programs stay attached and keep denying; on restart :meth:`NetGuard.restore` reopens the
pinned links (and swaps in the newly loaded programs atomically), reads back each container's
rules and keeps enforcing; denials made while the agent was down wait in the pinned ring buffer
(up to its size) and are reported after the restart. A container must then be released explicitly
(:meth:`release`, or ``stop(keep=False)``) to lift its restrictions. With ``fail_closed=False``
nothing is pinned: the kernel detaches the programs when the agent's file descriptors close, so a
dead agent leaves the containers unrestricted (fail open), and a restart starts from nothing (pins
an earlier fail-closed run left are not touched: a fail-closed NetGuard on the same ``pin_dir``
restores or, with ``stop(keep=False)``, lifts them).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from stockade.enforce.bpfobj import RingReader, ensure_bpffs, open_object, unpin_links
from stockade.enforce.bpfobj import find_object as _find_object
from stockade.enforce.cgroup2 import cgroup_id, check_cgroup2_dir
from stockade.enforce.interface import (
    Action,
    Denial,
    DenialSink,
    EnforceError,
    NetKind,
    NetRule,
    NetRules,
    Verdict,
)
from stockade.model.errorlog import ErrorLog
from stockade.sensor.ebpf import libbpf as lb
from stockade.sensor.ebpf.ringbuf import RingBuffer

__all__ = [
    "PROGRAMS",
    "NetGuard",
    "NetGuardStats",
    "compile_rules",
    "decode_record",
    "find_object",
    "rules_from_dict",
    "rules_to_dict",
]

DEFAULT_PIN_DIR = "/sys/fs/bpf/stockade/netguard"

#: the programs attached to each protected cgroup
PROGRAMS: Final = (
    "ng_connect4",
    "ng_connect6",
    "ng_sendmsg4",
    "ng_sendmsg6",
    "ng_bind4",
    "ng_bind6",
    "ng_sock_create",
)
MAPS: Final = ("rules", "cfg", "rate", "denials", "lost", "meta")

# the C structures (little-endian, no implicit padding)
_KEY = struct.Struct("<IIIIBB2x16s")  # struct rule_key
_ENT = struct.Struct("<HHBBH")  # struct rule_ent
_N = struct.Struct("<I")
_CFG = struct.Struct("<IBBBxI4x")  # struct cg_cfg
_RATE = struct.Struct("<QQQQ")  # struct cg_rate: window start, count, suppressed, emitted
_REC = struct.Struct("<QQQII16sBBBBBxHHHI16s")  # struct ng_rec
_U64 = struct.Struct("<Q")
_META_KEY = struct.Struct("<QII")
_META_DATA = 1020
MAX_ENTRIES: Final = 32
#: the trie's fixed part (cgroup id, generation, kind, family): 16 bytes
_FIXED_BITS = 128

KIND_EGRESS, KIND_BIND = 0, 1
_ACTIONS: Final[dict[Action, int]] = {"allow": 0, "audit": 1, "block": 2}
_ACTION_NAMES: Final[dict[int, Action]] = {v: k for k, v in _ACTIONS.items()}
_PROTOS: Final = {"any": 0, "tcp": 6, "udp": 17}
_PROTO_NAMES: Final = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6", 255: "raw"}
RULE_DEFAULT, RULE_RAW = 0xFFFF, 0xFFFE
#: op code (struct ng_rec.op) -> the kind of operation
_OPS: Final[dict[int, NetKind]] = {
    1: "connect",
    2: "connect",
    3: "sendmsg",
    4: "sendmsg",
    5: "bind",
    6: "bind",
    7: "socket",
}


def find_object() -> Path | None:
    """The built NetGuard object ($STOCKADE_NETGUARD_OBJECT, else the installed one), or None."""
    return _find_object("netguard")


# -- rules as the kernel holds them ----------------------------------------------------------


def _key(cgid: int, gen: int, kind: int, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bytes:
    bits = _FIXED_BITS + net.prefixlen
    fam = net.version
    addr = net.network_address.packed.ljust(16, b"\0")
    return _KEY.pack(bits, cgid & 0xFFFFFFFF, cgid >> 32, gen, kind, fam, addr)


def _value(entries: list[tuple[int, NetRule]]) -> bytes:
    out = bytearray(_N.pack(len(entries)))
    for idx, r in entries:
        out += _ENT.pack(r.ports[0], r.ports[1], _PROTOS[r.protocol], _ACTIONS[r.action], idx)
    out += bytes(_ENT.size * (MAX_ENTRIES - len(entries)))
    return bytes(out)


def _check_rule(rule: NetRule) -> None:
    lo, hi = rule.ports
    if not 0 <= lo <= hi <= 65535:
        raise EnforceError(f"network rule {rule.name!r}: bad port range {lo}-{hi}")
    if rule.protocol not in _PROTOS or rule.action not in _ACTIONS:
        raise EnforceError(f"network rule {rule.name!r}: bad protocol or action")


def _kind_entries(cgid: int, gen: int, kind: int, seq: tuple[NetRule, ...]) -> dict[bytes, bytes]:
    """One trie entry per distinct network: every rule covering it, block/audit first, in order."""
    for r in seq:
        _check_rule(r)
    ordered = sorted(enumerate(seq), key=lambda ir: (ir[1].action == "allow", ir[0]))
    out: dict[bytes, bytes] = {}
    for net in {r.network for r in seq}:
        ents = [
            (i, r)
            for i, r in ordered
            if r.network.version == net.version and net.subnet_of(r.network)  # type: ignore[arg-type]
        ]
        if len(ents) > MAX_ENTRIES:
            raise EnforceError(
                f"{len(ents)} network rules apply to {net} (at most {MAX_ENTRIES}): merge port ranges"
            )
        out[_key(cgid, gen, kind, net)] = _value(ents)
    return out


def compile_rules(cgid: int, gen: int, rules: NetRules) -> dict[bytes, bytes]:
    """The trie entries (key -> value bytes) of `rules` for cgroup `cgid`, generation `gen`."""
    out = _kind_entries(cgid, gen, KIND_EGRESS, rules.egress)
    out.update(_kind_entries(cgid, gen, KIND_BIND, rules.bind))
    return out


def _cfg_value(gen: int, rules: NetRules, audit_only: bool, rate: int) -> bytes:
    raw = rules.raw_sockets
    return _CFG.pack(gen, _ACTIONS[rules.default_action], _ACTIONS[raw], int(audit_only), rate)


def _rule_dict(r: NetRule) -> dict[str, Any]:
    return {
        "name": r.name,
        "network": str(r.network),
        "ports": list(r.ports),
        "protocol": r.protocol,
        "action": r.action,
    }


def _rule_from(d: dict[str, Any]) -> NetRule:
    lo, hi = d["ports"]
    return NetRule(d["name"], ipaddress.ip_network(d["network"]), (lo, hi), d["protocol"], d["action"])


def rules_to_dict(rules: NetRules) -> dict[str, Any]:
    """`rules` as plain data (JSON), for the pinned state a restart reads back."""
    return {
        "policy": rules.policy,
        "egress": [_rule_dict(r) for r in rules.egress],
        "bind": [_rule_dict(r) for r in rules.bind],
        "default_action": rules.default_action,
        "raw_sockets": rules.raw_sockets,
        "raw_rule": rules.raw_rule,
        "extra": dict(rules.extra),
    }


def rules_from_dict(d: dict[str, Any]) -> NetRules:
    """The inverse of :func:`rules_to_dict`."""
    return NetRules(
        policy=d["policy"],
        egress=tuple(_rule_from(r) for r in d["egress"]),
        bind=tuple(_rule_from(r) for r in d["bind"]),
        default_action=d["default_action"],
        raw_sockets=d["raw_sockets"],
        raw_rule=d["raw_rule"],
        extra=dict(d["extra"]),
    )


# -- records -> denials ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Names:
    """What names a record of one cgroup: its container and the rules of recent generations."""

    container: str
    rules: dict[int, NetRules]


def _rule_name(rules: NetRules, op: NetKind, idx: int) -> str:
    if idx == RULE_DEFAULT:
        return "default"
    if idx == RULE_RAW:
        return rules.raw_rule
    seq = rules.bind if op == "bind" else rules.egress
    return seq[idx].name if idx < len(seq) else f"rule-{idx}"


def _target(op: NetKind, family: int, addr: bytes, port: int, proto: int, sock_type: int) -> str:
    if op == "socket":
        return f"{'inet' if family == 4 else 'inet6'}/{'raw' if sock_type == 3 else sock_type}"
    pname = _PROTO_NAMES.get(proto, str(proto))
    if family == 4:
        return f"{ipaddress.IPv4Address(addr[:4])}:{port}/{pname}"
    return f"[{ipaddress.IPv6Address(addr)}]:{port}/{pname}"


def decode_record(
    buf: Any, off: int, names: dict[int, _Names], wall_ns: Callable[[int], int]
) -> tuple[Denial | None, int, int]:
    """The :class:`Denial` of one ring-buffer record (None for a cgroup `names` does not know),
    with the record's cgroup id and its count of suppressed records. `wall_ns` turns the kernel's
    monotonic timestamp into wall time."""
    (ts, cgid, suppressed, pid, gen, comm, op, family, proto, action, blocked, port, rule, stype, _, addr) = (
        _REC.unpack_from(buf, off)
    )
    who = names.get(cgid)
    if who is None:
        return None, cgid, suppressed
    kind = _OPS.get(op, "connect")
    rules = who.rules.get(gen) or who.rules[max(who.rules)]
    verdict = Verdict(_ACTION_NAMES.get(action, "block"), rules.policy, _rule_name(rules, kind, rule))
    denial = Denial(
        kind=kind,
        container=who.container,
        target=_target(kind, family, addr, port, proto, stype),
        pid=pid,
        verdict=verdict,
        blocked=bool(blocked),
        time_ns=wall_ns(ts),
        comm=comm.split(b"\0", 1)[0].decode("utf-8", "replace"),
    )
    return denial, cgid, suppressed


# -- the enforcer ------------------------------------------------------------------------------


@dataclass
class NetGuardStats:
    """What NetGuard did: records read, denials handed on (blocked or audited), records the kernel
    suppressed (rate limit) or could not write (ring buffer full), records of unknown cgroups, and
    the sink's failures."""

    protected: int = 0
    records: int = 0
    blocked: int = 0
    audited: int = 0
    suppressed: int = 0
    lost: int = 0
    unknown: int = 0
    sink_errors: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class _Guarded:
    """One protected container: where, which cgroup, the current generation, links, trie keys."""

    container: str
    cgroup_dir: str
    cgid: int
    gen: int
    rules: NetRules
    audit_only: bool
    links: list[lb.BpfLink]
    keys: list[bytes]
    meta_parts: int


class NetGuard:
    """The network enforcer (see the module docstring): `start()`, then `protect()` / `release()`
    per container, `restore()` after a restart, `stop(keep=...)`.

    `deny_sink` receives every :class:`Denial` (from NetGuard's reader thread); `rate`: ring-buffer
    records per second and container (the rest are counted as suppressed); `clock`: wall time in
    nanoseconds, for the denials' timestamps."""

    def __init__(
        self,
        deny_sink: DenialSink,
        *,
        pin_dir: str = DEFAULT_PIN_DIR,
        fail_closed: bool = True,
        clock: Callable[[], int] = time.time_ns,
        rate: int = 100,
        object_path: str | None = None,
    ) -> None:
        self.deny_sink = deny_sink
        self.pin_dir = os.path.normpath(pin_dir)
        self.fail_closed = fail_closed
        self.clock = clock
        self.rate = rate
        self.object_path = object_path
        self._obj: lb.BpfObject | None = None
        self._fds: dict[str, int] = {}
        self._reader: RingReader | None = None
        self._lock = threading.RLock()
        self._guarded: dict[str, _Guarded] = {}
        #: cgroup id -> names, for the reader (replaced whole, never changed in place)
        self._names: dict[int, _Names] = {}
        self._counts = NetGuardStats()
        self._errors = ErrorLog("netguard", logger="stockade.enforce.netguard")
        self._ncpu = 1

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Load the programs (once), open or reuse the pinned maps, start the reader thread."""
        with self._lock:
            if self._obj is not None:
                return
            obj = open_object("netguard", self.object_path, self._load)
            self._obj = obj
            self._fds = {m: obj.map_fd(m) for m in MAPS}
            self._ncpu = lb.possible_cpus()
            ring = RingBuffer(self._fds["denials"], obj.map_max_entries("denials"))
            self._names = self._pinned_names()
            self._reader = RingReader("netguard-denials", ring, self._decode, self.deny_sink, self._errors)
            self._reader.start()

    def _load(self, obj: lb.BpfObject) -> None:
        if self.fail_closed:
            ensure_bpffs(self.pin_dir)
            os.makedirs(os.path.join(self.pin_dir, "maps"), exist_ok=True)
            os.makedirs(os.path.join(self.pin_dir, "links"), exist_ok=True)
            for m in MAPS:
                obj.set_pin_path(m, os.path.join(self.pin_dir, "maps", m))
        obj.load()

    def stop(self, *, keep: bool) -> None:
        """Stop reading denials and let go of the kernel objects. `keep`: leave the pinned links
        and maps in place (an agent restart; with ``fail_closed=False`` nothing is pinned and the
        programs detach); otherwise release every container and remove the pins."""
        if self._reader is not None:
            self._reader.stop()
            self._reader = None
        with self._lock:
            if keep:
                for g in self._guarded.values():
                    for link in g.links:
                        link.destroy()
            else:
                for g in list(self._guarded.values()):
                    self._release(g)
                self._purge_pins()
            self._guarded.clear()
            self._names = {}
            if self._obj is not None:
                self._obj.close()
                self._obj = None
            if not keep and self.fail_closed:
                shutil.rmtree(self.pin_dir, ignore_errors=True)

    # -- protecting ------------------------------------------------------------------------------

    def protect(self, container: str, cgroup_dir: str, rules: NetRules, *, audit_only: bool = False) -> None:
        """Enforce `rules` on the cgroup2 directory `cgroup_dir` of `container` (replacing the rules
        of a container already protected, with no moment where everything is allowed)."""
        with self._lock:
            self._need_started()
            path = check_cgroup2_dir(cgroup_dir)
            cgid = cgroup_id(path)
            cur = self._guarded.get(container)
            if cur is not None and cur.cgid != cgid:
                self._release(self._guarded.pop(container))  # a new cgroup: the container restarted
                cur = None
            for other in self._guarded.values():
                if other.cgid == cgid and other.container != container:
                    raise EnforceError(f"{path} is already protected for container {other.container}")
            gen = cur.gen + 1 if cur is not None else self._next_gen(cgid)
            entries = compile_rules(cgid, gen, rules)
            doc = {"container": container, "cgroup_dir": path, "audit_only": audit_only}
            doc["rules"] = rules_to_dict(rules)
            self._set_names(cgid, container, gen, rules, keep_gen=cur.gen if cur else None)
            parts = self._write_generation(cgid, gen, entries, doc)
            self._update(self._fds["cfg"], _U64.pack(cgid), _cfg_value(gen, rules, audit_only, self.rate))
            if cur is None:
                try:
                    links = self._attach(cgid, path)
                except EnforceError:
                    self._drop_cgroup_state(cgid)
                    raise
                g = _Guarded(container, path, cgid, gen, rules, audit_only, links, list(entries), parts)
                self._guarded[container] = g
                return
            self._drop_generation(cgid, cur.gen, cur.keys, cur.meta_parts)
            cur.gen, cur.rules, cur.audit_only = gen, rules, audit_only
            cur.keys, cur.meta_parts = list(entries), parts

    def _attach(self, cgid: int, path: str) -> list[lb.BpfLink]:
        obj = self._need_started()
        link_dir = os.path.join(self.pin_dir, "links", str(cgid))
        if self.fail_closed:
            self._unpin_links(link_dir)  # stale links of an earlier run on the same cgroup
            os.makedirs(link_dir, exist_ok=True)
        links: list[lb.BpfLink] = []
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for prog in PROGRAMS:
                link = obj.attach_cgroup(prog, fd)
                links.append(link)
                if self.fail_closed:
                    link.pin(os.path.join(link_dir, prog))
        except lb.BpfError as e:
            for link in links:
                link.destroy()
            self._unpin_links(link_dir)
            raise EnforceError(f"NetGuard: attaching to {path} failed: {e}") from e
        finally:
            os.close(fd)
        return links

    def release(self, container: str) -> None:
        """Lift `container`'s restrictions: detach, clear its maps, unpin (nothing if unknown)."""
        with self._lock:
            g = self._guarded.pop(container, None)
            if g is not None:
                self._release(g)

    def _release(self, g: _Guarded) -> None:
        for link in g.links:
            with contextlib.suppress(lb.BpfError):
                link.detach()
            link.destroy()
        self._unpin_links(os.path.join(self.pin_dir, "links", str(g.cgid)))
        self._drop_cgroup_state(g.cgid)

    def protected(self) -> dict[str, str]:
        """The protected containers and their cgroup2 directories."""
        with self._lock:
            return {c: g.cgroup_dir for c, g in self._guarded.items()}

    # -- restart ---------------------------------------------------------------------------------

    def restore(self) -> dict[str, str]:
        """After an agent restart: take back the containers the pinned links still enforce (their
        rules read back from the pinned maps, the links switched to the programs just loaded) and
        return them (container -> cgroup dir). Containers whose cgroup is gone are cleaned up."""
        with self._lock:
            self._need_started()
            keys_by_cgid: dict[int, list[bytes]] = {}
            for k in lb.map_keys(self._fds["rules"], _KEY.size):
                _, lo, hi, gen, *_ = _KEY.unpack(k)
                keys_by_cgid.setdefault(lo | hi << 32, []).append(k)
            known = {g.cgid for g in self._guarded.values()}
            for cgid, gen, doc in self._pinned_docs():
                if cgid not in known:
                    self._restore_one(cgid, gen, doc, keys_by_cgid.get(cgid, []))
            return {c: g.cgroup_dir for c, g in self._guarded.items()}

    def _restore_one(self, cgid: int, gen: int, doc: dict[str, Any] | None, keys: list[bytes]) -> None:
        link_dir = os.path.join(self.pin_dir, "links", str(cgid))
        path = doc["cgroup_dir"] if doc else ""
        alive = doc is not None and os.path.isdir(path) and cgroup_id(path) == cgid
        links: list[lb.BpfLink] = []
        if alive:
            try:
                links = self._reopen_links(link_dir)
            except lb.BpfError as e:
                self._errors.report(f"restoring {path}: {e}")
                alive = False
        if not alive or doc is None:
            self._unpin_links(link_dir)
            self._drop_cgroup_state(cgid, keys)
            return
        # what an update interrupted by the agent's death left of another generation
        current = [k for k in keys if _KEY.unpack(k)[3] == gen]
        for k in keys:
            if k not in current:
                self._delete(self._fds["rules"], k)
        for mk in lb.map_keys(self._fds["meta"], _META_KEY.size):
            owner, mgen, _ = _META_KEY.unpack(mk)
            if owner == cgid and mgen != gen:
                self._delete(self._fds["meta"], mk)
        rules = rules_from_dict(doc["rules"])
        g = _Guarded(doc["container"], path, cgid, gen, rules, bool(doc["audit_only"]), links, current, 0)
        g.meta_parts = self._meta_parts(cgid, gen)
        self._guarded[g.container] = g
        self._set_names(cgid, g.container, gen, rules, keep_gen=None)

    def _reopen_links(self, link_dir: str) -> list[lb.BpfLink]:
        obj = self._need_started()
        links: list[lb.BpfLink] = []
        for prog in PROGRAMS:
            link = lb.BpfLink.open_pinned(os.path.join(link_dir, prog), prog)
            links.append(link)
            try:
                link.update_program(obj, prog)
            except lb.BpfError as e:  # the old program keeps enforcing: same maps, same rules
                self._errors.report(f"keeping the pinned program {prog}: {e}")
        return links

    def _pinned_docs(self) -> Iterable[tuple[int, int, dict[str, Any] | None]]:
        """(cgroup id, generation, pinned state or None) of each cgroup in `cfg`."""
        for k in lb.map_keys(self._fds["cfg"], _U64.size):
            (cgid,) = _U64.unpack(k)
            raw = lb.map_lookup(self._fds["cfg"], k, _CFG.size)
            if raw is None:
                continue
            gen = _CFG.unpack(raw)[0]
            yield cgid, gen, self._read_meta(cgid, gen)

    def _pinned_names(self) -> dict[int, _Names]:
        """Names for the records of cgroups enforced before this start (pinned state)."""
        out: dict[int, _Names] = {}
        for cgid, gen, doc in self._pinned_docs():
            if doc is not None:
                out[cgid] = _Names(doc["container"], {gen: rules_from_dict(doc["rules"])})
        return out

    # -- maps ------------------------------------------------------------------------------------

    def _need_started(self) -> lb.BpfObject:
        if self._obj is None:
            raise EnforceError("NetGuard is not started")
        return self._obj

    def _update(self, fd: int, key: bytes, value: bytes) -> None:
        try:
            lb.map_update(fd, key, value)
        except lb.BpfError as e:
            raise EnforceError(f"NetGuard: updating a map failed: {e}") from e

    @staticmethod
    def _delete(fd: int, key: bytes) -> None:
        lb.map_delete(fd, key)

    def _next_gen(self, cgid: int) -> int:
        raw = lb.map_lookup(self._fds["cfg"], _U64.pack(cgid), _CFG.size)
        return (_CFG.unpack(raw)[0] + 1) & 0xFFFFFFFF if raw else 1

    def _write_generation(self, cgid: int, gen: int, entries: dict[bytes, bytes], doc: dict[str, Any]) -> int:
        """Write a generation's trie entries and pinned state (not yet in force); its meta parts."""
        written: list[bytes] = []
        blob = orjson.dumps(doc)
        chunks = [blob[i : i + _META_DATA] for i in range(0, len(blob), _META_DATA)]
        try:
            for k, v in entries.items():
                self._update(self._fds["rules"], k, v)
                written.append(k)
            for i, c in enumerate(chunks):
                meta = _N.pack(len(c)) + c.ljust(_META_DATA, b"\0")
                self._update(self._fds["meta"], _META_KEY.pack(cgid, gen, i), meta)
        except EnforceError:
            self._drop_generation(cgid, gen, written, len(chunks))
            raise
        return len(chunks)

    def _drop_generation(self, cgid: int, gen: int, keys: Iterable[bytes], parts: int) -> None:
        for k in keys:
            self._delete(self._fds["rules"], k)
        for i in range(parts):
            self._delete(self._fds["meta"], _META_KEY.pack(cgid, gen, i))

    def _drop_cgroup_state(self, cgid: int, keys: Iterable[bytes] | None = None) -> None:
        """Forget everything about cgroup `cgid` in the maps (its configuration first)."""
        fds = self._fds
        self._delete(fds["cfg"], _U64.pack(cgid))
        if keys is None:
            keys = [
                k
                for k in lb.map_keys(fds["rules"], _KEY.size)
                if _KEY.unpack(k)[1:3] == (cgid & 0xFFFFFFFF, cgid >> 32)
            ]
        for k in keys:
            self._delete(fds["rules"], k)
        for mk in lb.map_keys(fds["meta"], _META_KEY.size):
            if _META_KEY.unpack(mk)[0] == cgid:
                self._delete(fds["meta"], mk)
        self._delete(fds["rate"], _U64.pack(cgid))
        names = dict(self._names)
        names.pop(cgid, None)
        self._names = names

    def _read_meta(self, cgid: int, gen: int) -> dict[str, Any] | None:
        blob = b""
        for i in range(self._meta_parts(cgid, gen)):
            raw = lb.map_lookup(self._fds["meta"], _META_KEY.pack(cgid, gen, i), _N.size + _META_DATA)
            if raw is None:
                return None
            (n,) = _N.unpack_from(raw)
            blob += raw[_N.size : _N.size + n]
        try:
            doc = orjson.loads(blob) if blob else None
        except orjson.JSONDecodeError:
            return None
        return doc if isinstance(doc, dict) else None

    def _meta_parts(self, cgid: int, gen: int) -> int:
        n = 0
        while (
            lb.map_lookup(self._fds["meta"], _META_KEY.pack(cgid, gen, n), _N.size + _META_DATA) is not None
        ):
            n += 1
        return n

    def _set_names(self, cgid: int, container: str, gen: int, rules: NetRules, keep_gen: int | None) -> None:
        """Name records of generation `gen` (and, while it drains, of `keep_gen`)."""
        old = self._names.get(cgid)
        by_gen = {gen: rules}
        if old is not None and keep_gen is not None and keep_gen in old.rules:
            by_gen[keep_gen] = old.rules[keep_gen]
        names = dict(self._names)
        names[cgid] = _Names(container, by_gen)
        self._names = names

    def _unpin_links(self, link_dir: str) -> None:
        """Detach and unpin the links pinned in `link_dir`, then remove it."""
        unpin_links(link_dir)

    def _purge_pins(self) -> None:
        """Detach every link pinned under pin_dir (of cgroups never restored) and clear the maps."""
        links = os.path.join(self.pin_dir, "links")
        if os.path.isdir(links):
            for d in os.listdir(links):
                self._unpin_links(os.path.join(links, d))
        for m in ("cfg", "rules", "meta", "rate"):
            if m in self._fds:
                ksize = {"cfg": 8, "rules": _KEY.size, "meta": _META_KEY.size, "rate": 8}[m]
                for k in lb.map_keys(self._fds[m], ksize):
                    self._delete(self._fds[m], k)

    # -- denials ---------------------------------------------------------------------------------

    def _wall_ns(self, mono_ns: int) -> int:
        return self.clock() - (time.monotonic_ns() - mono_ns)

    def _decode(self, buf: Any, off: int, _size: int) -> Denial | None:
        denial, _cgid, _suppressed = decode_record(buf, off, self._names, self._wall_ns)
        c = self._counts
        c.records += 1
        if denial is None:
            c.unknown += 1
        elif denial.blocked:
            c.blocked += 1
        else:
            c.audited += 1
        return denial

    @property
    def stats(self) -> NetGuardStats:
        """A snapshot of the counters; `suppressed` and `lost` are read from the kernel."""
        c = self._counts
        with self._lock:
            cgids = [g.cgid for g in self._guarded.values()]
            suppressed = 0
            lost = 0
            if self._obj is not None:
                for cgid in cgids:
                    raw = lb.map_lookup(self._fds["rate"], _U64.pack(cgid), _RATE.size)
                    suppressed += _RATE.unpack(raw)[2] if raw else 0
                raw = lb.map_lookup(self._fds["lost"], bytes(4), 8 * self._ncpu)
                lost = sum(struct.unpack(f"<{self._ncpu}Q", raw)) if raw else 0
        return NetGuardStats(
            protected=len(cgids),
            records=c.records,
            blocked=c.blocked,
            audited=c.audited,
            suppressed=suppressed,
            lost=lost,
            unknown=c.unknown,
            sink_errors=self._reader.sink_errors if self._reader else 0,
            errors=self._errors.errors,
        )
