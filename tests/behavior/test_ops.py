"""operation_of: the one mapping from an event's Falco fields to the operation a profile learns."""

from __future__ import annotations

from typing import Any

import pytest

from stockade.behavior.model import PRIVILEGED_OPS
from stockade.behavior.ops import (
    OPERATION_SYSCALLS,
    PRIVILEGED_SYSCALLS,
    FileOp,
    NetOp,
    Operation,
    PrivOp,
    ProcessOp,
    operation_of,
    syscall_of,
)


def ev(evt_type: str, **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"evt.type": evt_type, "evt.time": 1, "evt.rawres": 0}
    data.update({k.replace("__", "."): v for k, v in fields.items()})
    return data


@pytest.mark.parametrize(
    ("data", "want"),
    [
        (
            ev("execve", proc__exepath="/usr/sbin/httpd", proc__pexepath="/bin/sh", proc__args="-f x"),
            ProcessOp("/usr/sbin/httpd", "/bin/sh", "-f x"),
        ),
        # proc.exe when the event has no exepath; no parent known; no arguments
        (ev("execveat", proc__exe="/bin/true"), ProcessOp("/bin/true", "", "")),
        (ev("execve", proc__name="true"), None),  # no executable: nothing to learn
        # opens: each access the flags ask for
        (
            ev("openat", fd__name="/etc/hosts", evt__arg__flags="O_RDONLY|O_CLOEXEC"),
            FileOp("/etc/hosts", ("read",)),
        ),
        (
            ev("openat", fd__name="/var/log/a", evt__arg__flags="O_WRONLY|O_CREAT"),
            FileOp("/var/log/a", ("write",)),
        ),
        (ev("open", fd__name="/db", evt__arg__flags="O_RDWR"), FileOp("/db", ("read", "write"))),
        (
            ev("openat2", fd__name="/bin/x", evt__arg__flags="O_RDONLY|__O_FMODE_EXEC"),
            FileOp("/bin/x", ("read", "exec")),
        ),
        (ev("creat", fd__name="/tmp/new"), FileOp("/tmp/new", ("read",))),  # flags unknown: read
        (ev("openat", fd__name="relative/path"), None),
        # network: the peer and its port (egress), the client and the port served (ingress), the
        # local end (listen)
        (
            ev("connect", fd__name="10.0.0.2:40000->10.0.0.5:5432", fd__l4proto="tcp"),
            NetOp("egress", "10.0.0.5", 5432, "tcp"),
        ),
        (
            ev(
                "sendto",
                fd__name="10.0.0.2:5353->10.0.0.53:53",
                fd__l4proto="udp",
                evt__arg__addr="10.0.0.53:53",
            ),
            NetOp("egress", "10.0.0.53", 53, "udp"),
        ),
        # without a destination it writes to a connected socket: its connect or accept was the egress
        (ev("sendto", fd__name="10.0.0.2:5353->10.0.0.53:53", fd__l4proto="udp"), None),
        (
            ev("accept4", fd__name="10.0.0.9:51000->10.0.0.2:8080", fd__l4proto="tcp", evt__rawres=7),
            NetOp("ingress", "10.0.0.9", 8080, "tcp"),
        ),
        (ev("accept", fd__name="[::1]:51000->[::1]:8080"), NetOp("ingress", "::1", 8080, "")),
        (
            ev("listen", fd__name="0.0.0.0:8080", fd__lip="0.0.0.0", fd__lport=8080, fd__l4proto="tcp"),
            NetOp("listen", "0.0.0.0", 8080, "tcp"),
        ),
        # a bound socket named only by fd.name (a recording or Falco output without fd.lport)
        (ev("bind", fd__name="127.0.0.1:9000"), NetOp("listen", "127.0.0.1", 9000, "")),
        (ev("bind", fd__name="[::]:9000"), NetOp("listen", "::", 9000, "")),
        (ev("connect", fd__name="/run/app.sock"), None),  # a unix socket has no address
        # privileged operations
        (ev("setresuid"), PrivOp("setuid")),
        (ev("finit_module"), PrivOp("module_load")),
        (ev("socket", evt__arg__type="SOCK_RAW"), PrivOp("raw_socket")),
        (ev("socket", evt__arg__type="SOCK_STREAM"), None),
        # what is not an operation
        (ev("close", fd__name="/etc/hosts"), None),
        (ev("clone"), None),
        (ev("procexit"), None),
        ({"evt.time": 1}, None),
    ],
)
def test_operation_of(data: dict[str, Any], want: Operation | None) -> None:
    assert operation_of(data) == want
    if want is not None:
        assert data["evt.type"] in OPERATION_SYSCALLS  # the sensor follows it


@pytest.mark.parametrize(
    "data",
    [
        ev("openat", fd__name="/etc/shadow", evt__rawres=-13),
        ev("execve", proc__exepath="/bin/x", evt__rawres=-2),
        ev("connect", fd__name="1.1.1.1:5->2.2.2.2:80", evt__rawres=-111),
        ev("setuid", evt__rawres=-1),
        # a recording that gives only evt.res (Falco's output fields): an errno name is a failure
        {"evt.type": "openat", "evt.res": "ENOENT", "fd.name": "/x"},
        {"evt.type": "connect", "evt.res": "ECONNREFUSED", "fd.name": "1.1.1.1:5->2.2.2.2:80"},
        {"evt.type": "openat", "evt.res": "EINPROGRESS", "fd.name": "/x"},
        {"evt.type": "openat", "evt.failed": True, "fd.name": "/x", "evt.dir": ">"},
    ],
)
def test_a_failed_call_is_no_operation(data: dict[str, Any]) -> None:
    assert operation_of(data) is None


@pytest.mark.parametrize(
    "data",
    [
        ev("connect", fd__name="1.1.1.1:5->2.2.2.2:80", evt__rawres=-115),
        {"evt.type": "connect", "evt.res": "EINPROGRESS", "fd.name": "1.1.1.1:5->2.2.2.2:80"},
        {"evt.type": "connect", "evt.res": "SUCCESS", "fd.name": "1.1.1.1:5->2.2.2.2:80"},
    ],
)
def test_a_connect_in_progress_is_made(data: dict[str, Any]) -> None:
    assert operation_of(data) == NetOp("egress", "2.2.2.2", 80, "")


def test_every_privileged_syscall_names_a_privileged_operation() -> None:
    assert set(PRIVILEGED_SYSCALLS.values()) | {"raw_socket"} <= set(PRIVILEGED_OPS)
    for name, op in PRIVILEGED_SYSCALLS.items():
        assert operation_of(ev(name)) == PrivOp(op)


def test_syscall_of() -> None:
    assert syscall_of(ev("openat")) == "openat"
    assert syscall_of(ev("openat", evt__rawres=-2)) == "openat"  # a failed call still used the syscall
    assert syscall_of(ev("procexit")) is None
    assert syscall_of({"evt.type": 3}) is None
    assert syscall_of({}) is None
