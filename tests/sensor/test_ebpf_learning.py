"""Learning in the kernel (eBPF): for the cgroups watched for it, each distinct operation reaches
Python once, flagged ``_novel``; its repeats are dropped where the filters would drop them (counted
as ``learned_repeat``: nothing lost) and still delivered where a rule wants them.

The tables and encodings are checked without root; the rest runs the real program (root, eBPF) on
processes moved into cgroup2 directories the tests make, and on a podman container, quiet and with
every core busy.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import busy_cores, free_port, need, need_file
from stockade.behavior.ops import PRIVILEGED_SYSCALLS
from stockade.engine import Engine
from stockade.rules.interest import plan_interest
from stockade.rules.prefilter import failed_droppable
from stockade.runtime.sensing import PROCESS_EVTTYPES
from stockade.sensor.containers.cgroup import cgroup2_dir, cgroup2_hierarchy, cgroup2_id, cgroup2_path
from stockade.sensor.containers.discover import cgroup2_mount
from stockade.sensor.ebpf import events
from stockade.sensor.ebpf.backend import EbpfBackend
from stockade.sensor.ebpf.events import HDR, HF_NOVEL, HF_SEEN, T_STR, Decoder
from stockade.sensor.ebpf.syscall_names import MAX_NR, NAMES, name_of
from stockade.sensor.ebpf.syscalls import (
    ALL_TYPES,
    K_PATH,
    K_SOCKADDR,
    K_SOCKFD,
    LEARN_KEYS,
    LEARNING_EVTTYPES,
    LK_PATH,
    LK_SADDR,
    OFF_SPEC,
    SYSCALLS,
    spec_bytes,
)
from stockade.sensor.interface import PRIVATE_KEYS, WATCH_LEARN, WATCH_SYSCALLS

UNISTD = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
WATCH_ALL = WATCH_LEARN | WATCH_SYSCALLS
RULES = """\
- rule: Shadow read (learning test)
  desc: every open of /etc/shadow
  condition: evt.type in (open, openat, openat2) and fd.name = /etc/shadow
  output: "%proc.name opened %fd.name"
  priority: WARNING
