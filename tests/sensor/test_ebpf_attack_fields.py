"""The exec and file facts attack rules read, from real processes through the eBPF sensor (root,
eBPF): the environment at exec (``proc.env``: a variable a shell exported, one at the end of an
environment longer than the 4 KiB read first), the standard fds (``proc.stdin.type`` of a shell
fed by a pipe, ``proc.stdout.name`` of a program writing to /dev/null), timestamps set (utimensat,
utimes, utime: ``touch -t``, ``touch -r``, Python's os.utime, Perl's utime), truncate and
ftruncate (``truncate -s0``, ``truncate -s +1``) and fchmod, each with the file's path.

Every command runs once, all of them under one backend (fast, also on busy cores), and each test
looks for its events among those read."""

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

Ev = dict[str, Any]
TYPES = {
    "execve",
    "execveat",
    "clone",
    "fork",
    "vfork",
    "clone3",
    "procexit",
    "openat",
    "utimensat",
    "utimes",
    "utime",
    "futimesat",
    "truncate",
    "ftruncate",
    "fchmod",
}
#: 1970-01-01 00:00 UTC, as touch -t 197001010000 sets it under TZ=UTC
EPOCH = 0


class Run:
    """The events of one backend while the commands ran, and the pids of what ran."""

    def __init__(self, b: EbpfBackend) -> None:
        self.b = b
        self.events: list[Ev] = []

    def read_until(self, done: Callable[[list[Ev]], bool], limit_s: float = 10.0) -> list[Ev]:
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline and not done(self.events):
            self.events += self.b.poll(0.1)
        return self.events

    def of(self, pid: int, evtype: str, limit_s: float = 10.0) -> list[Ev]:
        """The events of type `evtype` of process `pid` (or of a process it started: `pid` is a shell's)."""

        def mine(e: Ev) -> bool:
            return e["evt.type"] == evtype and (e["proc.pid"] == pid or e.get("proc.ppid") == pid)

        self.read_until(lambda evs: any(mine(e) for e in evs), limit_s)
        # what arrives in the same batch or just after
        self.read_until(lambda _evs: False, 0.3)
        return [e for e in self.events if mine(e)]


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    b = EbpfBackend()
    b.start(TYPES)
    try:
        yield Run(b)
    finally:
        b.close()


