"""A workload's behaviour profile: what it was seen to do, as data (learning is in ``learn``).

A profile belongs to one workload (:mod:`stockade.behavior.workload`) and one image digest; a new
digest starts from the previous version's profile (``version`` + 1, ``base_digest``). Every entry
keeps how often and when it was seen (``count``, ``first_ns``, ``last_ns``): the confidence score
and the list of what looks under-observed are computed from them. Keys are plain strings and
tuples so that the JSON form (``to_dict``/``from_dict``) is stable and diffable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "PRIVILEGED_OPS",
    "FileAccess",
    "NetDirection",
    "Profile",
    "Seen",
]

FileAccess = Literal["read", "write", "exec"]
NetDirection = Literal["egress", "ingress", "listen"]

#: the privileged operations a profile records (names used in policies too)
PRIVILEGED_OPS = (
    "setuid",
    "setgid",
    "mount",
    "umount",
    "ptrace",
    "module_load",
    "bpf",
    "raw_socket",
    "unshare",
    "setns",
    "chroot",
    "memfd_create",
)


@dataclass(slots=True)
class Seen:
    """How often and when one behaviour was seen.

    ``gap_ns`` is the longest quiet time between two sightings in time order: a behaviour that
    recurs on a schedule (a cron job) has a long one (:mod:`stockade.behavior.stability`)."""

    count: int = 0
    first_ns: int = 0
    last_ns: int = 0
    gap_ns: int = 0

    def add(self, time_ns: int, n: int = 1) -> None:
        """Count `n` more sightings at `time_ns`."""
        if self.count == 0:
            self.first_ns = self.last_ns = time_ns
        elif time_ns > self.last_ns:
            if time_ns - self.last_ns > self.gap_ns:
                self.gap_ns = time_ns - self.last_ns
            self.last_ns = time_ns
        elif time_ns < self.first_ns:
            self.first_ns = time_ns
        self.count += n

    def merge(self, other: Seen) -> None:
        """Add `other`'s sightings (an entry generalised into this one)."""
        if other.count == 0:
            return
        if self.count == 0:
            self.first_ns, self.last_ns = other.first_ns, other.last_ns
        else:
            self.first_ns = min(self.first_ns, other.first_ns)
            self.last_ns = max(self.last_ns, other.last_ns)
        self.gap_ns = max(self.gap_ns, other.gap_ns)
        self.count += other.count

    def copy(self) -> Seen:
        """An independent copy."""
        return Seen(self.count, self.first_ns, self.last_ns, self.gap_ns)

    def to_list(self) -> list[int]:
        """``[count, first_ns, last_ns]``, then ``gap_ns`` when there is one."""
        if self.gap_ns:
            return [self.count, self.first_ns, self.last_ns, self.gap_ns]
        return [self.count, self.first_ns, self.last_ns]

    @classmethod
    def from_list(cls, v: Any) -> Seen:
        """The inverse of :meth:`to_list`."""
        return cls(int(v[0]), int(v[1]), int(v[2]), int(v[3]) if len(v) > 3 else 0)


@dataclass(slots=True)
class Profile:
    """What one workload (at one image digest) was seen to do.

    * ``processes``: (executable, parent executable or "", argument shape) -> Seen;
    * ``files``: (path or pattern, access) -> Seen; both are globs of
      :mod:`stockade.behavior.pathglob` (``*`` for one path component part, ``**`` for any depth
      below a directory: the generalisations of ``learn``; a path's own ``*``, ``?`` and ``[``
      escaped as one-character sets); an entry ``!PATTERN`` is an exclusion: no pattern entry of
      its access covers what it matches (:func:`stockade.behavior.generalise.covers`);
    * ``network``: (direction, peer, port, protocol) -> Seen; peer is ``workload:ID``,
      ``cidr:A.B.C.D/N``, ``dns:NAME`` or ``""`` (any/unknown); port 0 = any; protocol
      ``tcp``/``udp``;
    * ``privileged``: operation (one of :data:`PRIVILEGED_OPS`) -> Seen;
    * ``syscalls``: syscall name -> Seen.
    """

    workload: str
    image_digest: str = ""
    version: int = 1
    base_digest: str | None = None
    created_ns: int = 0
    #: last time something new was learned (stability is measured from here)
    last_new_ns: int = 0
    #: when this version was made from its base (`base_digest`); entries first seen since are
    #: what it learned itself (0: not rebased)
    rebased_ns: int = 0
    #: events that reached the learner (repeats deduplicated before it are counted as `repeats`)
    observations: int = 0
    repeats: int = 0
    processes: dict[tuple[str, str, str], Seen] = field(default_factory=dict)
    files: dict[tuple[str, FileAccess], Seen] = field(default_factory=dict)
    network: dict[tuple[NetDirection, str, int, str], Seen] = field(default_factory=dict)
    privileged: dict[str, Seen] = field(default_factory=dict)
    syscalls: dict[str, Seen] = field(default_factory=dict)
    #: entries dropped because the profile reached its size bound (never silently)
    overflow: int = 0

    def size(self) -> int:
        """Number of entries in all sections."""
        return (
            len(self.processes)
            + len(self.files)
            + len(self.network)
            + len(self.privileged)
            + len(self.syscalls)
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (sections as sorted lists of entries)."""
        return {
            "workload": self.workload,
            "image_digest": self.image_digest,
            "version": self.version,
            "base_digest": self.base_digest,
            "created_ns": self.created_ns,
            "last_new_ns": self.last_new_ns,
            "rebased_ns": self.rebased_ns,
            "observations": self.observations,
            "repeats": self.repeats,
            "overflow": self.overflow,
            "processes": [[*k, *s.to_list()] for k, s in sorted(self.processes.items())],
            "files": [[*k, *s.to_list()] for k, s in sorted(self.files.items())],
            "network": [[*k, *s.to_list()] for k, s in sorted(self.network.items())],
            "privileged": [[k, *s.to_list()] for k, s in sorted(self.privileged.items())],
            "syscalls": [[k, *s.to_list()] for k, s in sorted(self.syscalls.items())],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Profile:
        """The inverse of :meth:`to_dict`."""
        p = cls(
            workload=str(d["workload"]),
            image_digest=str(d.get("image_digest") or ""),
            version=int(d.get("version", 1)),
            base_digest=d.get("base_digest"),
            created_ns=int(d.get("created_ns", 0)),
            last_new_ns=int(d.get("last_new_ns", 0)),
            rebased_ns=int(d.get("rebased_ns", 0)),
            observations=int(d.get("observations", 0)),
            repeats=int(d.get("repeats", 0)),
            overflow=int(d.get("overflow", 0)),
        )
        for e in d.get("processes", ()):
            p.processes[(str(e[0]), str(e[1]), str(e[2]))] = Seen.from_list(e[3:])
        for e in d.get("files", ()):
            p.files[(str(e[0]), e[1])] = Seen.from_list(e[2:])
        for e in d.get("network", ()):
            p.network[(e[0], str(e[1]), int(e[2]), str(e[3]))] = Seen.from_list(e[4:])
        for e in d.get("privileged", ()):
            p.privileged[str(e[0])] = Seen.from_list(e[1:])
        for e in d.get("syscalls", ()):
            p.syscalls[str(e[0])] = Seen.from_list(e[1:])
        return p
