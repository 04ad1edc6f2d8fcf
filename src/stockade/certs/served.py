"""Certificates served on the node's listening TCP ports, read by a TLS handshake over loopback.

:func:`listening` reads the listening sockets of a network namespace from ``/proc/<pid>/net/tcp``
and ``tcp6`` (``/proc/self/net``: our own). :func:`scan_served` connects to each one over
loopback only: a socket bound to a wildcard or loopback address is reached at ``127.0.0.1`` (or
``::1``, or the very loopback address it is bound to); a socket bound only to another address is
counted (``not_loopback``) and never connected to. For a container's namespace the sockets are
created by a short-lived thread that entered that namespace (``setns(CLONE_NEWNET)`` affects only
the calling thread, and a socket stays in the namespace it was created in); the handshakes then run
from a small pool of threads. A handshake sends no SNI, verifies nothing, accepts any protocol
version and cipher, and takes the chain the server sent (leaf first), with a short timeout. A port
that does not speak TLS is counted (``not_tls``), not reported as a problem.
"""

from __future__ import annotations

import ctypes
import os
import socket
import ssl
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from cryptography import x509

from stockade.certs.record import CertRecord, Place, describe
from stockade.sockets import procnet

__all__ = ["Listener", "ServedScan", "listening", "netns_id", "scan_served"]

_CLONE_NEWNET = 0x40000000
#: the most ports handshaken in one namespace
MAX_PORTS = 512


@dataclass(frozen=True, slots=True)
class Listener:
    """A listening TCP socket: its family (4, 6), bound address and port."""

    family: int
    address: str
    port: int

    def loopback_target(self) -> str | None:
        """The loopback address to reach it at, or None when it listens on no loopback address."""
        if self.family == 4:
            if self.address == "0.0.0.0" or self.address.startswith("127."):
                return "127.0.0.1" if self.address == "0.0.0.0" else self.address
            return None
        if self.address in ("::", "::1"):
            return "::1"
        if self.address.startswith("::ffff:127.") or self.address == "::ffff:0.0.0.0":
            return "127.0.0.1"
        return None


@dataclass(slots=True)
class ServedScan:
    """What the handshakes of one namespace found."""

    certs: list[CertRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def listening(pid: int | None = None) -> list[Listener]:
    """The listening TCP sockets of the network namespace of `pid` (None: our own)."""
    base = f"/proc/{pid}/net" if pid is not None else "/proc/self/net"
    out = {
        Listener(4 if "." in e.lip else 6, e.lip, e.lport)
        for e in procnet.listening(procnet.read_sockets(base))
        if e.proto == "tcp"
    }
    return sorted(out, key=lambda x: (x.port, x.family, x.address))


def netns_id(pid: int | None = None) -> int | None:
    """The inode of the network namespace of `pid` (None: our own); None when it cannot be read."""
    try:
        return os.stat(f"/proc/{pid if pid is not None else 'self'}/ns/net").st_ino
    except OSError:
        return None


def _targets(listeners: list[Listener], counts: Counter[str]) -> list[tuple[str, int]]:
    seen: dict[int, str] = {}
    for lst in listeners:
        t = lst.loopback_target()
        if t is None:
            counts["not_loopback"] += 1
            continue
        if lst.port not in seen or (seen[lst.port] == "::1" and t != "::1"):
            seen[lst.port] = t  # one handshake per port: IPv4 loopback preferred
    return sorted(((h, p) for p, h in seen.items()), key=lambda x: x[1])[:MAX_PORTS]


def _sockets_in(pid: int, targets: list[tuple[str, int]]) -> list[socket.socket]:
    """Sockets created inside the network namespace of `pid` (by a thread that entered it)."""
    result: list[socket.socket] = []
    error: list[BaseException] = []

    def enter() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns into the network namespace of pid {pid}: {os.strerror(err)}")
            finally:
                os.close(fd)
            for host, _ in targets:
                result.append(socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET))
        except BaseException as e:  # reported by the caller
            error.append(e)

    t = threading.Thread(target=enter, name=f"stockade-netns-{pid}", daemon=True)
    t.start()
    t.join()
    if error:
        for s in result:
            s.close()
        raise error[0]
    return result


def _context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    try:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    return ctx


def _handshake(sock: socket.socket, host: str, port: int, timeout: float) -> list[bytes]:
    """The DER chain the server at (host, port) sends, leaf first; OSError/SSLError when none."""
    sock.settimeout(timeout)
    with sock:
        sock.connect((host, port))
        with _context().wrap_socket(sock, server_hostname=None) as tls:
            chain = getattr(tls._sslobj, "get_unverified_chain", lambda: None)()  # type: ignore[attr-defined]
            if chain:
                return [c.public_bytes(ssl._ssl.ENCODING_DER) for c in chain]  # type: ignore[attr-defined]
            leaf = tls.getpeercert(binary_form=True)
            return [leaf] if leaf else []


def scan_served(
    pid: int | None = None,
    *,
    timeout: float = 2.0,
    container: tuple[str, str | None] = ("", None),
    workers: int = 8,
) -> ServedScan:
    """Handshake every listening port of the namespace of `pid` (None: ours) over loopback and
    describe the certificates served (module docstring)."""
    scan = ServedScan()
    listeners = listening(pid)
    scan.counts["listening"] = len(listeners)
    targets = _targets(listeners, scan.counts)
    if not targets:
        return scan
    if pid is None:
        socks = [socket.socket(socket.AF_INET6 if ":" in h else socket.AF_INET) for h, _ in targets]
    else:
        try:
            socks = _sockets_in(pid, targets)
        except OSError as e:
            scan.problems.append(f"network namespace of pid {pid}: {e.strerror or e}")
            return scan

    def one(i: int) -> tuple[int, list[bytes] | str]:
        host, port = targets[i]
        try:
            return i, _handshake(socks[i], host, port, timeout)
        except (OSError, ssl.SSLError, ValueError) as e:
            return i, f"{type(e).__name__}: {e}"

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(targets)))) as pool:
        results = list(pool.map(one, range(len(targets))))
    cid, cname = container
    for i, got in results:
        host, port = targets[i]
        scan.counts["handshaken"] += 1
        if isinstance(got, str) or not got:
            scan.counts["not_tls"] += 1
            continue
        scan.counts["tls_ports"] += 1
        where = f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"
        for n, der in enumerate(got):
            try:
                cert = x509.load_der_x509_certificate(der)
            except ValueError as e:
                scan.problems.append(f"{where}: certificate {n} of the chain: {e}")
                continue
            scan.certs.append(describe(cert, Place("served", where, "tls", str(n), cid, cname, False)))
    return scan
