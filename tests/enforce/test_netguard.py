"""NetGuard: cgroup BPF network enforcement per container.

The unit tests check how rules become trie entries (against a reference evaluation of the policy
semantics) and how records become denials. The root tests run real processes (``netprobe.py``) in
a network namespace and cgroup2 directories they create, with both cores busy: one process in the
protected cgroup, one in a sibling cgroup (another container, never affected), and the test
process itself (the host). Each NetGuard pins under its own directory, removed afterwards; the
podman test protects a real container on podman's bridge network.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from containers import PodmanFactory
from helpers import REPO, busy_cores, need, wait_until
from stockade.enforce.cgroup2 import cgroup_dir_of
from stockade.enforce.interface import Action, Denial, EnforceError, NetRule, NetRules
from stockade.enforce.netguard import (
    _REC,
    MAX_ENTRIES,
    RULE_DEFAULT,
    RULE_RAW,
    NetGuard,
    _Names,
    compile_rules,
    decode_record,
    rules_from_dict,
    rules_to_dict,
)
from stockade.sensor.containers.discover import cgroup2_mount

PROBE = Path(__file__).with_name("netprobe.py")
Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def _net(s: str) -> Net:
    return ipaddress.ip_network(s)


# -- unit: rules as trie entries -------------------------------------------------------------


def _reference(
    rules: tuple[NetRule, ...], default: Action, addr: str, port: int, proto: str
) -> tuple[str, int]:
    """The policy's semantics, evaluated directly: block and audit rules first, then allow rules,
    each in order; the first that matches decides (action, rule index; -1 for the default)."""
    a = ipaddress.ip_address(addr)
    order = [i for i, r in enumerate(rules) if r.action != "allow"] + [
        i for i, r in enumerate(rules) if r.action == "allow"
    ]
    for i in order:
        r = rules[i]
        if (
            r.network.version == a.version
            and a in r.network
            and r.ports[0] <= port <= r.ports[1]
            and r.protocol in ("any", proto)
        ):
            return r.action, i
    return default, -1


def _trie_lookup(
    entries: dict[bytes, bytes], default: Action, addr: str, port: int, proto: str
) -> tuple[str, int]:
    """What the kernel does with the entries: the longest matching prefix, its first entry whose
    port range and protocol match."""
    import struct

    a = ipaddress.ip_address(addr)
    best: tuple[int, bytes] | None = None
    for k, v in entries.items():
        plen, _lo, _hi, _gen, _kind, fam, raw = struct.unpack("<IIIIBB2x16s", k)
        if fam != a.version:
            continue
        net = ipaddress.ip_network((raw[: 4 if fam == 4 else 16], plen - 128))
        if a in net and (best is None or plen > best[0]):
            best = (plen, v)
    if best is None:
        return default, -1
    v = best[1]
    (n,) = struct.unpack_from("<I", v)
    codes = {0: "allow", 1: "audit", 2: "block"}
    for i in range(n):
        lo, hi, p, act, rule = struct.unpack_from("<HHBBH", v, 4 + 8 * i)
        if lo <= port <= hi and p in (0, {"tcp": 6, "udp": 17}[proto]):
            return codes[act], rule
    return default, -1


_NETS = [
    "10.0.0.0/8",
    "10.1.0.0/16",
    "10.1.2.0/24",
    "10.1.2.3/32",
    "0.0.0.0/0",
    "192.168.0.0/16",
    "::/0",
    "fd00::/8",
]
_ADDRS = ["10.1.2.3", "10.1.2.4", "10.1.9.9", "10.9.9.9", "192.168.1.1", "8.8.8.8", "fd00::1", "2001:db8::1"]
_rule = st.builds(
    NetRule,
    name=st.text("abcdef", min_size=1, max_size=4),
    network=st.sampled_from(_NETS).map(_net),
    ports=st.sampled_from([(0, 65535), (80, 80), (443, 443), (1000, 2000), (53, 53)]),
    protocol=st.sampled_from(["tcp", "udp", "any"]),
    action=st.sampled_from(["allow", "audit", "block"]),
)


@settings(max_examples=200, deadline=None)
@given(
    rules=st.lists(_rule, max_size=12).map(tuple),
    default=st.sampled_from(["allow", "audit", "block"]),
    addr=st.sampled_from(_ADDRS),
    port=st.sampled_from([53, 80, 443, 1500, 8080]),
    proto=st.sampled_from(["tcp", "udp"]),
)
def test_one_trie_lookup_decides_as_the_policy_does(
    rules: tuple[NetRule, ...], default: Action, addr: str, port: int, proto: str
) -> None:
    entries = compile_rules(7, 1, NetRules("p", egress=rules, default_action=default))
    assert _trie_lookup(entries, default, addr, port, proto) == _reference(rules, default, addr, port, proto)


def test_too_many_rules_on_one_network_are_refused() -> None:
    rules = tuple(NetRule(f"r{i}", _net("10.0.0.0/8"), (i, i)) for i in range(MAX_ENTRIES + 1))
    with pytest.raises(EnforceError, match="merge port ranges"):
        compile_rules(1, 1, NetRules("p", egress=rules))
    with pytest.raises(EnforceError, match="bad port range"):
        compile_rules(1, 1, NetRules("p", bind=(NetRule("x", _net("::/0"), (9, 8)),)))


def test_rules_round_trip_through_their_pinned_form() -> None:
    rules = NetRules(
        "web",
        egress=(NetRule("dns", _net("10.0.0.53/32"), (53, 53), "udp"), NetRule("v6", _net("fd00::/8"))),
        bind=(NetRule("http", _net("0.0.0.0/0"), (8080, 8080), "tcp", "audit"),),
        default_action="audit",
        raw_sockets="allow",
        raw_rule="raw-ok",
        extra={"k": "v"},
    )
    assert rules_from_dict(json.loads(json.dumps(rules_to_dict(rules)))) == rules


def _record(
    op: int, family: int, addr: bytes, port: int, rule: int, *, blocked: int = 1, stype: int = 0
) -> bytes:
    return _REC.pack(
        5_000_000_000, 42, 3, 1234, 2, b"curl\0", op, family, 6, 2, blocked, port, rule, stype, 0, addr
    )


def test_a_record_names_the_container_the_policy_and_the_rule() -> None:
    rules = NetRules(
        "web-policy",
        egress=(NetRule("api", _net("10.0.0.0/8")), NetRule("db", _net("10.1.0.0/16"))),
        bind=(NetRule("http", _net("0.0.0.0/0"), (80, 80)),),
        raw_rule="no-raw",
    )
    names = {42: _Names("c1", {2: rules})}

    def wall(ts: int) -> int:
        return ts + 1

    def decode(rec: bytes) -> Denial:
        d, cgid, suppressed = decode_record(rec, 0, names, wall)
        assert (cgid, suppressed) == (42, 3)
        assert d is not None
        return d

    d = decode(_record(1, 4, bytes([10, 1, 2, 3]) + bytes(12), 443, 1))
    assert (d.kind, d.container, d.target, d.pid, d.comm) == (
        "connect",
        "c1",
        "10.1.2.3:443/tcp",
        1234,
        "curl",
    )
    assert (d.verdict.policy, d.verdict.rule, d.verdict.action, d.blocked) == (
        "web-policy",
        "db",
        "block",
        True,
    )
    assert d.time_ns == 5_000_000_001
    v6 = ipaddress.IPv6Address("fd00::1").packed
    d = decode(_record(6, 6, v6, 8080, RULE_DEFAULT, blocked=0))
    assert (d.kind, d.target, d.verdict.rule, d.blocked) == ("bind", "[fd00::1]:8080/tcp", "default", False)
    d = decode(_record(7, 4, bytes(16), 0, RULE_RAW, stype=3))
    assert (d.kind, d.target, d.verdict.rule) == ("socket", "inet/raw", "no-raw")
    assert decode_record(_record(1, 4, bytes(16), 1, 0), 0, {}, wall)[0] is None


# -- the lab: a network namespace, cgroups, probes ---------------------------------------------


class Probe:
    """A netprobe.py process in the lab's network namespace and a cgroup of its own."""

    def __init__(self, netns: str, cgroup: str) -> None:
        self.cgroup = cgroup
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", netns, sys.executable, str(PROBE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        Path(cgroup, "cgroup.procs").write_text(str(self.proc.pid))
        assert self.ask(op="pid")["pid"] == self.proc.pid

    def ask(self, **req: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"the probe died ({req})"
        out: dict[str, Any] = json.loads(line)
        return out

    def err(self, **req: Any) -> int:
        e: int = self.ask(**req)["errno"]
        return e

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                f.close()


@dataclass
class Lab:
    netns: str
    cgroups: list[str]
    guarded: Probe
    other: Probe
    #: TCP ports the other probe listens on (in the namespace, on 127.0.0.1 and ::1)
    ports: list[int] = field(default_factory=list)
    v6port: int = 0

    def cgroup(self) -> str:
        return self.guarded.cgroup


def _rmdir_when_empty(path: str) -> None:
    assert wait_until(lambda: not Path(path, "cgroup.procs").read_text().strip(), timeout=10)
    os.rmdir(path)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """Both cores busy; a network namespace (lo up); two sibling cgroup2 dirs, one probe in each."""
    with busy_cores():
        yield from _lab()


def _lab() -> Iterator[Lab]:
    root = cgroup2_mount()
    assert root is not None, "no cgroup2 hierarchy"
    tag = secrets.token_hex(4)
    netns = f"stk-ng-{tag}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)
    cgroups = [os.path.join(root, f"stk-ng-{tag}-{n}") for n in ("guarded", "other")]
    probes: list[Probe] = []
    try:
        for cg in cgroups:
            os.mkdir(cg)
        probes = [Probe(netns, cg) for cg in cgroups]
        lab = Lab(netns, cgroups, probes[0], probes[1])
        lab.ports = [probes[1].ask(op="listen", host="127.0.0.1", port=0)["port"] for _ in range(3)]
        lab.v6port = probes[1].ask(op="listen", host="::1", port=lab.ports[0])["port"]
        yield lab
    finally:
        for p in probes:
            p.close()
        for cg in cgroups:
            if os.path.isdir(cg):
                _rmdir_when_empty(cg)
        subprocess.run(["ip", "netns", "del", netns], check=False)
    assert not any(os.path.exists(cg) for cg in cgroups)


class Sink:
    """The denials NetGuard hands on, kept and waited for."""

    def __init__(self) -> None:
        self.denials: list[Denial] = []
        self._lock = threading.Lock()

    def __call__(self, d: Denial) -> None:
        with self._lock:
            self.denials.append(d)

    def wait_for(self, kind: str, target: str, timeout: float = 10.0) -> Denial:
        found: list[Denial] = []

        def seen() -> bool:
            with self._lock:
                found[:] = [d for d in self.denials if d.kind == kind and d.target == target]
            return bool(found)

        assert wait_until(seen, timeout), f"no {kind} denial of {target}; got {self.denials}"
        return found[0]


@pytest.fixture
def pin_dir() -> Iterator[str]:
    path = f"/sys/fs/bpf/stockade-test-{secrets.token_hex(4)}"
    yield path
    assert not os.path.exists(path), f"{path} left behind"


@pytest.fixture
def guard(pin_dir: str) -> Iterator[tuple[NetGuard, Sink]]:
    sink = Sink()
    ng = NetGuard(sink, pin_dir=pin_dir)
    ng.start()
    try:
        yield ng, sink
    finally:
        ng.stop(keep=False)


def _lo(
    name: str, port: int, proto: Literal["tcp", "udp", "any"] = "tcp", action: Action = "allow"
) -> NetRule:
    return NetRule(name, _net("127.0.0.1/32"), (port, port), proto, action)


# -- egress ------------------------------------------------------------------------------------


@pytest.mark.root
@pytest.mark.ebpf
def test_connect_is_denied_with_eperm_for_the_container_only(lab: Lab, guard: tuple[NetGuard, Sink]) -> None:
    ng, sink = guard
    allowed, denied, blocked = lab.ports
    rules = NetRules(
        "web",
        egress=(
            _lo("api", allowed),
            NetRule("lo-range", _net("127.0.0.0/8"), (min(denied, blocked), max(denied, blocked)), "tcp"),
            _lo("no-admin", blocked, action="block"),
        ),
    )
    g = lab.guarded
    assert g.err(op="connect", host="127.0.0.1", port=blocked) == 0
    ng.protect("c1", lab.cgroup(), rules)
    assert ng.protected() == {"c1": lab.cgroup()}
    assert g.err(op="connect", host="127.0.0.1", port=allowed) == 0
    # an explicit block rule wins over the broader allow that also covers the port
    assert g.err(op="connect", host="127.0.0.1", port=blocked) == errno.EPERM
    d = sink.wait_for("connect", f"127.0.0.1:{blocked}/tcp")
    assert (d.container, d.verdict.policy, d.verdict.rule, d.blocked) == ("c1", "web", "no-admin", True)
    assert d.pid == g.proc.pid and d.comm
    assert abs(d.time_ns - time.time_ns()) < 60e9
    # loopback over IPv6 is an address like any other: no rule, the default (block)
    assert g.err(op="connect", host="::1", port=lab.v6port) == errno.EPERM
    assert sink.wait_for("connect", f"[::1]:{lab.v6port}/tcp").verdict.rule == "default"
    # an IPv4-mapped IPv6 destination is decided as the IPv4 address
    assert g.err(op="connect", host="::ffff:127.0.0.1", port=allowed) == 0
    assert g.err(op="connect", host="::ffff:127.0.0.1", port=blocked) == errno.EPERM
    # another container in the same network namespace, and the host, are not affected
    assert lab.other.err(op="connect", host="127.0.0.1", port=blocked) == 0
    with socket.socket() as srv, socket.socket() as cli:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        cli.connect(srv.getsockname())
    ng.release("c1")
    assert ng.protected() == {}
    assert g.err(op="connect", host="127.0.0.1", port=blocked) == 0


@pytest.mark.root
@pytest.mark.ebpf
def test_udp_datagrams_without_connect_are_decided_per_send(lab: Lab, guard: tuple[NetGuard, Sink]) -> None:
    ng, sink = guard
    ng.protect("c1", lab.cgroup(), NetRules("dns", egress=(_lo("dns", 5353, "udp"),)))
    g = lab.guarded
    assert g.err(op="sendto", host="127.0.0.1", port=5353) == 0
    assert g.err(op="sendto", host="127.0.0.1", port=5354) == errno.EPERM
    # a TCP rule does not allow UDP, nor a UDP rule TCP
    assert g.err(op="connect", host="127.0.0.1", port=5353, proto="tcp") == errno.EPERM
    assert g.err(op="connect", host="127.0.0.1", port=5353, proto="udp") == 0
    d = sink.wait_for("sendmsg", "127.0.0.1:5354/udp")
    assert (d.verdict.rule, d.blocked) == ("default", True)


@pytest.mark.root
@pytest.mark.ebpf
def test_bind_is_decided_against_the_listening_ports(lab: Lab, guard: tuple[NetGuard, Sink]) -> None:
    ng, sink = guard
    rules = NetRules("srv", bind=(NetRule("http", _net("0.0.0.0/0"), (18080, 18080), "tcp"),))
    ng.protect("c1", lab.cgroup(), rules)
    g = lab.guarded
    assert g.err(op="bind", host="0.0.0.0", port=18080) == 0
    assert g.err(op="bind", host="0.0.0.0", port=18081) == errno.EPERM
    assert g.err(op="bind", host="::", port=18080) == errno.EPERM  # no IPv6 rule
    assert sink.wait_for("bind", "0.0.0.0:18081/tcp").verdict.rule == "default"
    assert lab.other.err(op="bind", host="0.0.0.0", port=18081) == 0


@pytest.mark.root
@pytest.mark.ebpf
def test_raw_sockets_are_refused_per_policy(lab: Lab, guard: tuple[NetGuard, Sink]) -> None:
    ng, sink = guard
    g = lab.guarded
    ng.protect("c1", lab.cgroup(), NetRules("p", raw_rule="no-raw"))
    assert g.err(op="raw", family=4) == errno.EPERM
    assert g.err(op="raw", family=6) == errno.EPERM
    d = sink.wait_for("socket", "inet/raw")
    assert (d.verdict.rule, d.blocked) == ("no-raw", True)
    assert lab.other.err(op="raw", family=4) == 0
    # the same container, rules replaced: raw sockets allowed
    ng.protect("c1", lab.cgroup(), NetRules("p", raw_sockets="allow"))
    assert g.err(op="raw", family=4) == 0
    # AF_PACKET sockets are not seen by cgroup/sock_create (a documented limit)
    assert g.err(op="packet") == 0


# -- audit -------------------------------------------------------------------------------------


@pytest.mark.root
@pytest.mark.ebpf
def test_audit_only_lets_everything_through_and_reports_it(lab: Lab, guard: tuple[NetGuard, Sink]) -> None:
    ng, sink = guard
    _, port, _ = lab.ports
    ng.protect("c1", lab.cgroup(), NetRules("mon", raw_rule="raw"), audit_only=True)
    g = lab.guarded
    assert g.err(op="connect", host="127.0.0.1", port=port) == 0
    assert g.err(op="sendto", host="127.0.0.1", port=5354) == 0
    assert g.err(op="bind", host="127.0.0.1", port=0) == 0
    assert g.err(op="raw", family=4) == 0
    for kind, target in [
        ("connect", f"127.0.0.1:{port}/tcp"),
        ("sendmsg", "127.0.0.1:5354/udp"),
        ("bind", "127.0.0.1:0/tcp"),
        ("socket", "inet/raw"),
    ]:
        d = sink.wait_for(kind, target)
        assert (d.blocked, d.verdict.action, d.verdict.policy) == (False, "block", "mon")
    # an audit rule in an enforced policy: allowed, reported with the rule
    ng.protect("c1", lab.cgroup(), NetRules("mon", egress=(_lo("watch", port, action="audit"),)))
    sink.denials.clear()
    assert g.err(op="connect", host="127.0.0.1", port=port) == 0
    d = sink.wait_for("connect", f"127.0.0.1:{port}/tcp")
    assert (d.blocked, d.verdict.action, d.verdict.rule) == (False, "audit", "watch")


# -- rule changes, floods ----------------------------------------------------------------------


@pytest.mark.root
@pytest.mark.ebpf
def test_replacing_rules_never_opens_a_window(lab: Lab, guard: tuple[NetGuard, Sink]) -> None:
    ng, _ = guard
    allowed, denied, _ = lab.ports
    ng.protect("c1", lab.cgroup(), NetRules("p", egress=(_lo("a", allowed),)))
    result: dict[str, Any] = {}
    flood = threading.Thread(
        target=lambda: result.update(lab.guarded.ask(op="flood", host="127.0.0.1", port=denied, n=3000))
    )
    flood.start()
    replaced = 0
    while flood.is_alive():
        # each generation allows other ports, none the flooded one
        ng.protect("c1", lab.cgroup(), NetRules("p", egress=(_lo(f"a{replaced}", allowed + replaced % 2),)))
        replaced += 1
    flood.join()
    assert replaced > 3
    assert result["denied"] == 3000


@pytest.mark.root
@pytest.mark.ebpf
def test_a_flood_of_denials_is_rate_limited_and_counted(lab: Lab, pin_dir: str) -> None:
    sink = Sink()
    ng = NetGuard(sink, pin_dir=pin_dir, rate=50)
    ng.start()
    try:
        _, denied, _ = lab.ports
        ng.protect("c1", lab.cgroup(), NetRules("p"))
        t0 = time.monotonic()
        assert lab.guarded.ask(op="flood", host="127.0.0.1", port=denied, n=5000)["denied"] == 5000
        elapsed = time.monotonic() - t0

        def accounted() -> bool:
            s = ng.stats
            return s.records + s.suppressed + s.lost == 5000

        assert wait_until(accounted, 10), ng.stats
        s = ng.stats
        assert s.records <= 50 * (elapsed + 2)
        assert s.suppressed > 0 and s.records == s.blocked == len(sink.denials)
    finally:
        ng.stop(keep=False)


# -- restarts: fail closed, fail open ----------------------------------------------------------

_AGENT = textwrap.dedent(
    """
    import ipaddress, sys, time
    from stockade.enforce.interface import NetRule, NetRules
    from stockade.enforce.netguard import NetGuard
    pin_dir, cgroup, port, closed = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    ng = NetGuard(lambda d: None, pin_dir=pin_dir, fail_closed=closed)
    ng.start()
    rules = NetRules("pol", egress=(NetRule("only", ipaddress.ip_network("127.0.0.1/32"), (port, port)),))
    ng.protect("c1", cgroup, rules)
    print("ready", flush=True)
    time.sleep(300)
    """
)


def _agent(pin_dir: str, cgroup: str, port: int, fail_closed: bool) -> None:
    """A NetGuard in another process that protects `cgroup`, then is killed (SIGKILL)."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    p = subprocess.Popen(
        [sys.executable, "-c", _AGENT, pin_dir, cgroup, str(port), "1" if fail_closed else "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert p.stdout is not None
    try:
        assert p.stdout.readline().strip() == "ready"
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
        p.stdout.close()


@pytest.mark.root
@pytest.mark.ebpf
def test_denials_hold_while_the_agent_is_down_and_after_restore(lab: Lab, pin_dir: str) -> None:
    allowed, denied, _ = lab.ports
    g = lab.guarded
    _agent(pin_dir, lab.cgroup(), allowed, fail_closed=True)
    # the agent is dead: the pinned programs still decide
    assert g.err(op="connect", host="127.0.0.1", port=denied) == errno.EPERM
    assert g.err(op="connect", host="127.0.0.1", port=allowed) == 0
    sink = Sink()
    ng = NetGuard(sink, pin_dir=pin_dir)
    ng.start()
    try:
        # what was denied while the agent was down is reported once it is back
        d = sink.wait_for("connect", f"127.0.0.1:{denied}/tcp")
        assert (d.container, d.verdict.policy, d.verdict.rule) == ("c1", "pol", "default")
        assert ng.restore() == {"c1": lab.cgroup()}
        assert ng.restore() == ng.protected() == {"c1": lab.cgroup()}  # once is enough
        sink.denials.clear()
        assert g.err(op="connect", host="127.0.0.1", port=denied) == errno.EPERM
        assert sink.wait_for("connect", f"127.0.0.1:{denied}/tcp").container == "c1"
        # dropped in-process with keep=True: still enforced; a third instance takes it back
        ng.stop(keep=True)
        assert g.err(op="connect", host="127.0.0.1", port=denied) == errno.EPERM
        ng = NetGuard(sink, pin_dir=pin_dir)
        ng.start()
        assert ng.restore() == {"c1": lab.cgroup()}
        # the restored rules can be replaced, then released
        ng.protect("c1", lab.cgroup(), NetRules("pol", egress=(_lo("now", denied),)))
        assert g.err(op="connect", host="127.0.0.1", port=denied) == 0
        assert g.err(op="connect", host="127.0.0.1", port=allowed) == errno.EPERM
        ng.release("c1")
        assert g.err(op="connect", host="127.0.0.1", port=allowed) == 0
    finally:
        ng.stop(keep=False)


@pytest.mark.root
@pytest.mark.ebpf
def test_stop_without_keep_lifts_everything_even_what_was_never_restored(lab: Lab, pin_dir: str) -> None:
    allowed, denied, _ = lab.ports
    _agent(pin_dir, lab.cgroup(), allowed, fail_closed=True)
    assert lab.guarded.err(op="connect", host="127.0.0.1", port=denied) == errno.EPERM
    ng = NetGuard(Sink(), pin_dir=pin_dir)
    ng.start()
    ng.stop(keep=False)
    assert lab.guarded.err(op="connect", host="127.0.0.1", port=denied) == 0


@pytest.mark.root
@pytest.mark.ebpf
def test_fail_open_detaches_when_the_agent_dies(lab: Lab, pin_dir: str) -> None:
    allowed, denied, _ = lab.ports
    _agent(pin_dir, lab.cgroup(), allowed, fail_closed=False)
    assert wait_until(lambda: lab.guarded.err(op="connect", host="127.0.0.1", port=denied) == 0, 10)
    assert not os.path.exists(pin_dir)


@pytest.mark.root
@pytest.mark.ebpf
def test_a_v1_directory_is_refused(guard: tuple[NetGuard, Sink]) -> None:
    ng, _ = guard
    v1 = need(
        next((p for p in ("/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids") if os.path.isdir(p)), None),
        "no cgroup v1 hierarchy on this machine",
    )
    with pytest.raises(EnforceError, match="not in a cgroup2 hierarchy"):
        ng.protect("c1", v1, NetRules("p"))
    assert ng.protected() == {}


# -- a real container --------------------------------------------------------------------------


@pytest.fixture(name="busy")
def _busy() -> Iterator[None]:
    with busy_cores():
        yield


@pytest.mark.root
@pytest.mark.ebpf
@pytest.mark.containers
@pytest.mark.usefixtures("busy")
def test_a_podman_container_on_the_bridge(
    podman_container: PodmanFactory, guard: tuple[NetGuard, Sink]
) -> None:
    ng, sink = guard
    server = podman_container(("httpd", "-f", "-p", "8080"), network="bridge")
    client = podman_container(network="bridge")
    ip = server.inspect()["NetworkSettings"]["IPAddress"]
    assert ipaddress.ip_address(ip) in _net("10.88.0.0/16")

    def nc(port: int) -> str:
        r = client.exec(["sh", "-c", f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} {port}"])
        return r.stdout + r.stderr

    assert "Connection refused" in nc(8081)
    cgroup = cgroup_dir_of(client.pid)
    rules = NetRules("client", egress=(NetRule("web", _net(f"{ip}/32"), (8080, 8080), "tcp"),))
    ng.protect(client.id, cgroup, rules)
    assert "HTTP/1." in nc(8080)
    assert "Operation not permitted" in nc(8081)
    d = sink.wait_for("connect", f"{ip}:8081/tcp")
    assert (d.container, d.verdict.rule, d.comm) == (client.id, "default", "nc")
    # the host reaches the server on any port as before
    with socket.socket() as s:
        assert s.connect_ex((ip, 8081)) == errno.ECONNREFUSED
    ng.release(client.id)
    assert "Connection refused" in nc(8081)