"""
OPENS = ("open", "openat", "openat2", "creat")

# -- without root: the tables, the encoding, the decoder ------------------------------------------


def test_the_syscall_table_is_the_kernel_headers() -> None:
    header = need_file(UNISTD).read_text()
    numbers = {int(n): name for name, n in re.findall(r"#define __NR_(\w+) (\d+)", header)}
    assert numbers, "the header defines no syscall: the test would be blind"
    assert {nr: NAMES.get(nr) for nr in numbers} == numbers
    assert set(NAMES) - set(numbers) == set(range(max(numbers) + 1, MAX_NR + 1))
    assert all(NAMES[sc.nr] == name for name, sc in SYSCALLS.items())
    assert name_of(511) == "syscall_511"


def test_every_learning_key_reads_what_its_syscall_has() -> None:
    """A key reads a path where the syscall has one, a sockaddr and its length where it has them."""
    assert LEARNING_EVTTYPES <= ALL_TYPES
    # the learner's privileged operations (behavior.ops) all have a key
    assert set(PRIVILEGED_SYSCALLS) <= set(LEARN_KEYS)
    for name, key in LEARN_KEYS.items():
        args = SYSCALLS[name].args
        if key.kind == LK_PATH:
            assert any(kind == K_PATH for _n, kind, _a in args), name
            assert name in OPENS  # the access class is an open's
        if key.kind == LK_SADDR:
            _n, kind, aux = args[key.slot]
            assert kind == K_SOCKADDR and aux == key.aux, name
            assert args[0][1] == K_SOCKFD, name  # the protocol comes from the socket
    assert len({LEARN_KEYS[n].op for n in OPENS}) == 1  # a path opened is one key whichever open
    assert LEARN_KEYS["bind"].op == LEARN_KEYS["listen"].op != LEARN_KEYS["connect"].op
    privileged = [LEARN_KEYS[n].op for n in PRIVILEGED_SYSCALLS]
    assert len(set(privileged)) == len(privileged)  # each a class of its own
    assert not set(privileged) & {k.op for n, k in LEARN_KEYS.items() if n not in PRIVILEGED_SYSCALLS}


def test_the_spec_row_carries_the_learning_key() -> None:
    # struct sc_spec: 16 bytes of the interest filter era, then lk, lk_slot, lk_aux, pad, lk_op (u16)
    assert len(OFF_SPEC) == 22
    row = spec_bytes(SYSCALLS["connect"], learn_only=True)
    assert row[0] & 8  # SPEC_LEARN_ONLY
    lk, slot, aux, op = struct.unpack_from("<BBBxH", row, 16)
    key = LEARN_KEYS["connect"]
    assert (lk, slot, aux, op) == (key.kind, key.slot, key.aux, key.op)
    assert not spec_bytes(SYSCALLS["connect"])[0] & 8
    assert struct.unpack_from("<B", spec_bytes(SYSCALLS["dup2"]), 16) == (0,)  # LK_NONE


def _openat_record(flag: int) -> memoryview:
    path = b"/srv/app/config.yaml"
    blob = (T_STR + 1).to_bytes(2, "little") + len(path).to_bytes(2, "little") + path
    blob += b"\0" * (-len(blob) % 4)
    args = (0xFFFFFF9C, 0x7000, 0, 0, 0, 0)
    hdr = HDR.pack(
        1 | flag,
        SYSCALLS["openat"].nr,
        HDR.size + len(blob),
        1,
        42,
        42,
        1,
        42,
        0,
        0,
        1000,
        0,
        7,
        1,
        1,
        3,
        *args,
        0,
        b"app",
    )
    return memoryview(hdr + blob)


@pytest.mark.parametrize("native", [False, True])
def test_the_decoder_says_novel_as_the_kernel_did(native: bool) -> None:
    """True: new to its watched cgroup; False: a watched cgroup's repeat; absent: not learned."""
    if native:
        need(events.native_available(), "the native decoder is not built (scripts/build-native.sh)")
    assert "_novel" in PRIVATE_KEYS  # enrichment removes it
    dec = Decoder(0, native=native)
    walker = dec.native
    for flag, want in ((0, None), (HF_NOVEL, True), (HF_SEEN, False)):
        rec = _openat_record(flag)
        ev = walker.decode(rec, 0, len(rec)) if walker is not None else dec.decode(rec, 0, len(rec))
        assert ev is not None and ev["evt.type"] == "openat" and ev["fd.name"] == "/srv/app/config.yaml"
        assert ev.get("_novel", None) is want
        assert ("_novel" in ev) is (want is not None)


def test_a_process_cgroup2_directory_and_id(tmp_path: Path) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 1 0:21 / / rw - ext4 /dev/sda1 rw\n"
        "41 31 0:38 /sub /sys/fs/cgroup/my\\040unified rw,relatime shared:9 - cgroup2 cgroup2 rw\n"
    )
    assert cgroup2_hierarchy(str(mountinfo)) == ("/sys/fs/cgroup/my unified", "/sub")
    assert cgroup2_mount(str(mountinfo)) == "/sys/fs/cgroup/my unified"
    proc = tmp_path / "proc"
    (proc / "7").mkdir(parents=True)
    (proc / "7" / "cgroup").write_text("8:pids:/x\n0::/sub/libpod_parent/libpod-abc\n")
    (proc / "8").mkdir()
    (proc / "8" / "cgroup").write_text("0::/elsewhere\n")
    assert cgroup2_path(7, str(proc)) == "/sub/libpod_parent/libpod-abc"
    assert cgroup2_dir(7, str(mountinfo), str(proc)) == "/sys/fs/cgroup/my unified/libpod_parent/libpod-abc"
    assert cgroup2_dir(8, str(mountinfo), str(proc)) is None  # not below the mounted directory
    assert cgroup2_dir(9, str(mountinfo), str(proc)) is None  # gone
    # this process's: the inode of its directory (bpf_get_current_cgroup_id in the kernel)
    d = cgroup2_dir()
    if d is not None:
        assert cgroup2_id() == os.stat(d).st_ino


# -- in the kernel (root, eBPF) ------------------------------------------------------------------

