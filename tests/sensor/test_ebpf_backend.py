"""The eBPF backend against real processes, files and sockets (root, eBPF: run in CI)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import poll_until
from stockade.sensor.ebpf.backend import EbpfBackend
from stockade.sensor.ebpf.syscalls import FORK_TYPES

pytestmark = [pytest.mark.root, pytest.mark.ebpf]


def _start(evttypes: set[str], **kw: Any) -> EbpfBackend:
    b = EbpfBackend(**kw)
    b.start(evttypes)
    return b


@pytest.fixture
def backend() -> Iterator[Callable[..., EbpfBackend]]:
    made: list[EbpfBackend] = []

    def make(evttypes: set[str], **kw: Any) -> EbpfBackend:
        b = _start(evttypes, **kw)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


def test_exec_exit_fork_events(backend: Callable[..., EbpfBackend], tmp_path: Path) -> None:
    b = backend({"execve", "procexit", "clone", "fork", "vfork", "clone3"})
    assert set(b.attached) >= {"sched_exec", "sched_exit", "sched_fork"}
    script = tmp_path / "run.sh"
    script.write_text("#!/bin/sh\n/bin/true one two\nexit 3\n")
    script.chmod(0o755)
    p = subprocess.run([str(script)], cwd=tmp_path, check=False)
    assert p.returncode == 3
    evs = poll_until(b, lambda _e: True, 10**9, timeout=1.0)
    sh = [e for e in evs if e["evt.type"] == "execve" and e.get("evt.arg.filename") == str(script)]
    true = [e for e in evs if e["evt.type"] == "execve" and e.get("proc.exepath") == "/usr/bin/true"]
    assert sh and true, evs
    shell = sh[0]
    assert shell["proc.ppid"] == os.getpid()
    assert shell["proc.exepath"] in ("/usr/bin/dash", "/bin/dash", "/usr/bin/bash", "/bin/bash")
    assert shell["proc.cwd"] == str(tmp_path) + "/"
    assert shell["user.uid"] == os.geteuid()
    t = [e for e in true if e["proc.ppid"] == shell["proc.pid"]]
    assert t, true
    assert t[0]["proc.cmdline"] == "true one two"
    assert t[0]["proc.args"] == "one two"
    assert t[0]["proc.exe"] == "/bin/true"
    assert t[0]["proc.name"] == "true"
    assert t[0]["evt.rawres"] == 0 and t[0]["evt.dir"] == "<"
    assert abs(t[0]["evt.time"] - time.time_ns()) < 60 * 10**9
    # the shell forked for /bin/true, and exited with status 3
    rest: list[dict[str, Any]] = []
    exits = {e["proc.pid"]: e for e in evs + rest if e["evt.type"] == "procexit"}
    assert exits[shell["proc.pid"]]["evt.arg.ret"] == 3
    assert exits[t[0]["proc.pid"]]["evt.arg.ret"] == 0
    assert exits[t[0]["proc.pid"]]["proc.exepath"] == "/usr/bin/true"
    forks = [e for e in evs + rest if e["evt.type"] in FORK_TYPES and e["proc.pid"] == t[0]["proc.pid"]]
    assert forks and forks[0]["proc.ppid"] == shell["proc.pid"]
    assert forks[0]["proc.exepath"] == shell["proc.exepath"]  # the child runs the shell until it execs
    assert forks[0]["_pstart_ns"] == shell["_start_ns"]  # the fork names its parent's start
    failed = [e for e in evs if e["evt.type"] == "execve" and e["evt.rawres"] < 0]
    assert all(e["evt.res"] == "ENOENT" for e in failed)  # PATH lookups that missed, if any


def test_open_success_failure_and_relative(backend: Callable[..., EbpfBackend], tmp_path: Path) -> None:
    b = backend({"open", "openat", "openat2"})
    (tmp_path / "sub").mkdir()
    f = tmp_path / "sub" / "data.txt"
    f.write_text("x")
    p1 = subprocess.run(["cat", str(f)], capture_output=True, check=False)
    p2 = subprocess.run(["cat", str(tmp_path / "missing")], capture_output=True, check=False)
    p3 = subprocess.run(["cat", "sub/../sub/data.txt"], cwd=tmp_path, capture_output=True, check=False)
    p4 = subprocess.run(["sh", "-c", f"echo hi > {tmp_path}/out.txt"], check=False)
    assert p1.returncode == 0 and p2.returncode != 0 and p3.returncode == 0 and p4.returncode == 0
    evs = poll_until(b, lambda e: str(e.get("fd.name", "")).startswith(str(tmp_path)), 4)
    by = {(e["fd.name"], e["evt.rawres"] >= 0): e for e in evs}
    ok = by[(str(f), True)]
    assert ok["evt.type"] == "openat" and ok["proc.name"] == "cat"
    assert ok["evt.arg.flags"].startswith("O_RDONLY")
    assert ok["evt.is_open_read"] is True and ok["evt.is_open_write"] is False
    assert ok["fd.typechar"] == "f" and ok["fd.num"] == ok["evt.rawres"]
    assert ok["proc.ppid"] == os.getpid()
    bad = by[(str(tmp_path / "missing"), False)]
    assert bad["evt.rawres"] == -2 and bad["evt.res"] == "ENOENT"
    rel = [e for e in evs if e.get("evt.arg.name") == "sub/../sub/data.txt"]
    assert rel and rel[0]["fd.name"] == str(f)
    w = by[(str(tmp_path / "out.txt"), True)]
    assert (
        "O_WRONLY" in w["evt.arg.flags"]
        and "O_CREAT" in w["evt.arg.flags"]
        and "O_TRUNC" in w["evt.arg.flags"]
    )
    assert w["evt.is_open_write"] is True


def test_connect_and_accept_tuples(backend: Callable[..., EbpfBackend]) -> None:
    b = backend({"connect", "accept", "accept4", "listen", "socket"})
    srv = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import socket,sys\ns=socket.socket(); s.bind(('127.0.0.1',0)); s.listen()\n"
            "print(s.getsockname()[1], flush=True)\nc,a=s.accept(); c.recv(1)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert srv.stdout is not None
        port = int(srv.stdout.readline())
        cli = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import socket; s=socket.create_connection(('127.0.0.1',{port})); s.send(b'x')",
            ],
            check=True,
        )
        assert cli.returncode == 0
        srv.wait(5)
        evs = poll_until(b, lambda e: e["proc.pid"] in (srv.pid,) or e.get("fd.sport") == port, 3)
    finally:
        with srv:  # closes its stdout and waits
            srv.kill()
    con = [e for e in evs if e["evt.type"] == "connect"]
    acc = [e for e in evs if e["evt.type"] in ("accept", "accept4")]
    lis = [e for e in evs if e["evt.type"] == "listen"]
    assert con and acc and lis, evs
    c = con[0]
    assert c["evt.rawres"] == 0 and c["fd.type"] == "ipv4" and c["fd.l4proto"] == "tcp"
    assert c["fd.sip"] == "127.0.0.1" and c["fd.sport"] == port
    assert c["fd.cip"] == "127.0.0.1" and c["fd.cport"] > 0
    assert c["fd.name"] == f"127.0.0.1:{c['fd.cport']}->127.0.0.1:{port}"
    a = acc[0]
    assert a["proc.pid"] == srv.pid and a["fd.is_server"] is True
    assert a["fd.name"] == c["fd.name"], (a, c)
    assert lis[0]["fd.name"] == f"127.0.0.1:{port}"


def test_connect_refused_and_socket_domain(backend: Callable[..., EbpfBackend]) -> None:
    b = backend({"connect", "socket"})
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    p = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import socket\ntry: socket.create_connection(('127.0.0.1',{port}))\nexcept OSError: pass",
        ],
        check=True,
    )
    assert p.returncode == 0
    evs = poll_until(b, lambda e: e.get("fd.sport") == port or e["evt.type"] == "socket", 2)
    con = [e for e in evs if e["evt.type"] == "connect" and e.get("fd.sport") == port]
    assert con and con[0]["evt.res"] == "ECONNREFUSED" and con[0]["evt.failed"] is True
    doms = {e.get("evt.arg.domain") for e in evs if e["evt.type"] == "socket"}
    assert "AF_INET" in doms


def test_path_syscalls(backend: Callable[..., EbpfBackend], tmp_path: Path) -> None:
    b = backend(
        {"mkdirat", "mkdir", "renameat2", "rename", "unlinkat", "unlink", "symlinkat", "symlink", "fchmodat"}
    )
    d = tmp_path
    cmd = f"cd {d} && mkdir newdir && touch a && mv a b && ln -s /etc/shadow link && chmod 600 b && rm b"
    subprocess.run(["sh", "-c", cmd], check=True)
    evs = poll_until(b, lambda e: str(e.get("fd.name", "")).startswith(str(d)), 5)
    types = {e["evt.type"] for e in evs}
    assert types & {"mkdir", "mkdirat"}
    assert types & {"rename", "renameat2", "renameat"}
    assert types & {"unlink", "unlinkat"}
    assert types & {"symlink", "symlinkat"}
    assert "fchmodat" in types
    ren = next(e for e in evs if e["evt.type"] in ("rename", "renameat2", "renameat"))
    assert ren["fs.path.source"] == f"{d}/a" and ren["fs.path.target"] == f"{d}/b"
    sym = next(e for e in evs if e["evt.type"] in ("symlink", "symlinkat"))
    assert sym["evt.arg.target"] == "/etc/shadow" and sym["fd.name"] == f"{d}/link"


def test_adaptive_selection_only_openat(backend: Callable[..., EbpfBackend], tmp_path: Path) -> None:
    b = backend({"openat"})
    assert "sched_fork" not in b.attached and "sched_exec" in b.attached  # exec only for bookkeeping
    f = tmp_path / "x"
    f.write_text("x")
    subprocess.run(["cat", str(f)], capture_output=True, check=True)
    evs = poll_until(b, lambda e: e.get("fd.name") == str(f), 1)
    assert evs
    more = evs + b.poll(0.2)
    assert {e["evt.type"] for e in more} == {"openat"}


def test_own_process_ignored_in_kernel(backend: Callable[..., EbpfBackend], tmp_path: Path) -> None:
    b = backend({"openat"})
    f = tmp_path / "mine"
    f.write_text("x")
    for _ in range(5):
        f.read_text()
    subprocess.run(["cat", str(f)], capture_output=True, check=True)
    evs = poll_until(b, lambda e: e.get("fd.name") == str(f), 1)
    assert evs and all(e["proc.pid"] != os.getpid() for e in evs)


def test_close_detaches() -> None:
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        b = _start({"openat", "execve"})
        b.poll(0.01)
        b.close()
        b.close()  # idempotent
    assert len(os.listdir("/proc/self/fd")) <= before + 1  # no fd leak per start/close
    with pytest.raises(Exception, match="not started"):
        b.poll(0.0)
