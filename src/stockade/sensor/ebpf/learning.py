"""Learning in the kernel for watched cgroups: the eBPF program's ``watched``, ``seen``, ``sc_used``
and ``learn_stats`` maps and its switches 5 and 6 (probe.bpf.c, "learning").

:class:`KernelLearning` is what :class:`~stockade.sensor.ebpf.backend.EbpfBackend` uses to watch
cgroups (by cgroup2 id, :func:`stockade.sensor.containers.cgroup.cgroup2_id`): it fills ``watched``
(flags and an epoch per cgroup), creates and deletes each cgroup's syscall bitmap, turns the
program's learning switch on while some cgroup is watched for learning and its syscall switch
while some cgroup is watched for its syscalls (sys_enter then marks each syscall of such a cgroup
in its bitmap), and reads the bitmaps and the counters back.

Each watch of a cgroup gets a fresh epoch, part of every learning key: a cgroup watched again
after it was not, or one whose keys :meth:`KernelLearning.forget` was asked for, sees each of its
operations as new once more (its old keys are never looked up again and age out of the LRU map).

Watching by ancestor (:meth:`KernelLearning.apply_parents`, the ``watch_parents`` map and switch
7): the cgroups below a watched parent that are not listed themselves are watched with the
parent's flags and epoch, keyed by their own id; the program records each in ``inherited`` and
makes its counters at its first call. A cgroup listed later keeps the epoch it had through its
parent (what it did before it was listed is not new again); any change of the parents drops what
the program made for the cgroups not listed (their counters start again).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from stockade.sensor.ebpf import libbpf as lb
from stockade.sensor.ebpf.syscall_names import name_of
from stockade.sensor.interface import WATCH_LEARN, WATCH_SYSCALLS

__all__ = [
    "LEARNED_BASE",
    "LEARN_STATS",
    "SW_LEARNING",
    "SW_PARENTS",
    "SW_SYSCALLS",
    "WATCH_ALL",
    "KernelLearning",
]

WATCH_ALL = WATCH_LEARN | WATCH_SYSCALLS
#: the program's switches: some cgroup is watched for learning; for its syscalls
SW_LEARNING, SW_SYSCALLS = 5, 6
#: the program's switch holding the flags of the watched parents, or'ed
SW_PARENTS = 7
#: the `learn_stats` counters, in the map's order
LEARN_STATS = ("new", "repeats_dropped", "repeats_kept", "unkeyed")
#: the `filtered` counters of learned repeats start here (+ syscall number)
LEARNED_BASE = 1024
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_WATCH = struct.Struct("<II")
_SEEN_KEY_SIZE = 24
_BITS = 64  # bytes of a syscall bitmap (512 bits)
_BPF_NOEXIST = 1


def _create(fd: int, key: bytes, value: bytes) -> None:
    """Add `key` to the map unless it is there (the program made it)."""
    try:
        lb.map_update(fd, key, value, _BPF_NOEXIST)
    except lb.BpfError:
        pass


class KernelLearning:
    """The learning maps of a loaded program (`obj`, on `ncpu` possible CPUs)."""

    def __init__(self, obj: lb.BpfObject, ncpu: int) -> None:
        self._obj = obj
        self._ncpu = ncpu
        self._watched_fd = obj.map_fd("watched")
        self._bits_fd = obj.map_fd("sc_used")
        self._seen_fd = obj.map_fd("seen")
        self._stats_fd = obj.map_fd("learn_stats")
        self._repeats_fd = obj.map_fd("learn_repeats")
        self._switches_fd = obj.map_fd("switches")
        self._parents_fd = obj.map_fd("watch_parents")
        self._inherited_fd = obj.map_fd("inherited")
        self.seen_capacity = obj.map_max_entries("seen")
        #: cgroup id -> flags, as the kernel has them
        self.watched: dict[int, int] = {}
        #: parent cgroup id -> flags given to the cgroups below it, as the kernel has them
        self.parents: dict[int, int] = {}
        self._epochs: dict[int, int] = {}
        self._parent_epochs: dict[int, int] = {}
        self._next_epoch = 1

    @property
    def learning(self) -> bool:
        """Some cgroup is watched for learning (itself or through a parent)."""
        return any(f & WATCH_LEARN for f in (*self.watched.values(), *self.parents.values()))

    def _put(self, cgroup: int, flags: int) -> None:
        lb.map_update(self._watched_fd, _U64.pack(cgroup), _WATCH.pack(flags, self._epochs[cgroup]))

    @property
    def marking(self) -> bool:
        """Some cgroup is watched for its syscalls (sys_enter marks them)."""
        return any(f & WATCH_SYSCALLS for f in (*self.watched.values(), *self.parents.values()))

    def apply(self, wanted: Mapping[int, int]) -> None:
        """Watch the cgroups of `wanted` (id -> flags) and no other: what stopped is removed first,
        then what is new or changed is written, then the switches follow."""
        new = {int(c): f & WATCH_ALL for c, f in wanted.items() if f & WATCH_ALL}
        for cg, old in self.watched.items():
            flags = new.get(cg, 0)
            if not flags:
                self._drop(cg)
                self._epochs.pop(cg, None)
            if old & WATCH_SYSCALLS and not flags & WATCH_SYSCALLS:
                lb.map_delete(self._bits_fd, _U64.pack(cg))
        for cg, flags in new.items():
            if cg not in self._epochs:
                self._epochs[cg] = self._inherited_epoch(cg) or self._fresh_epoch()
                _create(self._repeats_fd, _U64.pack(cg), bytes(8 * self._ncpu))
            self._put(cg, flags)
            if flags & WATCH_SYSCALLS and not self.watched.get(cg, 0) & WATCH_SYSCALLS:
                _create(self._bits_fd, _U64.pack(cg), bytes(_BITS))
        self.watched = new
        self._switch()

    def apply_parents(self, wanted: Mapping[int, int]) -> None:
        """Watch the cgroups below these (parent id -> flags), not listed themselves, and no other:
        the parents that stopped or changed go first, then what the program made for the cgroups
        below them, then the new parents are written and the switches follow."""
        new = {int(c): f & WATCH_ALL for c, f in wanted.items() if f & WATCH_ALL}
        if new == self.parents:
            return
        for cg, old in self.parents.items():
            if new.get(cg, 0) != old:
                lb.map_delete(self._parents_fd, _U64.pack(cg))
                self._parent_epochs.pop(cg, None)
        for key in lb.map_keys(self._inherited_fd, 8, 2 * 4096 + 16):
            (cg,) = _U64.unpack(key)
            if cg not in self.watched:
                self._drop(cg)
        for cg, flags in new.items():
            if cg not in self._parent_epochs:
                self._parent_epochs[cg] = self._fresh_epoch()
                lb.map_update(self._parents_fd, _U64.pack(cg), _WATCH.pack(flags, self._parent_epochs[cg]))
        self.parents = new
        self._switch()

    def _drop(self, cgroup: int) -> None:
        """Forget a cgroup's watch and counters, its own or the ones the program made."""
        for fd in (self._watched_fd, self._repeats_fd, self._inherited_fd, self._bits_fd):
            lb.map_delete(fd, _U64.pack(cgroup))

    def _inherited_epoch(self, cgroup: int) -> int:
        """The epoch `cgroup` has through a parent watched now (0: none)."""
        raw = lb.map_lookup(self._inherited_fd, _U64.pack(cgroup), _WATCH.size)
        if raw is None:
            return 0
        _flags, epoch = _WATCH.unpack(raw)
        return epoch if epoch in self._parent_epochs.values() else 0

    def _switch(self) -> None:
        """The program's switches as the watches say."""
        parents = 0
        for f in self.parents.values():
            parents |= f
        for idx, val in ((SW_LEARNING, self.learning), (SW_SYSCALLS, self.marking), (SW_PARENTS, parents)):
            lb.map_update(self._switches_fd, _U32.pack(idx), _U32.pack(int(val)))

    def _fresh_epoch(self) -> int:
        epoch = self._next_epoch
        self._next_epoch = (epoch + 1) & 0xFFFFFFFF or 1
        return epoch

    def forget(self, cgroup: int) -> None:
        """Make every operation of watched `cgroup` new again (a fresh epoch)."""
        if cgroup in self.watched:
            self._epochs[cgroup] = self._fresh_epoch()
            self._put(cgroup, self.watched[cgroup])

    def repeats(self, cgroup: int) -> int:
        """The calls of watched `cgroup` whose key was seen since it was watched (dropped, or
        delivered ``_novel: False`` because a rule wanted them): what a learner that skips repeats
        never saw (:meth:`stockade.behavior.learn.Learner.repeated`); 0 if it is not watched."""
        raw = lb.map_lookup(self._repeats_fd, _U64.pack(cgroup), 8 * self._ncpu)
        return 0 if raw is None else sum(v for (v,) in _U64.iter_unpack(raw))

    def syscall_numbers(self, cgroup: int) -> set[int]:
        """The syscall numbers watched `cgroup` made so far (empty if it is not watched for them)."""
        raw = lb.map_lookup(self._bits_fd, _U64.pack(cgroup), _BITS)
        if raw is None:
            return set()
        out: set[int] = set()
        for i, (word,) in enumerate(_U64.iter_unpack(raw)):
            while word:
                low = word & -word
                out.add(64 * i + low.bit_length() - 1)
                word ^= low
        return out

    def syscalls(self, cgroup: int) -> set[str]:
        """The names of :meth:`syscall_numbers` (x86_64: stockade.sensor.ebpf.syscall_names)."""
        return {name_of(nr) for nr in self.syscall_numbers(cgroup)}

    def stats(self, count_seen: bool = True) -> dict[str, int]:
        """The kernel's learning counters (:data:`LEARN_STATS`: keys inserted, repeats dropped and
        kept, calls without a key), and with `count_seen` the keys held now (``seen_entries``, one
        bpf() call each) and so how many were evicted (``evicted``: inserted and no longer held;
        the program never deletes a key)."""
        out: dict[str, int] = {
            "seen_capacity": self.seen_capacity,
            "watched": len(self.watched),
            "watched_parents": len(self.parents),
        }
        for idx, name in enumerate(LEARN_STATS):
            raw = lb.map_lookup(self._stats_fd, _U32.pack(idx), 8 * self._ncpu)
            out[name] = 0 if raw is None else sum(v for (v,) in _U64.iter_unpack(raw))
        if count_seen:
            held = len(set(lb.map_keys(self._seen_fd, _SEEN_KEY_SIZE, 2 * self.seen_capacity + 16)))
            out["seen_entries"] = held
            out["evicted"] = max(out["new"] - held, 0)
        return out
