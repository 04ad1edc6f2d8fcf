"""connect() latency in a container NetGuard protects, against the same container unprotected.

A small static C helper (``enforce_connect.c``, built on first use) makes N TCP connections to a
listener of its own on 127.0.0.1 (connect, accept, close: the client first, with a reset), in a
network namespace and a cgroup2 directory this benchmark creates, and prints the mean time per
round trip. Rounds alternate: **baseline** (nothing attached to the cgroup) and **netguard** (the
cgroup protected by :class:`stockade.enforce.netguard.NetGuard` with `--rules` egress rules, one of
which allows the connection, and a bind rule allowing the listener): each socket() then runs the
sock_create program, each bind() the bind4 program and each connect() the connect4 program, one
trie lookup each. The best round of each, their ratio and the median ratio of each NetGuard round
to the baseline round before it are printed, and the programs' own mean run time, from the
kernel's BPF statistics (BPF_ENABLE_STATS, on only during the NetGuard rounds).

``measure_connect(...)`` is the measurement as a function (benchmarks/enforce_latency.py may
import it); ``main`` is the command::

    .venv/bin/python benchmarks/enforce_connect.py [--count N] [--repeat R] [--rules K] [--json]

Needs root and the built NetGuard program (scripts/build-bpf.sh).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import ipaddress
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness

from stockade.enforce.interface import NetRule, NetRules
from stockade.enforce.netguard import NetGuard, find_object
from stockade.sensor.containers.discover import cgroup2_mount

HELPER_SOURCE = Path(__file__).with_name("enforce_connect.c")


@dataclass
class ConnectResult:
    """Nanoseconds per connect round trip in each round, without and with NetGuard."""

    count: int
    rules: int
    baseline_ns: list[float] = field(default_factory=list)
    netguard_ns: list[float] = field(default_factory=list)
    #: each program's mean run time in the kernel (ns per run) and run count, from the kernel's
    #: BPF statistics over the NetGuard rounds
    programs: dict[str, tuple[float, int]] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """Best NetGuard round over best baseline round."""
        return min(self.netguard_ns) / min(self.baseline_ns)

    @property
    def pair_ratio(self) -> float:
        """The median over rounds of (NetGuard round / the baseline round just before it)."""
        return statistics.median(g / b for g, b in zip(self.netguard_ns, self.baseline_ns, strict=True))


def build_helper(source: Path = HELPER_SOURCE) -> Path:
    """enforce_connect.c, built statically into the temporary directory (once per source)."""
    text = source.read_bytes()
    out = Path(tempfile.gettempdir()) / f"stockade-enforce-connect-{hashlib.sha256(text).hexdigest()[:12]}"
    if not out.exists():
        cc = shutil.which("clang") or shutil.which("gcc") or shutil.which("cc")
        if cc is None:
            raise SystemExit("enforce_connect: needs clang or gcc to build enforce_connect.c")
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        subprocess.run([cc, "-O2", "-static", "-o", str(tmp), str(source)], check=True)
        tmp.replace(out)
    return out


def policy(n_rules: int) -> NetRules:
    """`n_rules` egress rules (other networks, then the one that allows loopback) and a bind rule."""
    egress = [
        NetRule(f"peer-{i}", ipaddress.ip_network(f"10.{i // 256}.{i % 256}.0/24"), (443, 443), "tcp")
        for i in range(max(n_rules - 1, 0))
    ]
    egress.append(NetRule("loopback", ipaddress.ip_network("127.0.0.1/32"), (1024, 65535), "tcp"))
    listen = NetRule("listener", ipaddress.ip_network("127.0.0.1/32"), (0, 65535), "tcp")
    return NetRules("bench", egress=tuple(egress), bind=(listen,))


def _run(helper: Path, netns: str, cgroup: str, count: int) -> float:
    """One round: the helper in `cgroup` and `netns`; nanoseconds per round trip."""
    script = f'echo $$ > "{cgroup}/cgroup.procs" && exec ip netns exec {netns} {helper} {count}'
    r = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, check=False, timeout=600)
    if r.returncode != 0:
        raise SystemExit(f"enforce_connect: the helper failed: {r.stderr.strip()}")
    return float(r.stdout.strip())


@contextlib.contextmanager
def bpf_run_stats() -> Iterator[None]:
    """The kernel's per-program run time statistics, on while the context lasts (BPF_ENABLE_STATS:
    they turn off again when its descriptor closes, whatever happens)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    attr = ctypes.create_string_buffer(128)  # type = BPF_STATS_RUN_TIME (0)
    fd = int(libc.syscall(321, 32, attr, 128))  # bpf(BPF_ENABLE_STATS)
    try:
        yield
    finally:
        if fd >= 0:
            os.close(fd)


