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
import os

__all__ = ["container_addresses", "parse_fib_trie", "parse_if_inet6"]

#: the agent's own network namespace: the node's (the agent runs with the host network)
_HOST_NETNS = "/proc/self/ns/net"


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


def _netns(pid: int | str) -> tuple[int, int] | None:
    try:
        st = os.stat(f"/proc/{pid}/ns/net")
    except OSError:
        return None
    return st.st_dev, st.st_ino


def container_addresses(pid: int, host_netns: str = _HOST_NETNS) -> frozenset[str]:
    """The addresses of the network namespace `pid` is in; none when that is the host's (or the
    process is gone)."""
    own = _netns(pid)
    if own is None:
        return frozenset()
    try:
        st = os.stat(host_netns)
    except OSError:
        st = None
    if st is not None and (st.st_dev, st.st_ino) == own:
        return frozenset()
    v4 = parse_fib_trie(_read(f"/proc/{pid}/net/fib_trie"))
    v6 = parse_if_inet6(_read(f"/proc/{pid}/net/if_inet6"))
    return frozenset(v4 | v6)
