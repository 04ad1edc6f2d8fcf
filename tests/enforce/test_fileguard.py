"""FileGuard on real podman (and runc) containers: execs and opens decided by a policy's decider,
denied with EPERM inside the container, the kernel's allow cache, the ld.so bypass, audit mode,
release, a container's exit, and the host left alone.

The container runs `benchmarks/enforce_probe.c` built statically (``/bin/probe``): the only program
the test policies let it run, so every check is made by the probe reporting what the kernel said
(``ok ...`` or ``err ERRNO NAME``). ``podman exec`` itself starts the probe through runc's init
process, which reads the container's /etc/passwd and /etc/group first: every policy allows those.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from helpers import REPO, need, wait_until
from stockade.enforce.fileguard import FileGuard, container_mounts, is_loader_name
from stockade.enforce.interface import Action, Denial, FileKind, Verdict

pytestmark = [pytest.mark.root, pytest.mark.containers]

PROBE_SRC = REPO / "benchmarks" / "enforce_probe.c"
#: what runc's init reads in the container before it starts the command of a `podman exec`
RUNTIME_OPENS = ("/etc/passwd", "/etc/group")
SHADOW = "root:$6$secret:19000:0:99999:7:::\n"


@dataclass
class Rules:
    """A policy's decider for the tests: glob allow-lists per kind, audit globs, a default action;
    every call is recorded (the guard calls it from its own thread)."""

    exec: tuple[str, ...] = ("/bin/probe",)
    open: tuple[str, ...] = (*RUNTIME_OPENS, "/etc/allowed.txt")
    audit: tuple[str, ...] = ()
    default: Action = "block"
    calls: list[tuple[FileKind, str]] = field(default_factory=list)
    raise_on: str | None = None

    def __call__(self, kind: FileKind, path: str) -> Verdict:
        self.calls.append((kind, path))
        if path == self.raise_on:
            raise RuntimeError(f"no decision for {path}")
        if any(fnmatch(path, p) for p in self.audit):
            return Verdict("audit", "test-policy", "audited")
        if any(fnmatch(path, p) for p in (self.exec if kind == "exec" else self.open)):
            return Verdict("allow", "test-policy", f"{kind}-allowed")
        return Verdict(self.default, "test-policy", "default")

    def asked(self, kind: FileKind, path: str) -> int:
        return self.calls.count((kind, path))


class Denials:
    """The guard's deny sink: every Denial kept, waited for."""

    def __init__(self) -> None:
        self.seen: list[Denial] = []
        self._lock = threading.Lock()

    def __call__(self, d: Denial) -> None:
        with self._lock:
            self.seen.append(d)

    def of(self, kind: str, target: str) -> list[Denial]:
        with self._lock:
            return [d for d in self.seen if d.kind == kind and d.target == target]

    def wait(self, kind: str, target: str, n: int = 1) -> list[Denial]:
        assert wait_until(lambda: len(self.of(kind, target)) >= n, timeout=10), (kind, target, self.seen)
        return self.of(kind, target)


def _build(out: Path, *, static: bool) -> Path:
    cc = need(shutil.which("clang") or shutil.which("cc"), "needs clang to build benchmarks/enforce_probe.c")
    cmd = [cc, "-O1", *(["-static"] if static else []), "-o", str(out), str(PROBE_SRC)]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=120)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """enforce_probe, built statically."""
    return _build(tmp_path_factory.mktemp("probe") / "probe", static=True)


@pytest.fixture(scope="module")
def probe_dyn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """enforce_probe, dynamically linked against the host's glibc."""
    return _build(tmp_path_factory.mktemp("probe-dyn") / "probe-dyn", static=False)


@pytest.fixture
def denials() -> Denials:
    return Denials()


@pytest.fixture
def guard(denials: Denials) -> Iterator[FileGuard]:
    g = FileGuard(denials)
    g.start()
    try:
        yield g
    finally:
        g.stop()


@dataclass
class Box:
    """A podman container with /bin/probe, an /etc/shadow and an /etc/allowed.txt."""

    c: Any

    @property
    def id(self) -> str:
        return str(self.c.id)

    @property
    def pid(self) -> int:
        return int(self.c.pid)

    def probe(self, *args: str) -> str:
        r = self.c.exec(["/bin/probe", *args])
        lines = r.stdout.strip().splitlines()
        assert lines, f"probe {args}: rc {r.returncode}, no output; stderr: {r.stderr}"
        return str(lines[-1])


@pytest.fixture
def box(podman_container: Any, probe: Path) -> Box:
    c = podman_container()
    c.cp(str(probe), "/bin/probe")
    r = c.exec(
        [
            "sh",
            "-c",
            f"printf '{SHADOW}' > /etc/shadow; echo data > /etc/allowed.txt; echo a > /etc/audited.txt",
        ]
    )
    assert r.returncode == 0, r.stderr
    return Box(c)


