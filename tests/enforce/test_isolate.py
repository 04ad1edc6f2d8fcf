"""Network isolation of a container (incident response): the allow-list, the nftables ruleset, the
socket filter, the NetworkPolicy; then real podman containers on the bridge network talking to
listeners this test runs on the host, at the bridge's gateway address (nothing leaves the machine):
a new connection and an established one both fail once isolated, the allow-listed peer still works,
unisolate restores everything, each layer isolates on its own, a host-network container is isolated
without touching the host's rules, and the capability probe finds every mechanism working.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from containers import PodmanContainer, PodmanFactory
from helpers import busy_cores, free_port, need
from stockade.enforce.cgroup2 import cgroup_dir_of, cgroup_id
from stockade.enforce.interface import EnforceError
from stockade.enforce.isolate import Isolator
from stockade.enforce.isolate_bpf import allow_entries
from stockade.enforce.k8s_policy import network_policy, network_policy_yaml, quarantine_labels
from stockade.enforce.netns_nft import TABLE, nft_ruleset
from stockade.enforce.response_probe import CHECKS, response_capabilities
from stockade.enforce.sockcut import ss_filter
from stockade.model.allowlist import AllowEntry, AllowListError, parse_allow

# -- unit ----------------------------------------------------------------------------------------


def test_allow_entries_parse_and_name_what_is_wrong() -> None:
    e = parse_allow(["10.0.0.5", "10.0.0.0/24:8000-8100", "[fd00::5]:22", "fd00::/64", "192.0.2.1:443"])
    assert [str(x) for x in e] == [
        "10.0.0.5/32",
        "10.0.0.0/24:8000-8100",
        "[fd00::5/128]:22",
        "fd00::/64",
        "192.0.2.1/32:443",
    ]
    assert e[1].ports == (8000, 8100) and e[2].network == ipaddress.ip_network("fd00::5/128")
    assert AllowEntry.from_dict(json.loads(json.dumps(e[1].to_dict()))) == e[1]
    for bad, why in [
        ("10.0.0.300", "does not appear to be"),
        ("10.0.0.1:http", "bad port"),
        ("10.0.0.1:0", "bad port range"),
        ("10.0.0.1:9-8", "bad port range"),
        ("[fd00::1", "expected"),
    ]:
        with pytest.raises(AllowListError, match=why) as ei:
            AllowEntry.parse(bad)
        assert repr(bad) in str(ei.value) or bad in str(ei.value)


def test_the_trie_holds_every_covering_range_at_each_network() -> None:
    allow = parse_allow(["10.0.0.0/8:22", "10.1.0.0/16:80", "10.1.2.3", "[fd00::/8]:443"])
    entries = allow_entries(7, allow)
    by_net = {}
    for k, v in entries.items():
        plen, lo, hi, fam, addr = struct.unpack("<IIII16s", k)
        assert (lo, hi) == (7, 0) and plen >= 96
        net = ipaddress.ip_network((addr[: 4 if fam == 4 else 16], plen - 96))
        n = int.from_bytes(v[:4], "little")
        by_net[str(net)] = [
            tuple(int.from_bytes(v[4 + 4 * i + j : 6 + 4 * i + j], "little") for j in (0, 2))
            for i in range(n)
        ]
    assert by_net == {
        "10.0.0.0/8": [(22, 22)],
        "10.1.0.0/16": [(22, 22), (80, 80)],
        "10.1.2.3/32": [(0, 65535)],
        "fd00::/8": [(443, 443)],
    }


def test_the_nft_ruleset_and_the_ss_filter_follow_the_allow_list() -> None:
    rules = nft_ruleset(parse_allow(["10.88.0.1:2222", "fd00::/64"]))
    assert rules.startswith(f"table inet {TABLE}\ndelete table inet {TABLE}\n")  # one transaction
    assert rules.count("policy drop;") == 3
    assert "ip saddr 10.88.0.1/32 meta l4proto { tcp, udp } th sport 2222 accept" in rules
    assert "ip daddr 10.88.0.1/32 meta l4proto { tcp, udp } th dport 2222 accept" in rules
    assert "ip6 daddr fd00::/64 accept" in rules and 'iifname "lo" accept' in rules
    f = ss_filter(["/a", "/a/b"], parse_allow(["10.0.0.0/8:22"]))
    assert " ".join(f) == (
        "( ( cgroup /a ) or ( cgroup /a/b ) ) and not ( ( dst 10.0.0.0/8 and ( ( dport >= :22 and "
        "dport <= :22 ) or ( sport >= :22 and sport <= :22 ) ) ) )"
    )


def test_a_network_policy_denies_all_but_the_forensics_networks() -> None:
    pol = network_policy("web-1", "shop", quarantine_labels("web-1"), ["10.9.0.0/24:22-23", "10.8.0.1"])
    assert pol["spec"]["podSelector"] == {"matchLabels": {"stockade.dev/quarantine": "web-1"}}
    assert pol["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert pol["spec"]["ingress"][0] == {
        "from": [{"ipBlock": {"cidr": "10.9.0.0/24"}}],
        "ports": [
            {"protocol": "TCP", "port": 22, "endPort": 23},
            {"protocol": "UDP", "port": 22, "endPort": 23},
        ],
    }
    assert pol["spec"]["egress"][1] == {"to": [{"ipBlock": {"cidr": "10.8.0.1/32"}}]}
    assert "kind: NetworkPolicy" in network_policy_yaml(pol)
    deny_all = network_policy("web-1", "shop", {"app": "web"})
    assert deny_all["spec"]["ingress"] == [] and deny_all["spec"]["egress"] == []
    with pytest.raises(EnforceError, match="no labels"):
        network_policy("web-1", "shop", {})


# -- real containers -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loaded() -> Iterator[None]:
    with busy_cores():
        yield


@dataclass
class Net:
    """A container on the bridge and two listeners at the bridge's gateway: `ok` (allow-listed)
    and `bad`."""

    c: PodmanContainer
    cgroup: str
    gw: str
    ok: socket.socket
    bad: socket.socket

    def port(self, s: socket.socket) -> int:
        return int(s.getsockname()[1])

    def connect(self, s: socket.socket, wait: int = 2) -> subprocess.CompletedProcess[str]:
        """A new connection from the container to listener `s` (nc: connect, then exit); when it
        connected, accepted here and closed (so the backlog holds none for :meth:`established`)."""
        r = self.c.exec(["nc", "-w", str(wait), self.gw, str(self.port(s)), "-e", "/bin/true"])
        if r.returncode == 0:
            s.accept()[0].close()
        return r

    def established(self, s: socket.socket) -> socket.socket:
        """A connection from the container to `s` (nc echoing what it receives), accepted here."""
        self.c.exec(["nc", self.gw, str(self.port(s)), "-e", "/bin/cat"], detach=True)
        conn, _ = s.accept()
        conn.settimeout(2)
        assert _echo(conn) == b"ping\n"
        return conn


def _echo(conn: socket.socket) -> bytes:
    conn.sendall(b"ping\n")
    return conn.recv(16)


def _listener(ip: str) -> socket.socket:
    s = socket.socket()
    s.bind((ip, 0))
    s.listen(16)
    s.settimeout(10)
    return s


@pytest.fixture(scope="module")
def net(module_podman_container: PodmanFactory, loaded: None) -> Iterator[Net]:  # noqa: ARG001 (busy cores)
    need(shutil.which("nft"), "needs nft (apt-get install nftables; scripts/install.sh)")
    c = module_podman_container(
        ("sh", "-c", "nc -ll -p 8080 -e /bin/true & exec sleep 600"), network="bridge"
    )
    gw = c.inspect()["NetworkSettings"]["Gateway"]
    ok, bad = _listener(gw), _listener(gw)
    try:
        yield Net(c, cgroup_dir_of(c.pid), gw, ok, bad)
    finally:
        ok.close()
        bad.close()


@pytest.fixture
def iso(tmp_path: os.PathLike[str]) -> Iterator[Isolator]:
    pins = f"/sys/fs/bpf/stockade-test-isolate-{secrets.token_hex(4)}"
    i = Isolator(pin_dir=pins, state_dir=os.path.join(tmp_path, "state"))
    try:
        yield i
    finally:
        for c in i.isolated():
            i.unisolate(c)
        i.close(remove_pins=True)
        assert not os.path.exists(pins)


def _tables(pid: int) -> str:
    return subprocess.run(
        ["nsenter", f"--net=/proc/{pid}/ns/net", "nft", "list", "tables"], capture_output=True, text=True
    ).stdout


def _programs(cgroup: str) -> str:
    return subprocess.run(["bpftool", "cgroup", "show", cgroup], capture_output=True, text=True).stdout


def _inbound(ip: str) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((ip, 8080)) == 0


@pytest.mark.root
@pytest.mark.containers
@pytest.mark.ebpf
def test_isolation_cuts_new_and_established_connections_but_the_allow_list(net: Net, iso: Isolator) -> None:
    cip = net.c.inspect()["NetworkSettings"]["IPAddress"]
    kept, doomed = net.established(net.ok), net.established(net.bad)
    doomed_port = _peer_port(doomed)
    assert net.connect(net.bad).returncode == 0 and _inbound(cip)
    res = iso.isolate(net.c.id, net.cgroup, net.c.pid, [f"{net.gw}:{net.port(net.ok)}"])
    print(f"isolated in {res.elapsed_s * 1000:.0f} ms: {res}")
    assert res.applied == ["bpf", "nftables", "cut"] and not res.failed and res.isolated
    assert res.cut == [f"{cip}:{doomed_port} {net.gw}:{net.port(net.bad)}"]
    # the established connection to a peer off the list: reset, not a hang
    t0 = time.monotonic()
    with pytest.raises(ConnectionResetError):
        _echo(doomed)
    assert time.monotonic() - t0 < 1.5
    doomed.close()
    # a new connection off the list: refused at once (EPERM from connect4)
    r = net.connect(net.bad)
    assert r.returncode != 0 and "Operation not permitted" in r.stderr, r
    assert not _inbound(cip)  # nor can the host reach its listener
    # the allow-listed peer: the established connection echoes, a new one connects
    assert _echo(kept) == b"ping\n"
    assert net.connect(net.ok).returncode == 0
    stats = iso.stats(net.c.id)
    assert stats is not None and stats.connect_denied >= 1  # (nftables drops the inbound SYN first)
    assert TABLE in _tables(net.c.pid) and "iso_egress" in _programs(net.cgroup)
    # a restarted agent finds the isolation (pinned, in force meanwhile) and lifts it
    iso.close()
    assert net.connect(net.bad, wait=1).returncode != 0
    again = Isolator(pin_dir=iso.programs.pin_dir, state_dir=iso.state_dir)
    assert again.isolated() == [net.c.id]
    un = again.unisolate(net.c.id)
    assert un.was_isolated and un.removed == ["bpf", "nftables"] and not un.failed, un
    assert again.isolated() == [] and again.programs.isolated() == []
    again.close()
    assert TABLE not in _tables(net.c.pid) and "iso_" not in _programs(net.cgroup)
    assert net.connect(net.bad).returncode == 0 and _inbound(cip)
    back = net.established(net.bad)
    back.close()
    kept.close()
    assert not iso.unisolate(net.c.id).was_isolated


def _peer_port(conn: socket.socket) -> int:
    return int(conn.getpeername()[1])


@pytest.mark.root
@pytest.mark.containers
@pytest.mark.ebpf
@pytest.mark.parametrize("layer", ["bpf", "nftables"])
def test_each_layer_isolates_on_its_own(net: Net, tmp_path: os.PathLike[str], layer: str) -> None:
    pins = f"/sys/fs/bpf/stockade-test-isolate-{secrets.token_hex(4)}"
    iso = Isolator(pin_dir=pins, state_dir=os.path.join(tmp_path, "state"), layers=[layer])  # type: ignore[list-item]
    conn = net.established(net.bad)
    try:
        res = iso.isolate(net.c.id, net.cgroup, net.c.pid, [f"{net.gw}:{net.port(net.ok)}"])
        assert res.applied == [layer] and not res.failed and res.cut == []
        # no cut: the established connection goes silent (its packets are dropped)
        conn.settimeout(1)
        with pytest.raises(TimeoutError):
            _echo(conn)
        if layer == "bpf":
            stats = iso.stats(net.c.id)
            assert stats is not None and stats.ingress_dropped >= 1
        r = net.connect(net.bad, wait=1)
        assert r.returncode != 0
        why = "Operation not permitted" if layer == "bpf" else "timed out"
        assert why in r.stderr, r
        assert net.connect(net.ok).returncode == 0
        assert iso.unisolate(net.c.id).removed == [layer]
        assert net.connect(net.bad).returncode == 0
    finally:
        conn.close()
        for c in iso.isolated():
            iso.unisolate(c)
        iso.close(remove_pins=True)


@pytest.mark.root
@pytest.mark.containers
@pytest.mark.ebpf
@pytest.mark.usefixtures("loaded")
def test_a_host_network_container_is_isolated_without_the_hosts_rules(
    module_podman_container: PodmanFactory, iso: Isolator
) -> None:
    c = module_podman_container(network="host")
    # stateless (-s): the rules, not their counters, which other containers' traffic moves
    before = subprocess.run(["nft", "-s", "list", "ruleset"], capture_output=True, text=True).stdout
    port = free_port()
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", port))
        srv.listen(4)
        assert c.exec(["nc", "-w", "2", "127.0.0.1", str(port), "-e", "/bin/true"]).returncode == 0
        res = iso.isolate(c.id, cgroup_dir_of(c.pid), c.pid)
        assert res.applied == ["bpf", "cut"]
        assert res.skipped == {"nftables": "the container uses the host's network namespace"}
        assert (
            subprocess.run(["nft", "-s", "list", "ruleset"], capture_output=True, text=True).stdout == before
        )
        # its loopback is the host's: not exempt
        r = c.exec(["nc", "-w", "2", "127.0.0.1", str(port), "-e", "/bin/true"])
        assert r.returncode != 0 and "Operation not permitted" in r.stderr
        with socket.socket() as s:  # the host itself is untouched
            assert s.connect_ex(("127.0.0.1", port)) == 0
        assert iso.unisolate(c.id).removed == ["bpf"]
        assert c.exec(["nc", "-w", "2", "127.0.0.1", str(port), "-e", "/bin/true"]).returncode == 0


@pytest.mark.root
def test_bad_input_is_refused_with_the_reason(iso: Isolator) -> None:
    with pytest.raises(EnforceError, match="not in a cgroup2 hierarchy"):
        iso.isolate("c1", "/sys/fs/cgroup/pids", os.getpid())
    with pytest.raises(EnforceError, match="bad container id"):
        iso.isolate("../x", cgroup_dir_of(os.getpid()), os.getpid())
    with pytest.raises(AllowListError, match="bad port"):  # a usage error: exit 2, 422
        iso.isolate("c1", cgroup_dir_of(os.getpid()), os.getpid(), ["10.0.0.1:x"])
    with pytest.raises(EnforceError, match="unknown isolation layer"):
        Isolator(layers=["iptables"])  # type: ignore[list-item]
    assert cgroup_id(cgroup_dir_of(os.getpid())) > 0


@pytest.mark.root
@pytest.mark.ebpf
@pytest.mark.usefixtures("loaded")
def test_the_capability_probe_finds_every_response_mechanism_working() -> None:
    t0 = time.monotonic()
    caps = response_capabilities()
    print(f"probe: {time.monotonic() - t0:.2f} s")
    assert list(caps) == list(CHECKS)
    for name, m in caps.items():
        print(f"{name}: {m.available} ({m.reason})")
        assert m.available, f"{name}: {m.reason}"
    leftovers = [d for d in os.listdir("/sys/fs/bpf") if "response-probe" in d]
    assert leftovers == []
