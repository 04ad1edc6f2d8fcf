"""What the response actions can really do on this node, found by doing each one to a throwaway
process: :func:`response_capabilities`.

It starts a child in a network namespace of its own (``unshare --net``, only ``lo``), in a fresh
cgroup2 directory (and, where the node has one, a fresh v1 freezer cgroup), and checks with the
same code the actions use:

``cgroup_skb_drop``        the isolation's ``cgroup_skb`` programs attached: a UDP datagram over
                           loopback (loopback not exempted) no longer arrives;
``cgroup_connect_deny``    its ``cgroup/connect4`` (and sendmsg) programs: a TCP connect gets EPERM;
``cgroup_sock_create_deny`` its ``cgroup/sock_create`` program: a raw socket gets EPERM;
``nftables_netns``         an nftables table in the child's namespace drops the datagram; removed,
                           it arrives again;
``freezer_v1``             the child frozen by the v1 freezer does not answer; thawed, it does;
``cgroup_freeze_v2``       the same with ``cgroup.freeze``;
``cgroup_kill``            ``cgroup.kill`` kills the child.

Each result is a :class:`~stockade.enforce.capabilities.Mechanism` (``available``, ``reason``).
Everything it creates (namespace, cgroups, pinned programs) is removed; about a second, as root.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import IO, Final

from stockade.enforce.capabilities import Mechanism
from stockade.enforce.cgroup2 import cgroup_id
from stockade.enforce.freeze import FreezeMethod, freeze, thaw
from stockade.enforce.interface import EnforceError
from stockade.enforce.isolate_bpf import IsolatePrograms
from stockade.enforce.kill import kill_container
from stockade.enforce.netns_nft import host_netns, run_in_netns
from stockade.sensor.containers.cgroup import cgroup_v1_hierarchies
from stockade.sensor.containers.discover import cgroup2_mount

__all__ = ["CHECKS", "response_capabilities"]

CHECKS: Final = (
    "cgroup_skb_drop",
    "cgroup_connect_deny",
    "cgroup_sock_create_deny",
    "nftables_netns",
    "freezer_v1",
    "cgroup_freeze_v2",
    "cgroup_kill",
)

# the child: one command per line on stdin, one answer per line ("ok", "errno N", "timeout")
_CHILD = r"""
import errno, socket, sys
def udp():
    r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r.bind(("127.0.0.1", 0)); r.settimeout(0.3)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.sendto(b"x", r.getsockname()); r.recv(8); return "ok"
    except socket.timeout:
        return "timeout"
def tcp():
    l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(1)
    c = socket.socket(); c.connect(l.getsockname()); return "ok"
def raw():
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close(); return "ok"
for line in sys.stdin:
    cmd = line.strip()
    try:
        out = {"udp": udp, "tcp": tcp, "raw": raw, "ping": lambda: "ok"}[cmd]()
    except OSError as e:
        out = "errno %d" % e.errno
    print(out, flush=True)
