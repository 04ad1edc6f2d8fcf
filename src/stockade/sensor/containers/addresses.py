"""A container's own IP addresses, read from its network namespace through one of its processes.

* IPv4: ``/proc/<pid>/net/fib_trie`` lists the namespace's routing tables; an address followed by
  a ``/32 host LOCAL`` line is one of its interfaces' addresses.
* IPv6: ``/proc/<pid>/net/if_inet6`` lists the interfaces' addresses with their scope; global
  ones (scope 0, unique local addresses included) are kept, link-local and loopback are not.

Loopback addresses are never a container's (every namespace has them), and a container that
shares the host's network namespace (``--network host``; the agent's own) has none of its own: its addresses are
the node's, and naming them after one workload would be wrong.
"""

from __future__ import annotations

import ipaddress

from stockade.sensor.procfs import read_netns

__all__ = ["container_addresses", "parse_fib_trie", "parse_if_inet6"]


def parse_fib_trie(text: str) -> set[str]:
    """The local IPv4 addresses a fib_trie lists (loopback left out)."""
    out: set[str] = set()
    last: str | None = None
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("|-- "):
            last = s[4:]
        elif last is not None and s.startswith("/32 host LOCAL"):
            if not last.startswith("127."):
                out.add(last)
            last = None
    return out


def parse_if_inet6(text: str) -> set[str]:
    """The global IPv6 addresses an if_inet6 lists."""
    out: set[str] = set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 6 or len(parts[0]) != 32 or parts[3] != "00":
            continue
        try:
            addr = ipaddress.IPv6Address(bytes.fromhex(parts[0]))
        except ValueError:
            continue
        out.add(str(addr))
    return out


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def container_addresses(pid: int, host: int | str = "self") -> frozenset[str]:
    """The addresses of the network namespace `pid` is in; none when that is the host's (the
    namespace of process `host`: this agent, which runs with the host network) or the process is
    gone."""
    own = read_netns(pid)
    if own is None or own == read_netns(host):
        return frozenset()
    v4 = parse_fib_trie(_read(f"/proc/{pid}/net/fib_trie"))
    v6 = parse_if_inet6(_read(f"/proc/{pid}/net/if_inet6"))
    return frozenset(v4 | v6)