EPERM = f"err 1 {os.strerror(1)}"


def test_exec_and_open_outside_the_policy_fail_with_eperm(
    guard: FileGuard, box: Box, denials: Denials
) -> None:
    rules = Rules()
    guard.protect(box.id, box.pid, rules)
    assert guard.protected() == {box.id: box.pid}
    # /bin/sh is busybox's symlink: the kernel opens (and the decider sees) /bin/busybox
    assert box.probe("exec", "/bin/sh", "-c", "true") == EPERM
    assert rules.asked("exec", "/bin/busybox") == 1
    assert rules.asked("exec", "/bin/sh") == 0
    assert box.probe("open", "/etc/shadow") == EPERM
    assert box.probe("open", "/etc/allowed.txt") == "ok"
    assert box.probe("exec", "/bin/probe", "true") == "ok 0"
    (sh,) = denials.wait("exec", "/bin/busybox")
    (shadow,) = denials.wait("open", "/etc/shadow")
    for d in (sh, shadow):
        assert d.blocked
        assert d.container == box.id
        assert d.verdict == Verdict("block", "test-policy", "default")
        assert d.comm == "probe"
        assert d.exe == "/bin/probe"
        assert d.pid > 0 and d.time_ns > 0
    assert guard.stats.blocked == 2
    assert guard.stats.errors == 0
    assert not denials.of("open", "/etc/allowed.txt")


def test_a_fresh_copy_of_an_allowed_binary_is_denied(guard: FileGuard, box: Box, denials: Denials) -> None:
    rules = Rules(open=(*RUNTIME_OPENS, "/bin/probe", "/tmp/*"))
    guard.protect(box.id, box.pid, rules)
    assert box.probe("copy", "/bin/probe", "/tmp/probe2").startswith("ok ")
    assert box.probe("exec", "/tmp/probe2", "true") == EPERM
    assert box.probe("exec", "/bin/probe", "true") == "ok 0"
    (d,) = denials.wait("exec", "/tmp/probe2")
    assert d.blocked


def test_audit_only_reports_and_lets_through(guard: FileGuard, box: Box, denials: Denials) -> None:
    rules = Rules(audit=("/etc/audited.txt",))
    guard.protect(box.id, box.pid, rules, audit_only=True)
    assert box.probe("exec", "/bin/sh", "-c", "true") == "ok 0"
    assert box.probe("open", "/etc/shadow") == "ok"
    assert box.probe("open", "/etc/shadow") == "ok"
    assert box.probe("open", "/etc/audited.txt") == "ok"
    (sh,) = denials.wait("exec", "/bin/busybox")
    assert not sh.blocked
    assert sh.verdict.action == "block"  # what the policy says; audit_only made it an audit
    # an audit is never cached: each open is reported
    shadow = denials.wait("open", "/etc/shadow", 2)
    assert not any(d.blocked for d in shadow)
    (audited,) = denials.wait("open", "/etc/audited.txt")
    assert audited.verdict == Verdict("audit", "test-policy", "audited")
    assert guard.stats.blocked == 0
    assert guard.stats.audited >= 4


def test_an_audit_verdict_lets_through_when_enforcing(guard: FileGuard, box: Box, denials: Denials) -> None:
    rules = Rules(audit=("/etc/audited.txt",))
    guard.protect(box.id, box.pid, rules)
    assert box.probe("opens", "/etc/audited.txt", "3") == "ok 3"
    assert box.probe("open", "/etc/shadow") == EPERM
    audited = denials.wait("open", "/etc/audited.txt", 3)
    assert not any(d.blocked for d in audited)
    assert rules.asked("open", "/etc/audited.txt") == 3


def test_the_allow_cache_answers_repeated_opens_in_the_kernel(guard: FileGuard, box: Box) -> None:
    rules = Rules()
    guard.protect(box.id, box.pid, rules)
    assert box.probe("opens", "/etc/allowed.txt", "50") == "ok 50"
    assert box.probe("opens", "/etc/allowed.txt", "50") == "ok 50"
    assert rules.asked("open", "/etc/allowed.txt") == 1
    assert box.probe("exec", "/bin/probe", "true") == "ok 0"
    assert box.probe("exec", "/bin/probe", "true") == "ok 0"
    assert rules.asked("exec", "/bin/probe") == 1
    assert guard.stats.cache_marks >= 2
    # a write clears the file's cached allow: the modified file is decided again
    assert box.probe("append", "/etc/allowed.txt", "more") == "ok"
    assert box.probe("open", "/etc/allowed.txt") == "ok"
    assert rules.asked("open", "/etc/allowed.txt") == 2
    # a policy update empties the cache: the new decider is asked, and its answer holds
    stricter = Rules(open=RUNTIME_OPENS)
    guard.protect(box.id, box.pid, stricter)
    assert box.probe("open", "/etc/allowed.txt") == EPERM
    assert stricter.asked("open", "/etc/allowed.txt") == 1
    assert rules.asked("open", "/etc/allowed.txt") == 2


