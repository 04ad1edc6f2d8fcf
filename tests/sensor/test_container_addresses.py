"""A container's own addresses (stockade.sensor.containers.addresses), read from a real network
namespace this test creates, and none for a process in the host's namespace."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from helpers import need, wait_until
from stockade.sensor.containers.addresses import container_addresses, parse_fib_trie, parse_if_inet6

FIB = """Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.89.0.0/24 2 0 2
        |-- 10.89.0.0
           /24 link UNICAST
        |-- 10.89.0.7
           /32 host LOCAL
        |-- 10.89.0.255
           /32 link BROADCAST
     +-- 127.0.0.0/8 2 0 2
        |-- 127.0.0.1
           /32 host LOCAL
Local:
  +-- 0.0.0.0/0 3 0 5
        |-- 10.89.0.7
           /32 host LOCAL
"""

INET6 = """fd000000000000000000000000000002 04 40 00 82     eth0
fe8000000000000000fc00fffe000001 04 40 20 80     eth0
00000000000000000000000000000001 01 80 10 80       lo
garbage
"""


def test_local_addresses_are_read_from_fib_trie_and_if_inet6() -> None:
    assert parse_fib_trie(FIB) == {"10.89.0.7"}
    assert parse_if_inet6(INET6) == {"fd00::2"}
    assert parse_fib_trie("") == set() and parse_if_inet6("") == set()


@pytest.fixture
def netns_process() -> Iterator[int]:
    """A process in a network namespace of its own, with 10.213.7.5/24 and fd00:213::5/64."""
    need(os.geteuid() == 0, "needs root to make a network namespace")
    unshare = need(shutil.which("unshare"), "needs unshare (util-linux)")
    ip = need(shutil.which("ip"), "needs ip (iproute2)")
    script = (
        f"{ip} link set lo up && {ip} link add stk-a type veth peer name stk-b && {ip} link set stk-a up && "
        f"{ip} addr add 10.213.7.5/24 dev stk-a && {ip} -6 addr add fd00:213::5/64 dev stk-a nodad && "
        "exec sleep 60"
    )
    proc = subprocess.Popen([unshare, "--net", "sh", "-c", script])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_a_network_namespaces_addresses_are_its_own(netns_process: int) -> None:
    want = {"10.213.7.5", "fd00:213::5"}
    wait_until(lambda: container_addresses(netns_process) >= want, timeout=10)
    assert container_addresses(netns_process) == want


def test_a_process_in_the_hosts_namespace_has_no_addresses_of_its_own() -> None:
    assert container_addresses(os.getpid()) == frozenset()
    assert container_addresses(2**22 + 12345) == frozenset()  # no such process
