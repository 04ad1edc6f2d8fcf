"""Learning a workload's profile from its syscall events.

``Learner(profile).observe(event_data)`` reads one event (a flat dict of Falco fields), records its
syscall and the operation :func:`stockade.behavior.ops.operation_of` finds in it, and returns what
was new, in the words of :mod:`stockade.behavior.describe` (empty when nothing was).

* **Repeats are cheap**: every operation already learned is remembered with the entries it counts
  for, so a repeated event costs ``operation_of``, one dict lookup and the counters. The cache
  holds at most ``cache_size`` operations (cleared when full, and whenever a generalisation
  replaces entries). Repeats deduplicated before the learner (in the kernel) are added with
  :meth:`Learner.repeated`.
* **Processes**: (executable, parent executable, argument shape) with generated argument values as
  ``*`` (:func:`~stockade.behavior.generalise.arg_shape`); more than ``args_variants`` shapes of
  one program under one parent become ``**`` (any arguments).
* **Files**: (glob, access): a path as the glob of itself (:mod:`stockade.behavior.pathglob`:
  ``/srv/a?b`` is ``/srv/a[?]b``) or a pattern, generalised by
  :mod:`stockade.behavior.generalise` (generated names, directory collapse; credential files
  stay exact; patterns bring their exclusions).
* **Network**: (direction, peer, port, protocol). The peer is ``workload:ID`` when `peer_of`
  knows the address, else ``dns:NAME`` when `dns_of` names it, else ``cidr:IP/32`` (``/128``);
  more than ``cidr_after`` addresses of one /24 (/64) for the same direction, port and protocol
  become the network. Egress keeps the peer's port, ingress the local port served; ``listen`` is
  (port, protocol) with no peer, and an ephemeral bind (port 0) is not a listening port.
* **Bounded**: each section holds at most ``max_entries`` entries (file exclusions aside). When
  one is full, the learner first generalises further (the largest directory, argument set or
  address group collapses whatever the thresholds), then counts each behaviour it still cannot
  record in ``profile.overflow`` and reports it (once while the cache remembers it): nothing is
  dropped silently.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any, Final, get_args

from stockade.behavior import describe
from stockade.behavior.generalise import (
    ANY_ARGS,
    EXCLUDE,
    PathIndex,
    Thresholds,
    arg_shape,
    escape,
    exclusions,
    generalise_path,
    is_credential,
    is_pattern,
)
from stockade.behavior.model import FileAccess, NetDirection, Profile, Seen
from stockade.behavior.ops import FileOp, NetOp, Operation, PrivOp, ProcessOp, operation_of
from stockade.model.clock import SYSTEM, Clock

__all__ = ["DEFAULT_MAX_ENTRIES", "Learner", "NameOf"]

#: entries per profile section unless told otherwise
DEFAULT_MAX_ENTRIES: Final = 2000

#: an address -> a name (a workload id, a DNS name), or None
NameOf = Callable[[str], str | None]

_NetKey = tuple[NetDirection, str, int, str]
_ProcKey = tuple[str, str, str]
_Learned = tuple[tuple[Seen, ...], list[str]]
_NOTHING: tuple[Seen, ...] = ()
_ACCESSES: tuple[FileAccess, ...] = get_args(FileAccess)


def _key(op: Operation) -> tuple[object, ...]:
    """The operation as a plain tuple, hashed and compared in C: a dict lookup by it costs about
    half of one by the frozen dataclass (measured; the hot path of a repeat). The four kinds of
    operation have four lengths, so their keys never collide."""
    if isinstance(op, FileOp):
        return (op.path, op.access)
    if isinstance(op, ProcessOp):
        return (op.exe, op.parent, op.args)
    if isinstance(op, NetOp):
        return (op.direction, op.ip, op.port, op.protocol)
    return (op.operation,)


class Learner:
    """Learns one profile from events (module docstring). Not thread-safe: one learner per
    workload, fed by one thread."""

    def __init__(
        self,
        profile: Profile,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Clock = SYSTEM,
        peer_of: NameOf | None = None,
        dns_of: NameOf | None = None,
        cidr_after: int = 8,
        args_variants: int = 8,
        thresholds: Thresholds | None = None,
        cache_size: int = 65536,
    ) -> None:
        self.profile = profile
        self.max_entries = max_entries
        self.clock = clock
        self.peer_of = peer_of
        self.dns_of = dns_of
        self.cidr_after = cidr_after
        self.args_variants = args_variants
        self.thresholds = thresholds or Thresholds()
        self.cache_size = cache_size
        #: operations learned (as plain tuples: _key) -> the entries they count for
        self._known: dict[tuple[object, ...], tuple[Seen, ...]] = {}
        self._paths: dict[FileAccess, PathIndex] = {}
        self._shapes: dict[tuple[str, str], set[str]] = {}
        self._groups: dict[_NetKey, set[str]] = {}
        self._dropped_syscalls: set[str] = set()
        self._excluded = 0  # exclusion entries in the file section (not counted against the bound)
        self._index()

    # -- indexes of what the profile holds (built from it: a learner may resume a stored one) ------

    def _index(self) -> None:
        p = self.profile
        for access in _ACCESSES:
            self._reindex_files(access)
        self._excluded = sum(1 for path, _a in p.files if path.startswith(EXCLUDE))
        for exe, parent, shape in p.processes:
            self._shapes.setdefault((exe, parent), set()).add(shape)
        for key in p.network:
            group = self._group_of(key)
            if group is not None:
                self._groups.setdefault(group, set()).add(key[1])
        if p.created_ns == 0:
            p.created_ns = self._now()

    def _reindex_files(self, access: FileAccess) -> None:
        idx = self._paths.get(access) or PathIndex(self.thresholds)
        idx.rebuild(path for path, a in self.profile.files if a == access)
        self._paths[access] = idx

    def _now(self) -> int:
        return int(self.clock.time() * 1e9)

    # -- observing ---------------------------------------------------------------------------------

    def observe(self, data: dict[str, Any]) -> list[str]:
        """Learn from one event; what was new (described), or [] when nothing was."""
        p = self.profile
        p.observations += 1
        t = data.get("evt.time")
        if type(t) is not int:
            t = self._now()
        new: list[str] = []
        sc = data.get("evt.type")
        if type(sc) is str and sc != "procexit":
            s = p.syscalls.get(sc)
            if s is not None:
                s.add(t)
            else:
                new = self._new_syscall(sc, t)
        op = operation_of(data)
        if op is None:
            return new
        key = _key(op)
        seen = self._known.get(key)
        if seen is not None:
            for s in seen:
                s.add(t)
            return new
        seen, learned = self._learn(op, t)
        if len(self._known) >= self.cache_size:
            self._known.clear()
        self._known[key] = seen
        if learned:
            p.last_new_ns = max(p.last_new_ns, t)
            new.extend(learned)
        return new

    def repeated(self, count: int) -> None:
        """Count events deduplicated before the learner (repeats of what it already knows)."""
        self.profile.repeats += count

    def name_peers(self, names: Mapping[str, tuple[str, int]]) -> list[str]:
        """Name peers learned as a single address before their workload was known: `names` maps
        an address to (workload id, when its container started); an entry first seen at or after
        that start becomes ``workload:ID`` (an earlier one was another holder of a reused
        address). What was renamed, described."""
        net = self.profile.network
        said: list[str] = []
        for key in [k for k in net if k[1].startswith("cidr:") and k[1].endswith(("/32", "/128"))]:
            named = names.get(key[1][5:].rsplit("/", 1)[0])
            if named is None or net[key].first_ns < named[1]:
                continue
            seen = net.pop(key)
            new: _NetKey = (key[0], f"workload:{named[0]}", key[2], key[3])
            if new in net:
                net[new].merge(seen)
            else:
                net[new] = seen
            group = self._group_of(key)
            if group is not None and group in self._groups:
                self._groups[group].discard(key[1])
            said.append(f"{describe.describe_net(*key)} is {describe.describe_net(*new)}")
        if said:
            self._known.clear()
        return said

    def _new_syscall(self, name: str, t: int) -> list[str]:
        p = self.profile
        if len(p.syscalls) >= self.max_entries:
            if name in self._dropped_syscalls:
                return []
            self._dropped_syscalls.add(name)
            return self._overflow("syscalls", f"syscall {name}")
        p.syscalls[name] = Seen()
        p.syscalls[name].add(t)
        p.last_new_ns = max(p.last_new_ns, t)
        return [f"syscall {name}"]

    def _learn(self, op: Operation, t: int) -> _Learned:
        if isinstance(op, ProcessOp):
            return self._learn_process(op, t)
        if isinstance(op, FileOp):
            seens: list[Seen] = []
            new: list[str] = []
            for access in op.access:
                s, said = self._learn_file(op.path, access, t)
                seens.extend(s)
                new.extend(said)
            return tuple(seens), new
        if isinstance(op, NetOp):
            return self._learn_net(op, t)
        return self._learn_privileged(op, t)

    def _overflow(self, section: str, what: str) -> list[str]:
        self.profile.overflow += 1
        return [f"overflow: {what} not recorded (the {section} section is full: {self.max_entries} entries)"]

    @staticmethod
    def _first(seen: Seen, t: int) -> Seen:
        seen.add(t)
        return seen

    # -- processes ---------------------------------------------------------------------------------

    def _learn_process(self, op: ProcessOp, t: int) -> _Learned:
        procs = self.profile.processes
        key: _ProcKey = (op.exe, op.parent, arg_shape(op.args))
        s = procs.get(key) or procs.get((op.exe, op.parent, ANY_ARGS))
        if s is None and len(procs) >= self.max_entries:
            if not self._collapse_args(None):
                return _NOTHING, self._overflow("processes", describe.describe_process(*key))
            s = procs.get((op.exe, op.parent, ANY_ARGS))
        if s is not None:
            return (self._first(s, t),), []
        procs[key] = Seen()
        shapes = self._shapes.setdefault((op.exe, op.parent), set())
        shapes.add(key[2])
        said = describe.describe_process(*key)
        if len(shapes) > self.args_variants:
            n = len(shapes)
            self._collapse_args((op.exe, op.parent))
            key = (op.exe, op.parent, ANY_ARGS)
            said = f"{describe.describe_process(*key)} (generalised from {n} argument shapes)"
        return (self._first(procs[key], t),), [said]

    def _collapse_args(self, program: tuple[str, str] | None) -> bool:
        """Merge the argument shapes of `program` (None: the one with the most) into ``**``."""
        if program is None:
            many = [(len(v), k) for k, v in self._shapes.items() if len(v) > 1]
            if not many:
                return False
            program = max(many)[1]
        procs = self.profile.processes
        merged = Seen()
        for shape in self._shapes[program]:
            old = procs.pop((*program, shape), None)
            if old is not None:
                merged.merge(old)
        procs[(*program, ANY_ARGS)] = merged
        self._shapes[program] = {ANY_ARGS}
        self._known.clear()
        return True

    # -- files -------------------------------------------------------------------------------------

    def _learn_file(self, path: str, access: FileAccess, t: int) -> _Learned:
        files = self.profile.files
        credential = is_credential(path)
        exact = escape(path)  # entries are globs (generalise: a "*" in a name is itself)
        entry = exact if credential else generalise_path(path)
        key = self._file_key(path, exact, entry, access, credential)
        if key is None and len(files) - self._excluded >= self.max_entries:
            if not self._make_room_files():
                return _NOTHING, self._overflow("files", describe.describe_file(entry, access))
            key = self._file_key(path, exact, entry, access, credential)
        if key is not None:
            return (self._first(files[key], t),), []
        files[(entry, access)] = Seen()
        self._add_exclusions(entry, access, t)
        idx = self._paths[access]
        idx.add(entry)
        said = describe.describe_file(entry, access)
        collapse = idx.collapse_for(entry)
        if collapse is not None:
            pattern, members = collapse
            entry = self._collapse_files(access, pattern, members, t)
            said = f"{describe.describe_file(entry, access)} (generalised from {len(members)} entries)"
        return (self._first(files[(entry, access)], t),), [said]

    def _file_key(
        self, path: str, exact: str, entry: str, access: FileAccess, credential: bool
    ) -> tuple[str, FileAccess] | None:
        """The entry that already holds `path` (`exact`: its glob): itself, a pattern covering it
        (never for a credential file), its generalisation."""
        files = self.profile.files
        if (exact, access) in files:
            return (exact, access)
        if not credential:
            pattern = self._paths[access].covering(path)
            if pattern is not None:
                return (pattern, access)
            if (entry, access) in files:
                return (entry, access)
        return None

    def _add_exclusions(self, entry: str, access: FileAccess, t: int) -> None:
        if not is_pattern(entry):
            return
        files = self.profile.files
        for excl in exclusions(entry):
            key = (EXCLUDE + excl, access)
            if key not in files:
                files[key] = Seen(0, t, t)
                self._excluded += 1

    def _collapse_files(self, access: FileAccess, pattern: str, members: list[str], t: int) -> str:
        files = self.profile.files
        merged = Seen()
        for m in members:
            old = files.pop((m, access), None)
            if old is not None:
                merged.merge(old)
        if (pattern, access) in files:
            files[(pattern, access)].merge(merged)
        else:
            files[(pattern, access)] = merged
        self._add_exclusions(pattern, access, t)
        self._reindex_files(access)
        self._known.clear()
        return pattern

    def _make_room_files(self) -> bool:
        """Collapse the directory that frees the most entries, whatever the thresholds."""
        best: tuple[int, FileAccess, str, list[str]] | None = None
        for access, idx in self._paths.items():
            c = idx.roomiest()
            if c is not None and (best is None or len(c[1]) > best[0]):
                best = (len(c[1]), access, c[0], c[1])
        if best is None:
            return False
        _n, access, pattern, members = best
        self._collapse_files(access, pattern, members, self._now())
        return True

    # -- network -----------------------------------------------------------------------------------

    def _learn_net(self, op: NetOp, t: int) -> _Learned:
        if op.direction == "listen":
            if op.port == 0:
                return _NOTHING, []
            return self._net_entry(("listen", "", op.port, op.protocol), t)
        peer = self._peer(op.ip)
        if peer is None:
            return _NOTHING, []
        key: _NetKey = (op.direction, peer, op.port, op.protocol)
        group = self._group_of(key)
        if group is not None and key not in self.profile.network and group in self.profile.network:
            key = group
        return self._net_entry(key, t)

    def _net_entry(self, key: _NetKey, t: int) -> _Learned:
        net = self.profile.network
        s = net.get(key)
        if s is None and len(net) >= self.max_entries:
            if not self._collapse_group(None):
                return _NOTHING, self._overflow("network", describe.describe_net(*key))
            group = self._group_of(key)
            s = net.get(key) or (net.get(group) if group is not None else None)
        if s is not None:
            return (self._first(s, t),), []
        net[key] = Seen()
        said = describe.describe_net(*key)
        group = self._group_of(key)
        if group is not None:
            peers = self._groups.setdefault(group, set())
            peers.add(key[1])
            if len(peers) > self.cidr_after:
                n = len(peers)
                self._collapse_group(group)
                key = group
                said = f"{describe.describe_net(*key)} (generalised from {n} addresses)"
        return (self._first(net[key], t),), [said]

    def _peer(self, ip: str) -> str | None:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        text = str(addr)
        for prefix, name_of in (("workload:", self.peer_of), ("dns:", self.dns_of)):
            name = name_of(text) if name_of is not None else None
            if name:
                return prefix + name
        return f"cidr:{text}/{addr.max_prefixlen}"

    @staticmethod
    def _group_of(key: _NetKey) -> _NetKey | None:
        """The network a single address's entry generalises to (None for anything else)."""
        direction, peer, port, proto = key
        if not peer.startswith("cidr:") or not peer.endswith(("/32", "/128")):
            return None
        net = ipaddress.ip_network(peer[5:]).supernet(new_prefix=24 if peer.endswith("/32") else 64)
        return (direction, f"cidr:{net}", port, proto)

    def _collapse_group(self, group: _NetKey | None) -> bool:
        """Merge a group's addresses into its network (None: the group with the most)."""
        if group is None:
            many = [(len(v), k) for k, v in self._groups.items() if len(v) > 1]
            if not many:
                return False
            group = max(many)[1]
        net = self.profile.network
        merged = net.pop(group, None) or Seen()
        for peer in self._groups.pop(group):
            old = net.pop((group[0], peer, group[2], group[3]), None)
            if old is not None:
                merged.merge(old)
        net[group] = merged
        self._known.clear()
        return True

    # -- privileged operations ---------------------------------------------------------------------

    def _learn_privileged(self, op: PrivOp, t: int) -> _Learned:
        priv = self.profile.privileged
        s = priv.get(op.operation)
        if s is not None:
            return (self._first(s, t),), []
        if len(priv) >= self.max_entries:
            return _NOTHING, self._overflow("privileged", f"privileged {op.operation}")
        priv[op.operation] = Seen()
        return (self._first(priv[op.operation], t),), [f"privileged {op.operation}"]