def test_release_lets_everything_through(guard: FileGuard, box: Box) -> None:
    rules = Rules()
    guard.protect(box.id, box.pid, rules)
    assert box.probe("open", "/etc/shadow") == EPERM
    guard.release(box.id)
    assert guard.protected() == {}
    events = guard.stats.events
    assert box.probe("open", "/etc/shadow") == "ok"
    assert box.probe("exec", "/bin/sh", "-c", "true") == "ok 0"
    assert guard.stats.events == events
    guard.release(box.id)  # twice: nothing


def test_the_host_and_other_containers_are_left_alone(
    guard: FileGuard, box: Box, podman_container: Any, probe: Path
) -> None:
    other = podman_container()
    other.cp(str(probe), "/bin/probe")
    guard.protect(box.id, box.pid, Rules(open=RUNTIME_OPENS))
    assert box.probe("open", "/etc/shadow") == EPERM
    events, asked = guard.stats.events, guard.stats.allowed + guard.stats.blocked
    info = box.c.inspect()
    merged = Path(info["GraphDriver"]["Data"]["MergedDir"])
    # the host's view of the same overlay, and the host file behind the container's /etc/hosts
    for path in (merged / "etc" / "shadow", Path(info["HostsPath"]), Path("/etc/passwd")):
        r = subprocess.run(["cat", str(path)], capture_output=True, check=False)
        assert r.returncode == 0, (path, r.stderr)
    r = subprocess.run(["sh", "-c", "true"], check=False)
    assert r.returncode == 0
    # another container is not protected
    assert other.exec(["/bin/probe", "exec", "/bin/sh", "-c", "true"]).stdout.strip() == "ok 0"
    assert guard.stats.events == events
    assert guard.stats.allowed + guard.stats.blocked == asked


def test_the_agent_itself_is_let_through_and_a_host_process_through_proc_root_is_not(
    guard: FileGuard, box: Box, denials: Denials
) -> None:
    rules = Rules(open=RUNTIME_OPENS)
    guard.protect(box.id, box.pid, rules)
    shadow = f"/proc/{box.pid}/root/etc/shadow"
    before = guard.stats.events
    assert Path(shadow).read_text() == SHADOW  # this process is the agent
    assert guard.stats.events == before + 1
    assert rules.asked("open", "/etc/shadow") == 0
    # another host process reaches the container's files through the container's own mount
    r = subprocess.run(["cat", shadow], capture_output=True, text=True, check=False)
    assert r.returncode != 0
    assert "Operation not permitted" in r.stderr
    (d,) = denials.wait("open", "/etc/shadow")
    assert d.comm == "cat"


def test_a_decider_that_raises_lets_the_operation_through(guard: FileGuard, box: Box) -> None:
    rules = Rules(raise_on="/etc/shadow")
    guard.protect(box.id, box.pid, rules)
    assert box.probe("open", "/etc/shadow") == "ok"
    assert guard.stats.errors == 1
    assert "RuntimeError" in guard.errors.errors[-1]
    assert box.probe("open", "/etc/hostname") == EPERM  # the others are still decided