#: what a workload runs: it says "ready", waits to be moved into its cgroup, then acts and exits
WORKLOAD = """\
import os, socket, sys
print("ready", flush=True)
sys.stdin.readline()
{body}
sys.stdout.flush()
os._exit(0)
"""
#: how long the events of a workload may take to arrive (every core busy: the reader waits its turn)
ARRIVE_S = 30.0


class Cgroup:
    """A cgroup2 directory of the test's own; :meth:`run` moves a workload in before it acts."""

    def __init__(self, tag: str) -> None:
        mount = need(cgroup2_mount(), "needs the cgroup2 hierarchy mounted")
        self.path = Path(mount) / f"stockade-test-{tag}-{secrets.token_hex(4)}-{os.getpid()}"
        self.path.mkdir()
        self.id = os.stat(self.path).st_ino

    def run(self, body: str, timeout: float = 120) -> int:
        """Run a Python workload doing `body` in this cgroup; its pid once it exited."""
        prog = WORKLOAD.format(body=textwrap.dedent(body))
        with subprocess.Popen(
            [sys.executable, "-c", prog], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        ) as p:
            assert p.stdin is not None and p.stdout is not None
            assert p.stdout.readline().strip() == "ready"
            (self.path / "cgroup.procs").write_text(str(p.pid))
            p.stdin.write("go\n")
            p.stdin.close()
            assert p.wait(timeout) == 0
            return p.pid

    def close(self) -> None:
        """Remove the directory (its workloads have exited; a straggler of ours is killed)."""
        for _ in range(50):
            pids = (self.path / "cgroup.procs").read_text().split()
            for pid in pids:
                os.kill(int(pid), 9)
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)


class Learner:
    """The eBPF backend as the agent builds it for RULES (the failed-call prefilter and the interest
    filter), with the raw events of the cgroups it follows kept, read in a thread."""

    def __init__(self, rules: Path, seen_entries: int = 65536) -> None:
        self.engine = Engine.from_files([rules])
        needed = set(self.engine.evttypes("syscall") or ())
        conds = list(self.engine.conditions("syscall"))
        targets = {n: t for n, t in EbpfBackend.interest_targets.items() if n in needed}
        drop = failed_droppable(conds, (needed | PROCESS_EVTTYPES) & set(SYSCALLS))
        self.backend = EbpfBackend(
            drop_failed=drop, interest=plan_interest(conds, targets), seen_entries=seen_entries
        )
        self.backend.start(needed | PROCESS_EVTTYPES)
        self.cgroups: set[int] = set()
        self.events: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            for e in self.backend.poll(0.05):
                # a cgroup watched through a parent is not known before its events say `_novel`
                if e.get("_cgroup_id") in self.cgroups or "_novel" in e:
                    self.events.append(e)

    def of(
        self, cgroup: int, evttypes: frozenset[str] | tuple[str, ...] | None = None
    ) -> list[dict[str, Any]]:
        """The events of `cgroup` so far (of these types)."""
        return [
            e
            for e in list(self.events)
            if e["_cgroup_id"] == cgroup and (evttypes is None or e["evt.type"] in evttypes)
        ]

    def counters(self) -> dict[str, Counter[str]]:
        """The backend's counters now: filtered per type and per cause, lost, learning."""
        st = self.backend.refresh_stats()
        return {
            "filtered": Counter(st.filtered),
            "cause": Counter(st.filtered_by_cause),
            "lost": Counter(st.lost),
            "learning": Counter(self.backend.learning_stats(count_seen=False)),
        }

    def settle(self, pred: Callable[[], bool]) -> None:
        """Wait until `pred` holds (the events arrived), then a little more for any straggler."""
        deadline = time.monotonic() + ARRIVE_S
        while not pred() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.backend.close()


def _delta(after: dict[str, Counter[str]], before: dict[str, Counter[str]]) -> dict[str, Counter[str]]:
    return {k: after[k] - before[k] for k in after}


@pytest.fixture(scope="module")
def learner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Learner]:
    need(os.geteuid() == 0, "needs root")
    rules = tmp_path_factory.mktemp("rules") / "rules.yaml"
    rules.write_text(RULES)
    lr = Learner(rules)
    try:
        yield lr
    finally:
        lr.close()


