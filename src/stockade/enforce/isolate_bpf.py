"""The cgroup BPF layer of network isolation (``bpf/isolate.bpf.c``): what the kernel holds per
isolated cgroup, and attaching the programs to its cgroup2 directory.

Everything is pinned (maps under ``pin_dir/maps``, each cgroup's links under
``pin_dir/links/<cgroup id>``): an isolation outlives the agent that made it (a crash or a restart
never lifts it), and an agent started later finds it again (:meth:`IsolatePrograms.isolated`) and
can lift it (:meth:`IsolatePrograms.disable`). The programs are attached as multi-attach bpf_links
beside whatever else is there (NetGuard's): the kernel runs them all and any one that denies wins.

Order. Enabling writes the allow-list, attaches and pins the links, then flips the cgroup's entry in
``isolated`` (before it, the programs let everything through); disabling removes that entry first,
then the links, the allow-list and the counters.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from stockade.enforce.bpfobj import ensure_bpffs, open_object, unpin_links
from stockade.enforce.interface import EnforceError
from stockade.model.allowlist import AllowEntry, covering
from stockade.sensor.ebpf import libbpf as lb

__all__ = ["DEFAULT_PIN_DIR", "PROGRAMS", "IsolatePrograms", "IsolationStats", "allow_entries"]

DEFAULT_PIN_DIR = "/sys/fs/bpf/stockade/isolate"
#: every program attached to an isolated cgroup
PROGRAMS: Final = (
    "iso_egress",
    "iso_ingress",
    "iso_connect4",
    "iso_connect6",
    "iso_sendmsg4",
    "iso_sendmsg6",
    "iso_sock_create",
)
MAPS: Final = ("isolated", "allow", "stats")
MAX_RANGES: Final = 16
FLAG_LOOPBACK: Final = 1

_KEY = struct.Struct("<IIII16s")  # struct allow_key
_CFG = struct.Struct("<II")  # struct iso_cfg
_STATS = struct.Struct("<5Q")  # struct iso_stats
_U64 = struct.Struct("<Q")
_FIXED_BITS = 96


@dataclass(frozen=True, slots=True)
class IsolationStats:
    """What the programs refused for one isolated cgroup so far."""

    egress_dropped: int = 0
    ingress_dropped: int = 0
    connect_denied: int = 0
    sendmsg_denied: int = 0
    socket_denied: int = 0


def _key(cgid: int, net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bytes:
    addr = net.network_address.packed.ljust(16, b"\0")
    return _KEY.pack(_FIXED_BITS + net.prefixlen, cgid & 0xFFFFFFFF, cgid >> 32, net.version, addr)


def allow_entries(cgid: int, allow: Sequence[AllowEntry]) -> dict[bytes, bytes]:
    """The trie entries of `allow` for cgroup `cgid`: at each network, the port ranges of every
    entry covering it (so the longest match alone decides)."""
    out: dict[bytes, bytes] = {}
    for net in {e.network for e in allow}:
        ranges = covering(allow, net)
        if (0, 65535) in ranges:
            ranges = [(0, 65535)]
        if len(ranges) > MAX_RANGES:
            raise EnforceError(f"{len(ranges)} port ranges apply to {net} (at most {MAX_RANGES}): merge them")
        val = struct.pack("<I", len(ranges)) + b"".join(struct.pack("<HH", lo, hi) for lo, hi in ranges)
        out[_key(cgid, net)] = val.ljust(4 + 4 * MAX_RANGES, b"\0")
    return out


class IsolatePrograms:
    """The loaded isolation programs and their pinned maps (module docstring)."""

    def __init__(self, *, pin_dir: str = DEFAULT_PIN_DIR, object_path: str | None = None) -> None:
        self.pin_dir = os.path.normpath(pin_dir)
        self.object_path = object_path
        self._obj: lb.BpfObject | None = None
        self._fds: dict[str, int] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        """Load the programs, reusing the pinned maps of an earlier run (once; safe twice)."""
        with self._lock:
            if self._obj is None:
                self._obj = open_object("isolate", self.object_path, self._load)
                self._fds = {m: self._obj.map_fd(m) for m in MAPS}

    def _load(self, obj: lb.BpfObject) -> None:
        ensure_bpffs(self.pin_dir)
        os.makedirs(os.path.join(self.pin_dir, "maps"), exist_ok=True)
        os.makedirs(os.path.join(self.pin_dir, "links"), exist_ok=True)
        for m in MAPS:
            obj.set_pin_path(m, os.path.join(self.pin_dir, "maps", m))
        obj.load()

    def close(self, *, remove_pins: bool = False) -> None:
        """Let go of the programs; pinned isolations stay in force. `remove_pins`: also remove the
        pinned maps, when no cgroup is isolated (EnforceError otherwise)."""
        with self._lock:
            if remove_pins and self._obj is not None:
                left = lb.map_keys(self._fds["isolated"], _U64.size)
                if left:
                    raise EnforceError(f"{len(left)} cgroups are still isolated: unisolate them first")
            if self._obj is not None:
                self._obj.close()
                self._obj = None
                self._fds = {}
            if remove_pins:
                shutil.rmtree(self.pin_dir, ignore_errors=True)

    def _need(self) -> lb.BpfObject:
        if self._obj is None:
            raise EnforceError("the isolation programs are not loaded (start() first)")
        return self._obj

    def _link_dir(self, cgid: int) -> str:
        return os.path.join(self.pin_dir, "links", str(cgid))

    def enable(
        self,
        cgid: int,
        cgroup_dir: str,
        allow: Sequence[AllowEntry],
        *,
        loopback: bool,
        programs: Sequence[str] = PROGRAMS,
    ) -> None:
        """Isolate cgroup `cgid` (directory `cgroup_dir`) but for `allow` and, with `loopback`,
        loopback; called again, replaces the allow-list (the links stay)."""
        entries = allow_entries(cgid, allow)
        with self._lock:
            obj = self._need()
            fds = self._fds
            try:
                for k, v in entries.items():
                    lb.map_update(fds["allow"], k, v)
                for k in self._keys_of(cgid):
                    if k not in entries:
                        lb.map_delete(fds["allow"], k)
                self._attach(obj, cgid, cgroup_dir, programs)
                lb.map_update(
                    fds["isolated"], _U64.pack(cgid), _CFG.pack(FLAG_LOOPBACK if loopback else 0, 0)
                )
            except lb.BpfError as e:
                raise EnforceError(f"isolating {cgroup_dir}: {e}") from e

    def _attach(self, obj: lb.BpfObject, cgid: int, cgroup_dir: str, programs: Sequence[str]) -> None:
        link_dir = self._link_dir(cgid)
        os.makedirs(link_dir, exist_ok=True)
        missing = [p for p in programs if not os.path.exists(os.path.join(link_dir, p))]
        if not missing:
            return
        fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for prog in missing:
                link = obj.attach_cgroup(prog, fd)
                try:
                    link.pin(os.path.join(link_dir, prog))
                except lb.BpfError:
                    link.detach()
                    raise
                finally:
                    link.destroy()
        finally:
            os.close(fd)

    def disable(self, cgid: int) -> int:
        """Lift the isolation of cgroup `cgid`; the number of links detached."""
        with self._lock:
            self._need()
            fds = self._fds
            lb.map_delete(fds["isolated"], _U64.pack(cgid))
            n = unpin_links(self._link_dir(cgid))
            for k in self._keys_of(cgid):
                lb.map_delete(fds["allow"], k)
            lb.map_delete(fds["stats"], _U64.pack(cgid))
            return n

    def _keys_of(self, cgid: int) -> list[bytes]:
        want = (cgid & 0xFFFFFFFF, cgid >> 32)
        return [k for k in lb.map_keys(self._fds["allow"], _KEY.size) if _KEY.unpack(k)[1:3] == want]

    def isolated(self) -> list[int]:
        """The cgroup ids isolated now (whoever isolated them)."""
        with self._lock:
            self._need()
            return [_U64.unpack(k)[0] for k in lb.map_keys(self._fds["isolated"], _U64.size)]

    def stats(self, cgid: int) -> IsolationStats:
        """What the programs refused for cgroup `cgid`."""
        with self._lock:
            self._need()
            raw = lb.map_lookup(self._fds["stats"], _U64.pack(cgid), _STATS.size)
        return IsolationStats(*_STATS.unpack(raw)) if raw else IsolationStats()

    def links(self, cgid: int) -> list[str]:
        """The programs pinned as attached to cgroup `cgid`."""
        with contextlib.suppress(OSError):
            return sorted(os.listdir(self._link_dir(cgid)))
        return []