"""


class _Child:
    """The probe's child process (module docstring)."""

    def __init__(self, cg: str, freezer: str | None) -> None:
        unshare = shutil.which("unshare")
        ip = shutil.which("ip")
        if unshare is None or ip is None:
            raise EnforceError("needs unshare (util-linux) and ip (iproute2)")
        script = f'read _ && {ip} link set lo up && exec "$0" -S -c "$1"'
        self.proc = subprocess.Popen(
            [unshare, "--net", "/bin/sh", "-c", script, sys.executable, _CHILD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.pid = self.proc.pid
        for d in (cg, freezer):
            if d is not None:
                with open(os.path.join(d, "cgroup.procs"), "w", encoding="ascii") as f:
                    f.write(str(self.pid))
        self._stdin().write("go\n")
        self._stdin().flush()

    def _stdin(self) -> IO[str]:
        assert self.proc.stdin is not None
        return self.proc.stdin

    def ask(self, cmd: str, timeout: float = 3.0) -> str:
        """The child's answer to `cmd`, or ``no answer`` within `timeout`."""
        self._stdin().write(cmd + "\n")
        self._stdin().flush()
        return self.answer(timeout)

    def answer(self, timeout: float) -> str:
        """The child's next answer, or ``no answer`` within `timeout`."""
        out = self.proc.stdout
        assert out is not None
        ready, _, _ = select.select([out], [], [], timeout)
        return out.readline().strip() if ready else "no answer"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        for f in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if f is not None:
                    f.close()


def _rmdir(path: str) -> None:
    deadline = time.monotonic() + 2
    while os.path.isdir(path):
        try:
            os.rmdir(path)
        except OSError:  # the child's exit is still being accounted
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)


@contextlib.contextmanager
def _throwaway() -> Iterator[tuple[str, str | None]]:
    """A fresh cgroup2 directory and (where there is one) a fresh v1 freezer directory."""
    root = cgroup2_mount()
    if root is None:
        raise EnforceError("no cgroup2 hierarchy is mounted")
    name = f"stockade-response-probe-{os.getpid()}-{secrets.token_hex(3)}"
    cg = os.path.join(root, name)
    fz_mount = cgroup_v1_hierarchies().get("freezer")
    fz = os.path.join(fz_mount[0], name) if fz_mount else None
    os.mkdir(cg)
    try:
        if fz is not None:
            os.mkdir(fz)
        yield cg, fz
    finally:
        for d in (cg, fz):
            if d is not None:
                with contextlib.suppress(OSError):
                    _rmdir(d)


def _check(name: str, out: dict[str, Mechanism], fn: Callable[[], Mechanism]) -> None:
    try:
        out[name] = fn()
    except (OSError, EnforceError) as e:
        out[name] = Mechanism(False, str(e))


def _bpf_checks(child: _Child, cg: str, out: dict[str, Mechanism]) -> None:
    pin_dir = f"/sys/fs/bpf/stockade-response-probe-{os.getpid()}-{secrets.token_hex(3)}"
    progs = IsolatePrograms(pin_dir=pin_dir)
    cgid = cgroup_id(cg)
    try:
        progs.start()

        def skb() -> Mechanism:
            progs.enable(cgid, cg, [], loopback=False, programs=("iso_egress", "iso_ingress"))
            try:
                got = child.ask("udp")
            finally:
                progs.disable(cgid)
            ok = got in ("timeout", f"errno {errno.EPERM}")
            return Mechanism(ok, f"a loopback datagram from the isolated cgroup: {got}")

        def addr() -> tuple[str, str]:
            progs.enable(cgid, cg, [], loopback=False, programs=("iso_connect4", "iso_sock_create"))
            try:
                return child.ask("tcp"), child.ask("raw")
            finally:
                progs.disable(cgid)

        _check("cgroup_skb_drop", out, skb)
        tcp, raw = addr()
        eperm = f"errno {errno.EPERM}"
        out["cgroup_connect_deny"] = Mechanism(tcp == eperm, f"a TCP connect from the isolated cgroup: {tcp}")
        out["cgroup_sock_create_deny"] = Mechanism(
            raw == eperm, f"a raw socket in the isolated cgroup: {raw}"
        )
    except (OSError, EnforceError) as e:
        for name in ("cgroup_skb_drop", "cgroup_connect_deny", "cgroup_sock_create_deny"):
            out.setdefault(name, Mechanism(False, str(e)))
    finally:
        progs.close()
        shutil.rmtree(pin_dir, ignore_errors=True)


def _nft_check(child: _Child) -> Mechanism:
    nft = shutil.which("nft")
    if nft is None:
        return Mechanism(False, "nft not found (apt-get install nftables)")
    if host_netns(child.pid):
        return Mechanism(False, "the probe's child is not in a namespace of its own")
    rules = "table inet stockade_probe {\n chain output { type filter hook output priority 0; udp dport 1-65535 drop; }\n}\n"
    r = run_in_netns(child.pid, [nft, "-f", "-"], stdin=rules)
    if r.returncode != 0:
        return Mechanism(False, f"nft in a network namespace: {r.stderr.strip()}")
    try:
        dropped = child.ask("udp")
    finally:
        run_in_netns(child.pid, [nft, "delete", "table", "inet", "stockade_probe"])
    again = child.ask("udp")
    ok = dropped != "ok" and again == "ok"
    return Mechanism(ok, f"a datagram with the table: {dropped}; without it: {again}")


def _freeze_check(child: _Child, cg: str, method: FreezeMethod) -> Mechanism:
    res = freeze(cg, method=method, timeout_s=2.0)
    try:
        silent = child.ask("ping", timeout=0.3)
    finally:
        thawed = thaw(cg, method=method, timeout_s=2.0)
    after = child.answer(3.0) if silent == "no answer" else "answered while frozen"
    ok = res.done and thawed.done and silent == "no answer" and after == "ok"
    return Mechanism(ok, f"frozen in {res.elapsed_s * 1000:.1f} ms: {silent}; thawed: {after}")


def response_capabilities() -> dict[str, Mechanism]:
    """Per response mechanism (:data:`CHECKS`), whether it works on this node and what was seen."""
    out: dict[str, Mechanism] = {}
    if os.geteuid() != 0:
        return {name: Mechanism(False, "needs root") for name in CHECKS}
    try:
        with _throwaway() as (cg, fz):
            child = _Child(cg, fz)
            try:
                if child.ask("ping", timeout=5.0) != "ok":
                    raise EnforceError("the probe's child did not start")
                _bpf_checks(child, cg, out)
                _check("nftables_netns", out, lambda: _nft_check(child))
                if fz is None:
                    out["freezer_v1"] = Mechanism(False, "no cgroup v1 freezer hierarchy is mounted")
                else:
                    _check("freezer_v1", out, lambda: _freeze_check(child, cg, "v1"))
                _check("cgroup_freeze_v2", out, lambda: _freeze_check(child, cg, "v2"))

                def kill() -> Mechanism:
                    res = kill_container(cg, timeout_s=2.0)
                    code = child.proc.wait(2)
                    ok = res.method == "cgroup.kill" and res.empty and code == -9
                    return Mechanism(ok, f"{res.method}: exit {code} in {res.elapsed_s * 1000:.1f} ms")

                _check("cgroup_kill", out, kill)
            finally:
                child.close()
    except (OSError, EnforceError) as e:
        for name in CHECKS:
            out.setdefault(name, Mechanism(False, str(e)))
    return {name: out.get(name, Mechanism(False, "not tried")) for name in CHECKS}