@pytest.fixture
def cgroups(learner: Learner) -> Iterator[Callable[[str], Cgroup]]:
    """Makes cgroups the learner follows; unwatched and removed at the end of the test."""
    made: list[Cgroup] = []

    def make(tag: str) -> Cgroup:
        cg = Cgroup(tag)
        made.append(cg)
        learner.cgroups.add(cg.id)
        return cg

    try:
        yield make
    finally:
        learner.backend.set_watched({})
        learner.backend.set_watched_parents({})
        for cg in made:
            cg.close()


@pytest.fixture(params=["quiet", "busy"])
def cores(request: pytest.FixtureRequest) -> Iterator[str]:
    """The test runs once with the machine as it is, once with a busy loop on every core."""
    with busy_cores() if request.param == "busy" else contextlib.nullcontext():
        yield request.param


def _names(evs: list[dict[str, Any]]) -> Counter[str]:
    return Counter(str(e.get("fd.name")) for e in evs)


def _novel(evs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in evs if e.get("_novel") is True]


def _repeats(evs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in evs if e.get("_novel") is False]


def _alerts(engine: Engine, evs: list[dict[str, Any]]) -> int:
    """The alerts the rules raise on these events (without their private keys)."""
    return sum(len(engine.process_data("syscall", {k: v for k, v in e.items() if k[0] != "_"})) for e in evs)


@pytest.mark.root
@pytest.mark.ebpf
def test_each_open_reaches_python_once(
    learner: Learner, cgroups: Callable[[str], Cgroup], tmp_path: Path, cores: str
) -> None:
    """10,000 opens of one file and one of another in a watched cgroup: each reaches Python once,
    flagged; the repeats are counted as learned (nothing lost); the same in a cgroup not watched is
    filtered as before; a rule on /etc/shadow still sees every read of it in both."""
    a, b = tmp_path / "a.conf", tmp_path / "b.conf"
    a.write_text("a")
    b.write_text("b")
    watched, other = cgroups("watched"), cgroups("other")
    learner.backend.set_watched({watched.id: WATCH_ALL})
    body = f"""
    for _ in range(10000):
        os.close(os.open({str(a)!r}, os.O_RDONLY))
    os.close(os.open({str(b)!r}, os.O_RDONLY))
    for _ in range(300):
        os.close(os.open("/etc/shadow", os.O_RDONLY))
    """
    before = learner.counters()
    watched.run(body)
    other.run(body)

    def arrived() -> bool:
        return (
            _names(learner.of(watched.id, OPENS))["/etc/shadow"]
            >= 300
            <= _names(learner.of(other.id, OPENS))["/etc/shadow"]
        )

    learner.settle(arrived)
    d = _delta(learner.counters(), before)
    mine = learner.of(watched.id, OPENS)
    assert _names(mine) == {str(a): 1, str(b): 1, "/etc/shadow": 300}, cores
    novel = _novel(mine)
    assert sorted(str(e["fd.name"]) for e in novel) == sorted([str(a), str(b), "/etc/shadow"])
    shadow = sorted((e for e in mine if e["fd.name"] == "/etc/shadow"), key=lambda e: e["evt.time"])
    assert shadow[0]["_novel"] is True  # the first of the kept ones is the new one
    assert len(_repeats(mine)) == 299 == len(_repeats(shadow))  # the rest: repeats, said
    # nothing lost: the repeats no rule wants were dropped and counted, exactly
    assert d["cause"]["learned_repeat"] == 9999 == d["learning"]["repeats_dropped"]
    assert d["learning"]["repeats_kept"] == 299
    # the learner's count of what it did not see: every repeat, dropped or kept for the rule
    assert learner.backend.learned_repeats(watched.id) == 9999 + 299
    assert learner.backend.learned_repeats(other.id) == 0
    assert not d["lost"]
    # not watched: the interest filter as before, no flag
    theirs = learner.of(other.id)
    assert _names([e for e in theirs if e["evt.type"] in OPENS]) == {"/etc/shadow": 300}
    assert not [e for e in theirs if "_novel" in e]  # not learned: nothing said
    assert d["cause"]["no_interest"] >= 10001 and d["filtered"]["openat"] >= 10001 + 9999
    # the rule fires on every read in both
    assert (
        _alerts(learner.engine, mine)
        == 300
        == _alerts(learner.engine, [e for e in theirs if e["evt.type"] in OPENS])
    )
    # the syscalls the watched workload made once moved in (its read of stdin began before)
    used = learner.backend.syscalls_used(watched.id)
    assert {"openat", "close", "exit_group"} <= used, sorted(used)
    assert not used & {"mkdir", "connect", "socket", "kexec_load", "reboot"}, sorted(used)
    assert learner.backend.syscalls_used(other.id) == set()


