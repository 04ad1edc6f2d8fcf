"""The facts of an exec as the eBPF sensor reports them (root, eBPF): the whole argument list, the
executable and the working directory in the process's own view (relative to its root, as libsinsp's
proc.cwd and proc.exepath are), whatever the length of the file name given to execve.

A file name of 4n bytes once shifted every later part of the exec record: the event lost its
arguments and its directory, and the process kept the facts of the program before its exec."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stockade.sensor.ebpf.backend import EbpfBackend

pytestmark = [pytest.mark.root, pytest.mark.ebpf]


@pytest.fixture
def backend() -> Iterator[EbpfBackend]:
    b = EbpfBackend()
    b.start({"execve", "execveat"})
    try:
        yield b
    finally:
        b.close()


def _execs(b: EbpfBackend, until: Callable[[list[dict[str, Any]]], bool], limit_s: float = 10.0) -> list[Any]:
    """Exec events read until `until(events)` holds (or the limit)."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and not until(got):
        got += [e for e in b.poll(0.1) if e["evt.type"] in ("execve", "execveat")]
    return got


def test_every_file_name_length_keeps_the_arguments_and_directory(
    backend: EbpfBackend, tmp_path: Path
) -> None:
    true = os.path.realpath(shutil.which("true") or "/bin/true")
    work = tmp_path / "work"
    work.mkdir()
    names = ["t" * n for n in range(1, 9)]  # file names of every length modulo 4
    for n in names:
        (tmp_path / n).symlink_to(true)
    pids = {}
    for i, n in enumerate(names):
        p = subprocess.Popen([str(tmp_path / n), f"arg-{i}", "two words"], cwd=work)
        p.wait()
        pids[p.pid] = i
    got = _execs(backend, lambda evs: {e["proc.pid"] for e in evs} >= set(pids))
    seen = {e["proc.pid"]: e for e in got if e["proc.pid"] in pids}
    assert set(seen) == set(pids)
    for pid, i in pids.items():
        e = seen[pid]
        assert e["evt.arg.filename"] == str(tmp_path / names[i]), e
        assert e["proc.args"] == f"arg-{i} two words", e
        assert e["proc.cmdline"] == f"{e['proc.name']} arg-{i} two words", e
        assert e["proc.exepath"] == true, e
        assert e["proc.cwd"] == f"{work}/", e
        assert "proc.args_truncated" not in e


def test_a_chroot_sees_its_own_paths(backend: EbpfBackend, busybox_rootfs: Path, tmp_path: Path) -> None:
    """A chrooted process's directory and executable are relative to its root (a container's root
    is another case of it): libsinsp's view, not the host's path to them."""
    root = tmp_path / "root"
    shutil.copytree(busybox_rootfs, root, symlinks=True)
    p = subprocess.run(
        ["chroot", str(root), "/bin/sh", "-c", "cd /tmp && /bin/cat /etc/passwd >/dev/null; exit 0"],
        check=True,
    )
    assert p.returncode == 0
    got = _execs(
        backend, lambda evs: any(e.get("proc.name") == "cat" and "/etc/passwd" in e["proc.args"] for e in evs)
    )
    cat = [e for e in got if e.get("proc.name") == "cat" and e["proc.args"] == "/etc/passwd"]
    assert cat, got
    assert cat[0]["proc.cwd"] == "/tmp/"
    assert cat[0]["proc.exepath"] == "/bin/busybox"
    assert cat[0]["evt.arg.filename"] == "/bin/cat"


def test_the_root_directory_is_one_slash(backend: EbpfBackend) -> None:
    p = subprocess.Popen(["/bin/true", "root-cwd"], cwd="/")
    p.wait()
    got = _execs(backend, lambda evs: any(e["proc.pid"] == p.pid for e in evs))
    e = next(e for e in got if e["proc.pid"] == p.pid)
    assert e["proc.cwd"] == "/"


def test_arguments_longer_than_the_record_are_whole_or_said_to_be_cut(backend: EbpfBackend) -> None:
    """The kernel record holds 4 KiB of arguments; the rest is read from /proc while the process
    still runs, and an event whose process was gone says proc.args_truncated (and is counted)."""
    long_arg = "x" * 6000
    alive = subprocess.Popen(["/bin/sh", "-c", "sleep 2", "stk-long", long_arg])
    brief = subprocess.Popen(["/bin/true", "stk-brief", long_arg])
    brief.wait()
    try:
        got = _execs(backend, lambda evs: {alive.pid, brief.pid} <= {e["proc.pid"] for e in evs})
    finally:
        alive.kill()
        alive.wait()
    by_pid = {e["proc.pid"]: e for e in got}
    a = by_pid[alive.pid]
    assert a["proc.args"] == f"-c sleep 2 stk-long {long_arg}"
    assert "proc.args_truncated" not in a
    b = by_pid[brief.pid]
    whole = f"stk-brief {long_arg}"
    if b.get("proc.args_truncated"):
        assert whole.startswith(b["proc.args"]) and len(b["proc.args"]) < len(whole)
        assert backend.stats.incomplete["args_truncated"] >= 1
    else:
        assert b["proc.args"] == whole
    assert backend.stats.incomplete["args_from_proc"] >= 1
