"""The forensics allow-list of an isolated container: the peers it may still talk to.

An entry is a network and, optionally, a port range: ``10.0.0.5``, ``10.0.0.0/24``, ``10.0.0.5:22``,
``10.0.0.0/24:8000-8100``, ``fd00::/64``, ``[fd00::5]:22``. A port range matches the peer's port or
the container's own port (the forensics host connecting out to a collector, or in to a shell),
for TCP and UDP; an entry without ports allows every protocol to and from the network.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from stockade.errors import UsageError

__all__ = ["AllowEntry", "AllowListError", "checked_allow", "parse_allow"]


class AllowListError(UsageError):
    """An allow-list entry that cannot be read (which one, and why)."""


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_PORTS = re.compile(r"^(\d{1,5})(?:-(\d{1,5}))?$")


@dataclass(frozen=True, slots=True)
class AllowEntry:
    """One peer network the isolated container may still reach (and be reached from); `ports`: an
    inclusive range, None for every port and protocol."""

    network: Network
    ports: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.ports is not None:
            lo, hi = self.ports
            if not 0 < lo <= hi <= 65535:
                raise AllowListError(f"allow-list entry {self}: bad port range {lo}-{hi}")

    def __str__(self) -> str:
        if self.ports is None:
            return str(self.network)
        lo, hi = self.ports
        ports = str(lo) if lo == hi else f"{lo}-{hi}"
        net = f"[{self.network}]" if self.network.version == 6 else str(self.network)
        return f"{net}:{ports}"

    @classmethod
    def parse(cls, text: str) -> AllowEntry:
        """An entry from its text form (module docstring); AllowListError naming what is wrong."""
        s = text.strip()
        net_s, ports_s = s, ""
        if s.startswith("["):
            net_s, sep, rest = s[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                raise AllowListError(f"allow-list entry {text!r}: expected [IPv6 network]:PORTS")
            ports_s = rest[1:]
        elif s.count(":") == 1:
            net_s, ports_s = s.split(":")
        try:
            net = ipaddress.ip_network(net_s, strict=False)
        except ValueError as e:
            raise AllowListError(f"allow-list entry {text!r}: {e}") from e
        if not ports_s:
            return cls(net)
        m = _PORTS.match(ports_s)
        if m is None:
            raise AllowListError(f"allow-list entry {text!r}: bad port or range {ports_s!r} (PORT or LO-HI)")
        lo = int(m.group(1))
        hi = int(m.group(2) or lo)
        if not 0 < lo <= hi <= 65535:
            raise AllowListError(f"allow-list entry {text!r}: bad port range {lo}-{hi}")
        return cls(net, (lo, hi))

    def to_dict(self) -> dict[str, Any]:
        """The entry as plain data (the isolation state file)."""
        return {"network": str(self.network), "ports": list(self.ports) if self.ports else None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AllowEntry:
        """The inverse of :meth:`to_dict`."""
        p = d.get("ports")
        return cls(ipaddress.ip_network(d["network"]), (int(p[0]), int(p[1])) if p else None)


def parse_allow(items: Iterable[str | AllowEntry]) -> list[AllowEntry]:
    """Entries from text forms (or entries), in order; AllowListError on the first bad one."""
    return [i if isinstance(i, AllowEntry) else AllowEntry.parse(i) for i in items]


def covering(allow: Sequence[AllowEntry], net: Network) -> list[tuple[int, int]]:
    """The port ranges of every entry whose network covers `net` (0-65535 for an entry without)."""
    out: list[tuple[int, int]] = []
    for e in allow:
        if e.network.version == net.version and net.subnet_of(e.network):  # type: ignore[arg-type]
            out.append(e.ports or (0, 65535))
    return sorted(set(out))


def checked_allow(items: Sequence[str]) -> Sequence[str]:
    """`items` unchanged if every entry reads; else ValueError naming the first bad one (for
    pydantic validators: a configuration key, a playbook step, an API body)."""
    try:
        parse_allow(items)
    except AllowListError as e:
        raise ValueError(str(e)) from e
    return items