def test_a_container_that_exits_is_released(guard: FileGuard, box: Box) -> None:
    guard.protect(box.id, box.pid, Rules())
    r = subprocess.run(
        ["podman", "kill", box.c.name], capture_output=True, text=True, check=False, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert wait_until(lambda: guard.protected() == {}, timeout=15)
    assert guard.stats.errors == 0


def _host_libs(binary: Path) -> list[str]:
    """The host paths of the loader and libraries `binary` needs (from ldd)."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    libs = []
    for line in out.splitlines():
        words = line.split()
        path = words[2] if "=>" in words and len(words) > 3 else words[0]
        if path.startswith("/"):
            libs.append(path)
    return libs


def test_a_program_run_through_ld_so_is_decided_as_an_exec(
    guard: FileGuard, box: Box, probe_dyn: Path, denials: Denials
) -> None:
    libs = _host_libs(probe_dyn)
    loaders = [p for p in libs if is_loader_name(os.path.basename(p))]
    ldso = need(loaders[0] if loaders else None, f"no dynamic loader among {libs}")
    for lib in libs:
        assert box.c.exec(["mkdir", "-p", os.path.dirname(lib)]).returncode == 0
        box.c.cp(os.path.realpath(lib), lib)
    box.c.cp(str(probe_dyn), "/bin/probe-dyn")
    rules = Rules(
        exec=("/bin/probe", "/bin/probe-dyn", ldso),
        open=(*RUNTIME_OPENS, "/lib/*", "/lib64/*", "/lib/*/*", "/bin/probe-dyn", "/tmp/*"),
    )
    guard.protect(box.id, box.pid, rules)
    # a dynamically linked program: the kernel execs it, then its interpreter (ld.so)
    assert box.probe("exec", "/bin/probe-dyn", "open", "/etc/passwd") == "ok 0"
    assert rules.asked("exec", ldso) == 1
    assert box.probe("copy", "/bin/probe-dyn", "/tmp/evil").startswith("ok ")
    # the container may read it (the policy allows opens in /tmp) but not run it, directly...
    assert box.probe("open", "/tmp/evil") == "ok"
    assert box.probe("exec", "/tmp/evil", "true") == EPERM
    # ...nor through ld.so, where the kernel sees only an open of it (twice: not cached)
    for _ in range(2):
        assert box.probe("exec", ldso, "/tmp/evil", "true") == "ok 127"
    through_ldso = [d for d in denials.wait("exec", "/tmp/evil", 3) if d.exe == ldso]
    assert len(through_ldso) == 2
    assert all(d.blocked for d in through_ldso)
    # an allowed program through ld.so runs, its libraries opened as opens
    assert box.probe("exec", ldso, "/bin/probe-dyn", "open", "/etc/passwd") == "ok 0"
    # a hard link to the loader under another name is still the loader
    assert box.probe("link", ldso, "/tmp/loader") == "ok"
    assert box.probe("exec", "/tmp/loader", "/tmp/evil", "true") == "ok 127"
    assert [d for d in denials.wait("exec", "/tmp/evil", 4) if d.exe == "/tmp/loader"]
    assert not [d for d in denials.seen if d.target != "/tmp/evil"], denials.seen
    assert guard.stats.errors == 0


def test_paths_are_the_containers_own_in_a_runc_container_with_a_bind_mount(
    guard: FileGuard, runc_container: Any, probe: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "f").write_text("x")
    c = runc_container(mounts=[(str(data), "/data", True)])
    shutil.copy2(probe, c.rootfs / "bin" / "probe")
    assert "/data" in [m.mountpoint for m in container_mounts(c.pid)]
    rules = Rules(open=(*RUNTIME_OPENS, "/data/f"))
    guard.protect(c.id, c.pid, rules)
    assert c.exec(["/bin/probe", "open", "/data/f"]).stdout.strip() == "ok"
    assert c.exec(["/bin/probe", "open", "/etc/passwd"]).stdout.strip() == "ok"
    assert c.exec(["/bin/probe", "exec", "/bin/cat", "/data/f"]).stdout.strip() == EPERM
    assert rules.asked("open", "/data/f") == 1
    assert rules.asked("exec", "/bin/busybox") == 1
    # the host's own path of the bind mount's source is not the container's mount
    assert (data / "f").read_text() == "x"
    assert subprocess.run(["cat", str(data / "f")], capture_output=True, check=False).returncode == 0
    assert rules.asked("open", str(data / "f")) == 0


def test_every_mount_with_files_is_marked_and_a_new_one_at_the_next_protect(
    guard: FileGuard, podman_container: Any, probe: Path
) -> None:
    c = podman_container(privileged=True)
    c.cp(str(probe), "/bin/probe")
    box = Box(c)
    rules = Rules(exec=("/bin/probe", "/bin/busybox"), open=(*RUNTIME_OPENS, "/bin/probe", "/mnt/*"))
    guard.protect(box.id, box.pid, rules)
    marked = guard.marked_mounts(box.id)
    assert {"/", "/dev", "/dev/shm", "/etc/hosts"} <= set(marked), marked
    assert not [m for m in marked if m.startswith(("/proc", "/sys", "/dev/pts", "/dev/mqueue"))], marked
    # a tmpfs mounted inside the container after protect(): seen once protect() runs again
    assert c.exec(["mount", "-t", "tmpfs", "tmpfs", "/mnt"]).returncode == 0
    assert box.probe("copy", "/bin/probe", "/mnt/p") == "ok " + str(probe.stat().st_size)
    assert box.probe("exec", "/mnt/p", "true") == "ok 0"  # not marked yet
    guard.protect(box.id, box.pid, rules)
    assert "/mnt" in guard.marked_mounts(box.id)
    assert box.probe("exec", "/mnt/p", "true") == EPERM
    assert rules.asked("exec", "/mnt/p") == 1
    guard.release(box.id)
    assert guard.marked_mounts(box.id) == []
