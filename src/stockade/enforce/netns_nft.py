"""Isolation by nftables inside a container's network namespace (and commands run in that namespace).

The table ``inet stockade_isolate`` has ``input``, ``output`` and ``forward`` base chains whose
policy is drop; they accept loopback (``lo``), IPv6 neighbour discovery (without it no IPv6 peer is
reachable, allowed ones included), TCP resets going out (what tells the peer of a cut connection it
is gone) and the allow-list (module :mod:`stockade.model.allowlist`: the peer's address, and with a
port range the peer's or the container's port, TCP or UDP). It holds wherever cgroup BPF cannot
attach (a runtime without a cgroup2 directory per container), and covers every process of the
namespace (in a Kubernetes pod: every container of the pod). Replacing it is one nft transaction.

The namespace is entered by ``nsenter --net=/proc/<pid>/ns/net`` (a child process; the agent's own
namespace never changes). A container on the host's network has no namespace of its own: this layer
refuses it (:func:`host_netns`), never touching the host's rules.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

from stockade.enforce.interface import EnforceError
from stockade.model.allowlist import AllowEntry
from stockade.sensor.procfs import read_netns

__all__ = ["TABLE", "host_netns", "nft_apply", "nft_present", "nft_remove", "nft_ruleset", "run_in_netns"]

TABLE = "stockade_isolate"


def host_netns(pid: int) -> bool:
    """Whether process `pid` is in the host's network namespace (init's, or the agent's own)."""
    ns = read_netns(pid)
    if ns is None:
        raise EnforceError(f"process {pid} is gone (no /proc/{pid}/ns/net)")
    return ns in {read_netns(1), read_netns("self")}


def run_in_netns(
    pid: int, argv: Sequence[str], *, stdin: str | None = None, timeout: float = 10.0
) -> subprocess.CompletedProcess[str]:
    """`argv` run in the network namespace of process `pid` (only that namespace: the host's files)."""
    nsenter = shutil.which("nsenter")
    if nsenter is None:
        raise EnforceError("nsenter not found (util-linux)")
    if not os.path.exists(f"/proc/{pid}/ns/net"):
        raise EnforceError(f"process {pid} is gone (no /proc/{pid}/ns/net)")
    try:
        return subprocess.run(
            [nsenter, f"--net=/proc/{pid}/ns/net", *argv],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise EnforceError(f"{argv[0]} in the network namespace of {pid} timed out after {timeout}s") from e


def _nft() -> str:
    nft = shutil.which("nft")
    if nft is None:
        raise EnforceError("nft not found (apt-get install nftables)")
    return nft


def _peer_rules(allow: Sequence[AllowEntry], peer: str) -> list[str]:
    """Accept rules for the allow-list, the peer's address being `peer` (``saddr`` or ``daddr``)."""
    out: list[str] = []
    for e in allow:
        fam = "ip" if e.network.version == 4 else "ip6"
        match = f"{fam} {peer} {e.network}"
        if e.ports is None:
            out.append(f"{match} accept")
            continue
        lo, hi = e.ports
        ports = str(lo) if lo == hi else f"{lo}-{hi}"
        sp, dp = ("sport", "dport") if peer == "saddr" else ("dport", "sport")
        out.append(f"{match} meta l4proto {{ tcp, udp }} th {sp} {ports} accept")
        out.append(f"{match} meta l4proto {{ tcp, udp }} th {dp} {ports} accept")
    return out


def nft_ruleset(allow: Sequence[AllowEntry]) -> str:
    """The nft script that creates (or replaces, in one transaction) the isolation table."""
    nd = "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert } accept"
    inp = ['iifname "lo" accept', nd, *_peer_rules(allow, "saddr")]
    out = ['oifname "lo" accept', nd, "tcp flags & rst == rst accept", *_peer_rules(allow, "daddr")]
    fwd = [*_peer_rules(allow, "saddr"), *_peer_rules(allow, "daddr")]

    def chain(name: str, hook: str, rules: list[str]) -> str:
        body = "".join(f"\t\t{r}\n" for r in rules)
        return f"\tchain {name} {{\n\t\ttype filter hook {hook} priority -10; policy drop;\n{body}\t}}\n"

    return (
        f"table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n"
        + chain("input", "input", inp)
        + chain("output", "output", out)
        + chain("forward", "forward", fwd)
        + "}\n"
    )


def nft_apply(pid: int, allow: Sequence[AllowEntry]) -> None:
    """Create (or replace) the isolation table in the network namespace of process `pid`."""
    if host_netns(pid):
        raise EnforceError("the container shares the host's network namespace: its nftables are the host's")
    r = run_in_netns(pid, [_nft(), "-f", "-"], stdin=nft_ruleset(allow))
    if r.returncode != 0:
        raise EnforceError(f"nft in the network namespace of {pid}: {r.stderr.strip()}")


def nft_present(pid: int) -> bool:
    """Whether the isolation table exists in the network namespace of process `pid`."""
    r = run_in_netns(pid, [_nft(), "list", "table", "inet", TABLE])
    return r.returncode == 0


def nft_remove(pid: int) -> bool:
    """Delete the isolation table in the network namespace of `pid`; False when it was not there."""
    if host_netns(pid):
        return False
    if not nft_present(pid):
        return False
    r = run_in_netns(pid, [_nft(), "delete", "table", "inet", TABLE])
    if r.returncode != 0:
        raise EnforceError(f"nft delete table in the network namespace of {pid}: {r.stderr.strip()}")
    return True
