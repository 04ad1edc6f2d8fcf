"""A profile learned from the real sensor (root, eBPF): a process that writes and reads a file,
listens, connects to itself, opens a raw socket and drops privileges, watched by the eBPF backend
and enriched as the agent does; the learner finds exactly that in its events."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import BackendPoller, wait_until
from stockade.behavior.generalise import covers
from stockade.behavior.learn import Learner
from stockade.behavior.model import Profile
from stockade.behavior.workload import HOST, workload_of_event
from stockade.sensor.ebpf.backend import EbpfBackend
from stockade.sensor.enrich import Enricher

pytestmark = [pytest.mark.root, pytest.mark.ebpf]

CHILD = """
import os, socket, sys
path = os.path.join(sys.argv[1], "data.txt")
with open(path, "w") as f:
    f.write("x")
with open(path) as f:
    f.read()
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen()
port = srv.getsockname()[1]
cli = socket.create_connection(("127.0.0.1", port))
conn, _ = srv.accept()
socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
os.setgid(0)
os.setuid(0)
print(port, flush=True)
"""

TYPES = {"execve", "openat", "bind", "listen", "connect", "accept", "accept4", "socket", "setuid", "setgid"}


@pytest.fixture
def sensor() -> Iterator[BackendPoller]:
    backend = EbpfBackend()
    backend.start(TYPES)
    enricher = Enricher()
    enricher.start()
    try:
        with BackendPoller(backend, enricher.enrich) as poller:
            yield poller
    finally:
        backend.close()


def test_a_profile_learned_from_the_sensor(sensor: BackendPoller, tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    ) as child:
        out, _ = child.communicate(timeout=60)
    assert child.returncode == 0
    port = int(out)

    def of_child() -> list[dict[str, Any]]:
        return [e for e in list(sensor.events) if e.get("proc.pid") == child.pid]

    assert wait_until(lambda: any(e["evt.type"] == "setuid" for e in of_child()), 15), of_child()
    events = of_child()
    assert events[0]["evt.type"] == "execve"
    assert {workload_of_event(e).id for e in events} == {HOST}

    learner = Learner(Profile(HOST))
    said = [line for e in events for line in learner.observe(e)]
    p = learner.profile
    exe = os.path.realpath(sys.executable)
    procs = [k for k in p.processes if k[0] == exe]
    assert procs and procs[0][1] == exe, p.processes  # run by this test's Python
    data = str(tmp_path / "data.txt")
    assert covers([f for f, a in p.files if a == "write"], data)
    assert covers([f for f, a in p.files if a == "read"], data)
    assert ("listen", "", port, "tcp") in p.network
    assert ("egress", "cidr:127.0.0.1/32", port, "tcp") in p.network
    assert ("ingress", "cidr:127.0.0.1/32", port, "tcp") in p.network
    assert {"raw_socket", "setuid", "setgid"} <= set(p.privileged)
    assert {"execve", "openat", "connect", "listen", "setuid"} <= set(p.syscalls)
    assert f"listen {port}/tcp" in said and "privileged raw_socket" in said
    assert p.overflow == 0
    # the same again is nothing new
    assert [line for e in events for line in learner.observe(e)] == []