@pytest.mark.root
@pytest.mark.ebpf
def test_repeated_exec_connect_bind_reach_python_once(
    learner: Learner, cgroups: Callable[[str], Cgroup], cores: str
) -> None:
    """Syscalls no rule needs (connect, accept, bind, listen, socket) are followed for the watched
    cgroup only, each distinct call delivered once; execs are always delivered (the process table
    needs them), flagged the first time."""
    watched = cgroups("net")
    learner.backend.set_watched({watched.id: WATCH_LEARN})
    assert {"connect", "bind", "listen", "accept4", "socket"} <= learner.backend.learning_only
    marker = f"stockade-learn-{secrets.token_hex(4)}"
    port2 = free_port()
    body = f"""
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("127.0.0.1", 0))
    lst.listen(64)
    port = lst.getsockname()[1]
    for _ in range(50):
        c = socket.socket()
        c.connect(("127.0.0.1", port))
        s, _ = lst.accept()
        s.close()
        c.close()
    for _ in range(20):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", {port2}))
        s.close()
    for _ in range(20):
        os.waitpid(os.posix_spawn("/bin/true", ["/bin/true", {marker!r}], {{}}), 0)
    """
    before = learner.counters()
    watched.run(body)

    def execs() -> list[dict[str, Any]]:
        return [e for e in learner.of(watched.id, ("execve",)) if e.get("proc.args") == marker]

    learner.settle(lambda: len(execs()) >= 20)
    d = _delta(learner.counters(), before)
    got = Counter(e["evt.type"] for e in learner.of(watched.id))
    # each distinct call once, flagged; every repeat counted
    calls = {"socket": 71, "connect": 50, "accept4": 50, "listen": 1}
    for name, n in calls.items():
        evs = learner.of(watched.id, (name,))
        assert len(evs) == 1 and evs[0]["_novel"] is True, (name, cores, got)
        assert d["filtered"][name] == n - 1, (name, d["filtered"])
    binds = learner.of(watched.id, ("bind",))
    assert sorted(e["fd.name"] for e in binds) == sorted(["127.0.0.1:0", f"127.0.0.1:{port2}"])
    assert all(e["_novel"] is True for e in binds) and d["filtered"]["bind"] == 19
    # execs: all delivered, the first new, the others said to be repeats
    assert len(execs()) == 20 and len(_novel(execs())) == 1 and len(_repeats(execs())) == 19, cores
    assert not d["lost"]


@pytest.mark.root
@pytest.mark.ebpf
def test_watching_is_live(learner: Learner, cgroups: Callable[[str], Cgroup], tmp_path: Path) -> None:
    """Unwatched, a cgroup is back to the filters alone; watched again, it learns afresh."""
    f = tmp_path / "f.conf"
    f.write_text("f")
    cg = cgroups("live")
    body = f"""
    for _ in range(1000):
        os.close(os.open({str(f)!r}, os.O_RDONLY))
    """

    def run(expect: int = 1) -> tuple[list[dict[str, Any]], dict[str, Counter[str]]]:
        """The workload's open events and the counters' increase (the kernel counts before the
        workload exits; its events arrive after: `expect` of them are waited for)."""
        seen = len(learner.of(cg.id, OPENS))
        before = learner.counters()
        cg.run(body)
        learner.settle(lambda: len(learner.of(cg.id, OPENS)) >= seen + expect)
        return learner.of(cg.id, OPENS)[seen:], _delta(learner.counters(), before)

    learner.backend.set_watched({cg.id: WATCH_LEARN})
    assert learner.backend.watched == {cg.id: WATCH_LEARN} and learner.backend.learning_only
    got, d = run()
    assert _names(got) == {str(f): 1} and _novel(got) and d["cause"]["learned_repeat"] == 999
    learner.backend.set_watched({})
    assert learner.backend.watched == {} and not learner.backend.learning_only
    got, d = run(expect=0)
    assert not got and d["cause"]["learned_repeat"] == 0 and d["cause"]["no_interest"] >= 1000
    learner.backend.set_watched({cg.id: WATCH_LEARN})
    got, d = run()  # a fresh watch: new again, its repeats counted afresh
    assert _names(got) == {str(f): 1} and _novel(got) and d["cause"]["learned_repeat"] == 999
    assert learner.backend.learned_repeats(cg.id) == 999
    learner.backend.forget_seen(cg.id)  # the learner reset the profile: new again
    got, d = run()
    assert _names(got) == {str(f): 1} and _novel(got)
    assert learner.backend.syscalls_used(cg.id) == set()  # not watched for its syscalls