def _bpftool(*args: str) -> Any:
    r = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def program_stats(cgroup: str) -> dict[str, tuple[int, int]]:
    """Run time (ns) and run count of each program attached to `cgroup`, by name."""
    out: dict[str, tuple[int, int]] = {}
    for att in _bpftool("cgroup", "show", cgroup):
        info = _bpftool("prog", "show", "id", str(att["id"]))
        out[info["name"]] = (int(info.get("run_time_ns", 0)), int(info.get("run_cnt", 0)))
    return out


def measure_connect(count: int = 10_000, repeat: int = 10, n_rules: int = 50) -> ConnectResult:
    """Alternate `repeat` baseline and NetGuard rounds of `count` connects each (see the docstring)."""
    helper = build_helper()
    root = cgroup2_mount()
    if root is None:
        raise SystemExit("enforce_connect: no cgroup2 hierarchy")
    tag = secrets.token_hex(4)
    netns, cgroup = f"stk-bench-{tag}", os.path.join(root, f"stk-bench-{tag}")
    pin_dir = f"/sys/fs/bpf/stockade-bench-{tag}"
    res = ConnectResult(count, n_rules, machine=harness.machine_info())
    subprocess.run(["ip", "netns", "add", netns], check=True)
    os.mkdir(cgroup)
    guard = NetGuard(lambda _d: None, pin_dir=pin_dir, fail_closed=False)
    try:
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
        guard.start()
        totals: dict[str, list[int]] = {}
        for _ in range(repeat):
            res.baseline_ns.append(_run(helper, netns, cgroup, count))
            guard.protect("bench", cgroup, policy(n_rules))
            with bpf_run_stats():
                before = program_stats(cgroup)
                res.netguard_ns.append(_run(helper, netns, cgroup, count))
                after = program_stats(cgroup)
            for name, (t, n) in after.items():
                acc = totals.setdefault(name, [0, 0])
                acc[0] += t - before[name][0]
                acc[1] += n - before[name][1]
            guard.release("bench")
        res.programs = {k: (t / n if n else 0.0, n) for k, (t, n) in sorted(totals.items())}
        if guard.stats.records:
            raise SystemExit(f"enforce_connect: allowed connects were denied: {guard.stats}")
    finally:
        guard.stop(keep=False)
        os.rmdir(cgroup)
        subprocess.run(["ip", "netns", "del", netns], check=False)
    return res


def print_table(res: ConnectResult) -> None:
    """The best and median round of each, and the ratio of the best rounds."""
    print(
        f"connect round trips: {res.count:,} per round, {len(res.baseline_ns)} rounds, {res.rules} egress rules"
    )
    for name, xs in (("baseline (no NetGuard)", res.baseline_ns), ("NetGuard, allowed", res.netguard_ns)):
        print(f"  {name:24s} best {min(xs) / 1000:7.2f} us   median {statistics.median(xs) / 1000:7.2f} us")
    print(f"  ratio (best / best)      {res.ratio:.3f}x")
    print(f"  ratio (median of pairs)  {res.pair_ratio:.3f}x")
    print("  in the kernel, per program run (BPF statistics over the NetGuard rounds):")
    for name, (ns, runs) in res.programs.items():
        if runs:
            print(f"    {name:16s} {ns:7.0f} ns   ({runs:,} runs)")
    print(
        f"  machine: {res.machine['cpu_model']}, {res.machine['nproc']} CPUs, load {res.machine['loadavg']}"
    )


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=10_000, help="connects per round (default 10,000)")
    ap.add_argument("--repeat", type=int, default=10, help="rounds of each (default 10)")
    ap.add_argument("--rules", type=int, default=50, help="egress rules in the policy (default 50)")
    ap.add_argument("--cpu", type=int, default=None, help="the CPU to pin to (default: the last)")
    ap.add_argument("--json", action="store_true", help="print machine-readable results")
    return ap.parse_args(argv)


def measure(args: argparse.Namespace) -> ConnectResult | None:
    if os.geteuid() != 0:
        print("enforce_connect: needs root", file=sys.stderr)
        return None
    if find_object() is None:
        print("enforce_connect: NetGuard is not built (scripts/build-bpf.sh)", file=sys.stderr)
        return None
    harness.pin_cpu(args.cpu)
    return measure_connect(args.count, args.repeat, args.rules)


if __name__ == "__main__":
    sys.exit(harness.main(None, parse, measure, print_table))