def _sh(script: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> int:
    p = subprocess.Popen(["/bin/sh", "-c", script], env=env, cwd=cwd)
    assert p.wait() == 0
    return p.pid


def _execs_below(run: Run, shell_pid: int, name: str) -> list[Ev]:
    return [e for e in run.of(shell_pid, "execve") if e["proc.name"] == name]


# ---- proc.env ------------------------------------------------------------------------------------


def test_an_exported_variable_is_in_the_environment_of_the_children(run: Run) -> None:
    pid = _sh("export HISTFILE=/dev/null; id -u >/dev/null", env={"PATH": "/usr/bin:/bin", "A": "1"})
    (ev,) = _execs_below(run, pid, "id")
    assert "HISTFILE=/dev/null" in ev["proc.env"].split(" ")
    assert "A=1" in ev["proc.env"].split(" ")
    assert ev["evt.arg.env"] == ev["proc.env"]
    # the shell itself ran with the environment it was given
    (sh,) = [e for e in run.of(pid, "execve") if e["proc.pid"] == pid]
    assert "HISTFILE=" not in sh["proc.env"]
    assert sh["proc.env"] == "PATH=/usr/bin:/bin A=1"


def test_a_variable_at_the_end_of_a_long_environment_is_seen(run: Run) -> None:
    env = {"PATH": "/usr/bin:/bin", "FIRST": "1"}
    env.update({f"FILLER_{i:03d}": "x" * 60 for i in range(120)})  # ~8 KiB
    pid = _sh("HISTSIZE=0 id -u >/dev/null", env=env)
    (ev,) = _execs_below(run, pid, "id")
    entries = ev["proc.env"].split(" ")
    assert "FIRST=1" in entries
    assert "HISTSIZE=0" in entries  # the shell puts a command's own assignment last
    assert all("=" in e for e in entries)  # entries cut at the edges are left out
    assert "FILLER_000=" + "x" * 60 in entries
    assert len(entries) < len(env) + 1  # the middle is not read
    dec = run.b._decoder
    assert dec is not None
    assert dec.facts["env_truncated"] + run.b.stats.incomplete.get("env_truncated", 0) >= 1


def test_later_events_of_the_process_carry_its_environment(run: Run, tmp_path: Path) -> None:
    f = tmp_path / "later"
    pid = _sh(f"exec /usr/bin/env touch {f}", env={"PATH": "/usr/bin:/bin", "MARK": "later"})
    evs = [e for e in run.of(pid, "utimensat") if e.get("fd.name") == str(f)]
    assert evs and "MARK=later" in evs[0]["proc.env"].split(" ")


# ---- proc.stdin / stdout / stderr -------------------------------------------------------------


def test_a_shell_fed_by_a_pipe_has_a_pipe_on_stdin(run: Run) -> None:
    pid = _sh("echo 'id -u' | base64 | base64 -d | sh >/dev/null")
    (inner,) = [e for e in run.of(pid, "execve") if e["proc.name"] == "sh" and e["proc.pid"] != pid]
    assert inner["proc.stdin.type"] == "pipe"
    assert inner["proc.stdin.name"].startswith("pipe:[") and inner["proc.stdin.name"].endswith("]")
    assert inner["proc.args"] == ""
    assert inner["proc.stdout.type"] == "file" and inner["proc.stdout.name"] == "/dev/null"


def test_stdout_to_dev_null_and_to_a_file(run: Run, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    pid = _sh(f"yes | head -n 1 >/dev/null; id -u > {out} 2>&1 </dev/null")
    (head,) = _execs_below(run, pid, "head")
    assert head["proc.stdout.name"] == "/dev/null"
    assert head["proc.stdin.type"] == "pipe"
    (yes,) = _execs_below(run, pid, "yes")
    assert yes["proc.stdout.type"] == "pipe"
    (ident,) = _execs_below(run, pid, "id")
    assert (ident["proc.stdout.type"], ident["proc.stdout.name"]) == ("file", str(out))
    assert (ident["proc.stderr.type"], ident["proc.stderr.name"]) == ("file", str(out))
    assert (ident["proc.stdin.type"], ident["proc.stdin.name"]) == ("file", "/dev/null")


def test_a_socket_on_stdin(run: Run) -> None:
    script = "import socket,os,subprocess\na,b=socket.socketpair()\nsubprocess.run(['id','-u'],stdin=a,stdout=subprocess.DEVNULL)"
    p = subprocess.Popen(["python3", "-c", script])
    assert p.wait() == 0
    (ev,) = _execs_below(run, p.pid, "id")
    assert ev["proc.stdin.type"] == "unix"


# ---- timestamps ---------------------------------------------------------------------------------


def _times_of(run: Run, pid: int, path: Path, types: tuple[str, ...] = ("utimensat",)) -> list[Ev]:
    out: list[Ev] = []
    for t in types:
        out += [e for e in run.of(pid, t, 1.0 if out else 10.0) if e.get("fd.name") == str(path)]
    return out


def test_touch_t_sets_a_time_in_the_past(run: Run, tmp_path: Path) -> None:
    f = tmp_path / "stomped"
    f.write_text("x")
    pid = _sh(f"TZ=UTC touch -t 197001010000 {f}")
    evs = _times_of(run, pid, f)
    assert evs, run.events[-20:]
    ev = evs[-1]
    assert (ev["evt.arg.atime"], ev["evt.arg.mtime"]) == (EPOCH, EPOCH)
    assert ev["fd.type"] == "file"
    assert ev["evt.res"] == "SUCCESS"


def test_touch_r_copies_another_files_times(run: Run, tmp_path: Path) -> None:
    f = tmp_path / "copied"
    f.write_text("x")
    ref = os.stat("/bin/sh")
    pid = _sh(f"touch -r /bin/sh {f}")
    ev = _times_of(run, pid, f)[-1]
    assert ev["evt.arg.mtime"] == ref.st_mtime_ns
    assert ev["evt.arg.atime"] == os.stat("/bin/sh").st_atime_ns or isinstance(ev["evt.arg.atime"], int)


def test_touch_alone_sets_now(run: Run, tmp_path: Path) -> None:
    f = tmp_path / "now"
    pid = _sh(f"touch {f}")
    ev = _times_of(run, pid, f)[-1]
    assert "evt.arg.mtime" not in ev or ev["evt.arg.mtime"] == "UTIME_NOW"


def test_python_os_utime_by_path_and_by_fd(run: Run, tmp_path: Path) -> None:
    f = tmp_path / "py"
    f.write_text("x")
    g = tmp_path / "pyfd"
    g.write_text("x")
    script = (
        "import os,sys\n"
        "os.utime(sys.argv[1], ns=(1000000000, 2000000005))\n"
        "fd = os.open(sys.argv[2], os.O_RDONLY)\n"
        "os.utime(fd, ns=(3000000000, 4000000000))\n"
    )
    p = subprocess.Popen(["python3", "-c", script, str(f), str(g)])
    assert p.wait() == 0
    by_path = _times_of(run, p.pid, f)[-1]
    assert (by_path["evt.arg.atime"], by_path["evt.arg.mtime"]) == (1_000_000_000, 2_000_000_005)
    assert by_path["evt.arg.path"] == str(f)
    by_fd = _times_of(run, p.pid, g)[-1]
    assert (by_fd["evt.arg.atime"], by_fd["evt.arg.mtime"]) == (3_000_000_000, 4_000_000_000)
    assert by_fd["evt.arg.path"] == str(g)  # utimensat(fd, NULL, ...): the fd's file


@pytest.mark.skipif(shutil.which("perl") is None, reason="no perl")
def test_perl_utime(run: Run, tmp_path: Path) -> None:
    f = tmp_path / "pl"
    f.write_text("x")
    p = subprocess.Popen(["perl", "-e", "utime(86400, 172800, $ARGV[0]) or die", str(f)])
    assert p.wait() == 0
    ev = _times_of(run, p.pid, f, ("utimensat", "utimes", "utime"))[-1]
    assert (ev["evt.arg.atime"], ev["evt.arg.mtime"]) == (86400 * 10**9, 172800 * 10**9)


def test_utimes_and_utime_syscalls(run: Run, tmp_path: Path) -> None:
    """The older calls, made directly (libc's utimes/utime go through utimensat)."""
    f = tmp_path / "old"
    f.write_text("x")
    script = (
        "import ctypes,os,sys,struct\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "p = sys.argv[1].encode()\n"
        "tv = ctypes.create_string_buffer(struct.pack('<qqqq', 5, 6, 7, 8))\n"
        "assert libc.syscall(235, p, tv) == 0\n"  # utimes
        "ub = ctypes.create_string_buffer(struct.pack('<qq', 9, 10))\n"
        "assert libc.syscall(132, p, ub) == 0\n"  # utime
        "assert libc.syscall(261, -100, p, tv) == 0\n"  # futimesat
    )
    p = subprocess.Popen(["python3", "-c", script, str(f)], cwd=tmp_path)
    assert p.wait() == 0
    (utimes,) = _times_of(run, p.pid, f, ("utimes",))
    assert (utimes["evt.arg.atime"], utimes["evt.arg.mtime"]) == (5 * 10**9 + 6000, 7 * 10**9 + 8000)
    (utime,) = _times_of(run, p.pid, f, ("utime",))
    assert (utime["evt.arg.atime"], utime["evt.arg.mtime"]) == (9 * 10**9, 10 * 10**9)
    (fut,) = _times_of(run, p.pid, f, ("futimesat",))
    assert fut["evt.arg.dirfd"] == -100 and fut["evt.arg.mtime"] == 7 * 10**9 + 8000


# ---- truncate, ftruncate, fchmod --------------------------------------------------------------


def test_truncate_to_zero_and_padding(run: Run, tmp_path: Path) -> None:
    hist = tmp_path / ".bash_history"
    hist.write_text("ls\n")
    binary = tmp_path / "bin"
    binary.write_bytes(b"\x7fELF....")
    pid = _sh(f"truncate -s0 {hist} && truncate -s +1 {binary}")
    evs = [e for e in run.of(pid, "ftruncate") if e.get("fd.name") in (str(hist), str(binary))]
    by_name = {e["fd.name"]: e for e in evs}
    assert by_name[str(hist)]["evt.arg.length"] == 0
    assert by_name[str(binary)]["evt.arg.length"] == 9
    assert by_name[str(hist)]["fd.type"] == "file"


def test_truncate_by_path_relative(run: Run, tmp_path: Path) -> None:
    f = tmp_path / "rel"
    f.write_text("abc")
    p = subprocess.Popen(["python3", "-c", "import os; os.truncate('rel', 1)"], cwd=tmp_path)
    assert p.wait() == 0
    (ev,) = [e for e in run.of(p.pid, "truncate") if e.get("fd.name") == str(f)]
    assert ev["evt.arg.path"] == "rel"
    assert ev["fs.path.name"] == str(f)
    assert ev["evt.arg.length"] == 1


def test_fchmod_by_fd(run: Run, tmp_path: Path) -> None:
    f = tmp_path / "suid"
    f.write_text("x")
    script = "import os,sys\nfd=os.open(sys.argv[1], os.O_RDONLY)\nos.fchmod(fd, 0o4755)\n"
    p = subprocess.Popen(["python3", "-c", script, str(f)])
    assert p.wait() == 0
    (ev,) = [e for e in run.of(p.pid, "fchmod") if e.get("fd.name") == str(f)]
    assert "S_ISUID" in ev["evt.arg.mode"]
    assert ev["evt.rawarg.mode"] == 0o4755
    assert isinstance(ev["evt.arg.fd"], int) and ev["evt.arg.fd"] >= 0


# ---- in a container ------------------------------------------------------------------------------


ATTACK_IMAGE = "localhost/stockade-test-attack"


def _attack_image() -> str | None:
    """The attack procedures' image (Debian: coreutils, bash, dash) if it is built here: busybox's
    shell runs its applets without an exec, so the busybox image cannot show a child's facts."""
    if shutil.which("podman") is None:
        return None
    r = subprocess.run(
        ["podman", "images", "--format", "{{.Repository}}:{{.Tag}}", ATTACK_IMAGE],
        capture_output=True,
        text=True,
        timeout=60,
    )
    tags = [t for t in r.stdout.split() if t.startswith(ATTACK_IMAGE + ":")]
    return tags[0] if r.returncode == 0 and tags else None


@pytest.fixture
def attack_container(request: pytest.FixtureRequest) -> Iterator[Callable[[str], str]]:
    """Starts `sh -c script` as a container's command (pid 1) in the attack image (with the
    machine's containers.conf, `podman_conf`); removed after."""
    request.getfixturevalue("podman_conf")
    image = _attack_image()
    if image is None:
        pytest.skip(f"{ATTACK_IMAGE} is not built here")
    names: list[str] = []

    def start(script: str) -> str:
        name = f"stk-s18-{os.getpid()}-{len(names)}"
        names.append(name)
        r = subprocess.run(
            ["podman", "run", "-d", "--network", "none", "--name", name, image, "sh", "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        return name

    try:
        yield start
    finally:
        if names:
            subprocess.run(["podman", "rm", "-f", "-t", "0", *names], capture_output=True, timeout=120)


@pytest.mark.containers
def test_in_a_container_as_its_command_and_by_exec(run: Run, attack_container: Callable[[str], str]) -> None:
    """The container's own command (the shell is pid 1) and a `podman exec` into it: the paths are
    the container's (its /dev/null, its /tmp), the environment the one the shell passed on."""
    script = (
        "export HISTFILE=/dev/null STK_MARK=run; "
        "id -u; yes | head -n 1 >/dev/null; touch -t 197001010000 /tmp/run-f; "
        "echo IyEvYmluL3NoCmlkIC11Cg== | base64 -d > /tmp/art.sh; chmod +x /tmp/art.sh; /tmp/art.sh; "
        "sleep 300"
    )
    name = attack_container(script)
    r = subprocess.run(
        [
            "podman",
            "exec",
            name,
            "sh",
            "-c",
            "export STK_MARK=exec; truncate -s0 /tmp/run-f; id -g >/dev/null",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr

    def marked(mark: str, name: str) -> Callable[[Ev], bool]:
        return lambda e: (
            e["evt.type"] == "execve"
            and e["proc.name"] == name
            and f"STK_MARK={mark}" in e.get("proc.env", "")
        )

    run.read_until(
        lambda evs: any(marked("run", "head")(e) for e in evs) and any(marked("exec", "id")(e) for e in evs)
    )
    run.read_until(lambda _evs: False, 0.5)
    (head,) = [e for e in run.events if marked("run", "head")(e)]
    assert "HISTFILE=/dev/null" in head["proc.env"].split(" ")
    assert (head["proc.stdout.type"], head["proc.stdout.name"]) == ("file", "/dev/null")
    assert head["proc.stdin.type"] == "pipe"
    stamps = [e for e in run.events if e["evt.type"] == "utimensat" and e.get("fd.name") == "/tmp/run-f"]
    assert stamps and stamps[-1]["evt.arg.mtime"] == EPOCH
    assert "STK_MARK=run" in stamps[-1]["proc.env"]
    (b64,) = [e for e in run.events if marked("run", "base64")(e)]
    assert (b64["proc.stdin.type"], b64["proc.stdout.type"], b64["proc.stdout.name"]) == (
        "pipe",
        "file",
        "/tmp/art.sh",
    )
    (art,) = [e for e in run.events if marked("run", "art.sh")(e)]
    # a script: its path is the exec's file name and its first argument (the kernel made the
    # interpreter argv[0]); the executable is its interpreter
    assert (art["evt.arg.filename"], art["proc.exe"], art["proc.args"]) == (
        "/tmp/art.sh",
        "/bin/sh",
        "/tmp/art.sh",
    )
    assert art["proc.exepath"] == "/usr/bin/dash"
    (ident,) = [e for e in run.events if marked("exec", "id")(e)]
    assert ident["proc.stdout.name"] == "/dev/null"
    assert "HISTFILE=/dev/null" not in ident["proc.env"]
    truncs = [
        e
        for e in run.events
        if e["evt.type"] in ("ftruncate", "truncate") and e.get("fd.name") == "/tmp/run-f"
    ]
    assert truncs and truncs[-1]["evt.arg.length"] == 0