@pytest.mark.root
@pytest.mark.ebpf
def test_a_full_seen_map_delivers_again_and_loses_nothing(tmp_path: Path, cores: str) -> None:
    """With a `seen` map of 1,024 keys, 3,000 distinct opens and the first 200 again: the oldest
    keys are evicted (counted), so some repeats reach Python again, flagged; every open is either
    delivered or counted as a learned repeat."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    files = tmp_path / "files"
    files.mkdir()
    for i in range(3000):
        (files / f"f{i}").write_bytes(b"")
    lr = Learner(rules, seen_entries=1024)
    cg = Cgroup("lru")
    try:
        lr.cgroups.add(cg.id)
        lr.backend.set_watched({cg.id: WATCH_LEARN})
        body = f"""
        names = [os.path.join({str(files)!r}, f"f{{i}}") for i in range(3000)]
        for n in names + names[:200]:
            os.close(os.open(n, os.O_RDONLY))
        """
        before = lr.counters()
        cg.run(body)
        prefix = str(files) + "/"

        def mine() -> list[dict[str, Any]]:
            return [e for e in lr.of(cg.id, OPENS) if str(e.get("fd.name")).startswith(prefix)]

        lr.settle(lambda: len(mine()) >= 3000)
        d = _delta(lr.counters(), before)
        got = _names(mine())
        stats = lr.backend.learning_stats()
        assert len(got) == 3000 and all(e["_novel"] is True for e in mine())
        again = sum(n - 1 for n in got.values())
        assert 0 < again <= 200, cores  # the first files' keys were evicted: delivered again
        assert len(mine()) + d["cause"]["learned_repeat"] == 3200  # nothing lost
        assert stats["seen_capacity"] == 1024 and stats["seen_entries"] <= 1024
        assert stats["evicted"] == stats["new"] - stats["seen_entries"] >= 3000 - 1024
        assert not d["lost"]
    finally:
        lr.close()
        cg.close()


@pytest.mark.root
@pytest.mark.ebpf
@pytest.mark.containers
def test_a_watched_container(learner: Learner, podman_container: Any) -> None:
    """A podman container watched by its cgroup2 id: a shell loop reading one file 2,000 times
    reaches Python once; its syscall set holds what its programs did (mkdir, socket, connect) and
    nothing they did not."""
    c = podman_container(("sleep", "300"))
    cg = need(cgroup2_id(c.pid), "the container's cgroup2 directory is not visible")
    learner.cgroups.add(cg)
    try:
        learner.backend.set_watched({cg: WATCH_ALL})
        before = learner.counters()
        script = (
            "i=0; while [ $i -lt 2000 ]; do read x < /etc/hosts; i=$((i+1)); done; "
            "mkdir /tmp/learned; nc -w 1 127.0.0.1 9 </dev/null; true"
        )
        r = c.exec(["sh", "-c", script], timeout=120)
        assert r.returncode == 0, r.stderr

        def hosts() -> list[dict[str, Any]]:
            return [e for e in learner.of(cg, OPENS) if e.get("fd.name") == "/etc/hosts"]

        learner.settle(lambda: bool(hosts()))
        d = _delta(learner.counters(), before)
        assert len(hosts()) == 1 and hosts()[0]["_novel"] is True
        assert d["cause"]["learned_repeat"] >= 1999
        used = learner.backend.syscalls_used(cg)
        assert {"mkdir", "socket", "connect", "openat", "execve", "read"} <= used, sorted(used)
        assert not used & {"kexec_load", "reboot", "init_module", "bpf", "swapon"}, sorted(used)
    finally:
        learner.backend.set_watched({})
        learner.cgroups.discard(cg)


@pytest.mark.root
@pytest.mark.ebpf
@pytest.mark.containers
def test_a_container_under_a_watched_parent_is_learned_from_its_first_call(
    learner: Learner, cgroups: Callable[[str], Cgroup], podman_container: Any, cores: str, tmp_path: Path
) -> None:
    """Only podman's parent directory watched: a container started after has its entrypoint's first
    open delivered ``_novel`` (no rule reads /etc/hostname), its repeats dropped and counted under
    its own cgroup id; a host process in another cgroup is not learned; listed later, the container
    keeps what it learned; the parent unwatched, its next new open is dropped by the filters."""
    first = podman_container(("sleep", "300"))
    parent_dir = os.path.dirname(
        need(cgroup2_dir(first.pid), "the container's cgroup2 directory is not visible")
    )
    parent = os.stat(parent_dir).st_ino
    learner.backend.set_watched_parents({parent: WATCH_ALL})
    assert learner.backend.watched_parents == {parent: WATCH_ALL} and learner.backend.learning_only
    c = podman_container(("sh", "-c", "cat /etc/hostname; cat /etc/hostname; cat /etc/hostname; sleep 300"))
    cg = need(cgroup2_id(c.pid), "the container's cgroup2 directory is not visible")
    assert cg != parent and cg not in learner.backend.watched

    def opened(name: str) -> list[dict[str, Any]]:
        return [e for e in learner.of(cg, OPENS) if e.get("fd.name") == name]

    learner.settle(lambda: bool(opened("/etc/hostname")) and learner.backend.learned_repeats(cg) >= 2)
    assert [e["_novel"] for e in opened("/etc/hostname")] == [True], cores
    assert learner.backend.learned_repeats(cg) >= 2  # the 2nd and 3rd cat's open, at least
    assert learner.of(cg, ("execve",))[0]["_novel"] is True  # the entrypoint's exec
    assert {"execve", "openat"} <= learner.backend.syscalls_used(cg)
    # a host process in a cgroup of its own, not below the parent: the filters alone
    host = cgroups("host")
    f = tmp_path / "host.conf"
    f.write_text("h")
    before = learner.counters()
    host.run(f"for _ in range(200): os.close(os.open({str(f)!r}, os.O_RDONLY))")
    time.sleep(0.5)
    d = _delta(learner.counters(), before)
    assert not [
        e for e in learner.events if e["_cgroup_id"] == host.id and ("_novel" in e or e.get("fd.name"))
    ]
    assert learner.backend.learned_repeats(host.id) == 0 and d["cause"]["no_interest"] >= 200
    # listed now (as the runtime does once it finds it): what it learned through the parent holds
    learner.backend.set_watched({cg: WATCH_ALL})
    r = c.exec(["cat", "/etc/hostname"], timeout=120)
    assert r.returncode == 0, r.stderr
    learner.settle(lambda: learner.backend.learned_repeats(cg) >= 3)
    assert len(opened("/etc/hostname")) == 1 and learner.backend.learned_repeats(cg) >= 3
    # the parent unwatched and the container unlisted, live: a new path is the filters' again
    learner.backend.set_watched({})
    learner.backend.set_watched_parents({})
    assert learner.backend.watched_parents == {} and not learner.backend.learning_only
    mark = len(learner.events)
    r = c.exec(["sh", "-c", "cat /etc/stockade-never-there; true"], timeout=120)
    assert r.returncode == 0, r.stderr
    time.sleep(1.0)
    assert not [e for e in learner.events[mark:] if e["_cgroup_id"] == cg]  # nothing novel: none kept
    assert learner.backend.learned_repeats(cg) == 0
