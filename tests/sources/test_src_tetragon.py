"""Tetragon JSON export -> syscall events keyed by Falco field names."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import SHARED_DATA, need_file
from stockade.engine import Engine
from stockade.model.event import Event
from stockade.model.fields import syscall_value
from stockade.model.openflags import open_flags_str
from stockade.sources.tetragon import TetragonSource, split_image

EVENTS_JSON = SHARED_DATA / "tetragon" / "events.json"


@pytest.fixture(scope="module")
def raw_events() -> list[dict[str, Any]]:
    need_file(EVENTS_JSON)
    return [json.loads(line) for line in EVENTS_JSON.read_text().splitlines() if line.strip()]


def replay(path: Path | str) -> tuple[TetragonSource, list[Event]]:
    src = TetragonSource(str(path))
    return src, list(src.events())


def write_lines(path: Path, objs: list[Any]) -> Path:
    path.write_text("".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs))
    return path


# --- the real sample -----------------------------------------------------------------------------


def test_sample_replays_every_line() -> None:
    need_file(EVENTS_JSON)
    src, events = replay(EVENTS_JSON)
    assert src.stats.events == 3 and src.stats.malformed == 0 and not src.skipped
    assert [e.origin for e in events] == [f"{EVENTS_JSON}:{i}" for i in (1, 2, 3)]
    assert all(e.source == "syscall" and e.data["evt.type"] == "execve" for e in events)


def test_sample_netserver_exec() -> None:
    need_file(EVENTS_JSON)
    _, events = replay(EVENTS_JSON)
    d = events[0].data
    assert d["evt.dir"] == "<"
    assert d["proc.name"] == "netserver"
    assert d["proc.exepath"] == "/usr/bin/netserver"
    assert d["proc.args"] == "-D"
    assert d["proc.cmdline"] == "netserver -D"
    assert d["proc.pid"] == 68790 and d["proc.ppid"] == 68598
    assert d["proc.vpid"] == 1
    assert d["proc.cwd"] == "/"
    assert d["user.uid"] == 0 and d["user.loginuid"] == -1
    # Falco's proc.name is the kernel comm: 15 characters
    assert d["proc.pname"] == "containerd-shim"
    assert d["proc.pexepath"] == "/usr/bin/containerd-shim-runc-v2"
    assert d["proc.pcmdline"].startswith("containerd-shim -namespace k8s.io -id c97e298d5d44")
    assert d["container.id"] == "19a02291e106"
    assert d["container.full_id"] == "19a02291e106ce6227b684197be232ea57c4e1a5ab2604a12608c325d701c7f4"
    assert d["container.name"] == "spaceship"
    assert d["container.image"] == "docker.io/tgraf/netperf:latest"
    assert d["container.image.repository"] == "docker.io/tgraf/netperf"
    assert d["container.image.tag"] == "latest"
    assert d["container.image.digest"] == (
        "sha256:8e86f744bfea165fd4ce68caa05abc96500f40130b857773186401926af7e9e6"
    )
    assert d["k8s.pod.name"] == "tiefighter"
    assert d["k8s.ns.name"] == "default"
    assert d["evt.hostname"] == "my-node"
    # the first line has no top-level "time": the exec time is the process start time
    assert d["evt.time"] == 1666062978273546829
    assert syscall_value(d, "k8s.pod.label", "org") == "empire"
    assert d["k8s.pod.label[app.kubernetes.io/name]"] == "tiefighter"


def test_sample_deathstar_exec_and_ancestry() -> None:
    need_file(EVENTS_JSON)
    _, events = replay(EVENTS_JSON)
    d = events[1].data
    assert d["proc.name"] == "starwars-docker"
    assert d["proc.cmdline"] == "starwars-docker --port 80 --host 0.0.0.0"
    assert d["k8s.pod.name"] == "deathstar-6f87496b94-qdlh8"
    assert d["container.id"] == "16ecce28d680"
    assert d["container.image.repository"] == "docker.io/cilium/starwars"
    assert d["evt.time"] == 1666062981373327754  # from the event's "time"
    assert d["proc.aname"] == ["containerd-shim"]
    assert d["proc.aname[1]"] == "containerd-shim"
    # the shim's parent is not in the export: the grandparent is unknown, not invented
    assert syscall_value(d, "proc.aname", "2") is None
    assert "proc.aname[2]" not in d
    assert events[2].data["k8s.pod.name"] == "deathstar-6f87496b94-gjf74"
    assert events[2].data["container.id"] == "2405407a0f20"


def _child_exec(
    parent_event: dict[str, Any], binary: str, args: str, pid: int, exec_id: str
) -> dict[str, Any]:
    """A process_exec of `binary` whose parent is the process of `parent_event` (same pod)."""
    pe = parent_event["process_exec"]
    child = copy.deepcopy(pe["process"])
    child.update(
        exec_id=exec_id, pid=pid, binary=binary, arguments=args, parent_exec_id=pe["process"]["exec_id"]
    )
    child["pod"]["container"]["pid"] = 7
    return {
        "process_exec": {"process": child, "parent": copy.deepcopy(pe["process"])},
        "node_name": parent_event["node_name"],
        "time": "2022-10-18T03:20:00.000000001Z",
    }


def test_ancestry_from_the_process_table(tmp_path: Path, raw_events: list[dict[str, Any]]) -> None:
    sh = _child_exec(raw_events[1], "/bin/sh", "-c id", 70001, "c2gtZXhlYw==")
    idcmd = _child_exec(sh, "/usr/bin/id", "", 70002, "aWQtZXhlYw==")
    _, events = replay(write_lines(tmp_path / "t.json", [*raw_events, sh, idcmd]))
    d = events[3].data
    assert d["proc.name"] == "sh" and d["proc.pname"] == "starwars-docker"
    assert d["proc.aname[2]"] == "containerd-shim"
    assert d["proc.apid"] == [68862, 68635]
    assert d["proc.vpid"] == 7
    e = events[4].data
    assert e["proc.cmdline"] == "id"
    assert e["proc.aname"] == ["sh", "starwars-docker", "containerd-shim"]
    assert e["proc.aname[3]"] == "containerd-shim"
    assert syscall_value(e, "proc.aname", "2") == "starwars-docker"
    assert e["proc.pcmdline"] == "sh -c id"


def test_ancestors_given_by_tetragon_win(tmp_path: Path, raw_events: list[dict[str, Any]]) -> None:
    ev = copy.deepcopy(raw_events[0])
    ev["process_exec"]["ancestors"] = [
        {"exec_id": "YQ==", "pid": 1200, "binary": "/usr/bin/containerd", "parent_exec_id": "Yg=="},
        {"exec_id": "Yg==", "pid": 1, "binary": "/usr/lib/systemd/systemd"},
    ]
    _, events = replay(write_lines(tmp_path / "t.json", [ev]))
    d = events[0].data
    assert d["proc.aname"] == ["containerd-shim", "containerd", "systemd"]
    assert d["proc.aname[2]"] == "containerd" and d["proc.aname[3]"] == "systemd"
    assert d["proc.apid[3]"] == 1


# --- other kinds ------------------------------------------------------------------------------


def test_process_exit(tmp_path: Path, raw_events: list[dict[str, Any]]) -> None:
    pe = raw_events[0]["process_exec"]
    ex = {
        "process_exit": {
            "process": pe["process"],
            "parent": pe["parent"],
            "signal": "SIGKILL",
            "time": "2022-10-18T03:30:00Z",
        },
        "node_name": "my-node",
        "time": "2022-10-18T03:30:00.5Z",
    }
    _, events = replay(write_lines(tmp_path / "t.json", [ex]))
    d = events[0].data
    assert d["evt.type"] == "procexit"
    assert d["evt.arg.sig"] == "SIGKILL" and d["evt.arg.status"] == 0
    assert d["proc.name"] == "netserver" and d["proc.pname"] == "containerd-shim"
    assert d["evt.time"] == 1666063800500000000


def _kprobe(raw: dict[str, Any], function: str, args: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    pe = raw["process_exec"]
    return {
        "process_kprobe": {
            "process": pe["process"],
            "parent": pe["parent"],
            "function_name": function,
            "args": args,
            **extra,
        },
        "node_name": "my-node",
        "time": "2022-10-18T03:17:00Z",
    }


def test_kprobe_tcp_connect(tmp_path: Path, raw_events: list[dict[str, Any]]) -> None:
    sock = {
        "family": "AF_INET",
        "type": "SOCK_STREAM",
        "protocol": "IPPROTO_TCP",
        "saddr": "10.168.0.45",
        "daddr": "104.198.14.52",
        "sport": 48272,
        "dport": 80,
    }
    _, events = replay(
        write_lines(tmp_path / "t.json", [_kprobe(raw_events[0], "tcp_connect", [{"sock_arg": sock}])])
    )
    d = events[0].data
    assert d["evt.type"] == "connect"
    assert d["fd.name"] == "10.168.0.45:48272->104.198.14.52:80"
    assert (d["fd.cip"], d["fd.cport"], d["fd.sip"], d["fd.sport"]) == (
        "10.168.0.45",
        48272,
        "104.198.14.52",
        80,
    )
    assert d["fd.l4proto"] == "tcp" and d["fd.type"] == "ipv4" and d["fd.typechar"] == "4"
    assert syscall_value(d, "fd.rip") == "104.198.14.52"
    assert syscall_value(d, "fd.lport") == 48272


def test_kprobe_accept_is_server_side(tmp_path: Path, raw_events: list[dict[str, Any]]) -> None:
    sock = {
        "family": "AF_INET",
        "protocol": "IPPROTO_TCP",
        "saddr": "10.0.0.5",
        "daddr": "10.0.0.9",
        "sport": 80,
        "dport": 51000,
    }
    _, events = replay(
        write_lines(tmp_path / "t.json", [_kprobe(raw_events[0], "inet_csk_accept", [{"sock_arg": sock}])])
    )
    d = events[0].data
    assert d["evt.type"] == "accept"
    assert d["fd.name"] == "10.0.0.9:51000->10.0.0.5:80"
    assert d["fd.is_server"] is True
    assert syscall_value(d, "fd.lport") == 80


@pytest.mark.parametrize(
    ("mask", "read", "write", "flags"),
    [
        (4, True, False, "O_RDONLY"),
        (2, False, True, "O_WRONLY"),
        (6, True, True, "O_RDWR"),
        (8, False, True, "O_WRONLY"),
    ],
)
def test_kprobe_file_permission(
    tmp_path: Path, raw_events: list[dict[str, Any]], mask: int, read: bool, write: bool, flags: str
) -> None:
    ev = _kprobe(
        raw_events[0],
        "security_file_permission",
        [{"file_arg": {"path": "/etc/passwd", "permission": "-rw-r--r--"}}, {"int_arg": mask}],
        **{"return": {"int_arg": 0}, "policy_name": "file-monitoring", "action": "KPROBE_ACTION_POST"},
    )
    _, events = replay(write_lines(tmp_path / "t.json", [ev]))
    d = events[0].data
    assert d["evt.type"] == "openat" and d["fd.name"] == "/etc/passwd"
    assert d["evt.is_open_read"] is read and d["evt.is_open_write"] is write
    assert d["evt.arg.flags"] == flags
    assert d["fd.typechar"] == "f" and syscall_value(d, "fd.num") == 0
    assert syscall_value(d, "fd.directory") == "/etc"
    assert (events[0].meta or {})["tetragon"]["policy_name"] == "file-monitoring"


def test_kprobe_syscall_write_and_unknown_function(tmp_path: Path, raw_events: list[dict[str, Any]]) -> None:
    write = _kprobe(
        raw_events[0],
        "__x64_sys_write",
        [{"file_arg": {"path": "etc/passwd"}}, {"bytes_arg": "cm9vdDp4OjA6MA=="}, {"size_arg": "627"}],
    )
    other = _kprobe(
        raw_events[0], "commit_creds", [{"process_credentials_arg": {"uid": 0}}, {"weird_arg": [1, 2]}]
    )
    openat = _kprobe(
        raw_events[0],
        "__x64_sys_openat",
        [{"int_arg": -100}, {"string_arg": "/etc/shadow"}, {"int_arg": 0o2000000}],
    )
    _, events = replay(write_lines(tmp_path / "t.json", [write, other, openat]))
    w = events[0].data
    assert w["evt.type"] == "write"
    assert w["fd.name"] == "/etc/passwd"
    assert w["evt.arg.data"] == "root:x:0:0"
    assert w["evt.arg.size"] == 627 and w["evt.arg[2]"] == 627
    o = events[1].data
    assert o["evt.type"] == "commit_creds"
    assert o["evt.arg[0]"] == {"uid": 0} and o["evt.arg[1]"] == [1, 2]
    op = events[2].data
    assert op["evt.type"] == "openat" and op["fd.name"] == "/etc/shadow"
    assert op["evt.arg.flags"] == "O_RDONLY|O_CLOEXEC"
    assert syscall_value(op, "evt.is_open_read") is True


def test_tracepoint(tmp_path: Path, raw_events: list[dict[str, Any]]) -> None:
    pe = raw_events[0]["process_exec"]
    tp = {
        "process_tracepoint": {
            "process": pe["process"],
            "subsys": "syscalls",
            "event": "sys_enter_unlinkat",
            "args": [{"int_arg": -100}, {"string_arg": "/var/log/auth.log"}, {"int_arg": 0}],
        },
        "node_name": "my-node",
    }
    sched = {
        "process_tracepoint": {"process": pe["process"], "subsys": "sched", "event": "sched_process_exec"}
    }
    _, events = replay(write_lines(tmp_path / "t.json", [tp, sched]))
    assert events[0].data["evt.type"] == "unlinkat" and events[0].data["evt.dir"] == ">"
    assert events[0].data["evt.arg[1]"] == "/var/log/auth.log"
    assert events[1].data["evt.type"] == "sched_process_exec"
    # neither the event nor an earlier one showed the parent: parent fields are absent, not guessed
    assert "proc.pname" not in events[1].data


def test_unsupported_kinds_are_skipped_not_malformed(
    tmp_path: Path, raw_events: list[dict[str, Any]]
) -> None:
    lines: list[Any] = [
        {"process_loader": {"process": {}, "path": "/lib/libc.so.6"}, "node_name": "n"},
        {"rate_limit_info": {"number_of_dropped_process_events": "12"}, "node_name": "n"},
        raw_events[0],
    ]
    src, events = replay(write_lines(tmp_path / "t.json", lines))
    assert len(events) == 1
    assert src.stats.malformed == 0
    assert src.skipped == {"process_loader": 1, "rate_limit_info": 1}
    assert src.dropped_upstream == 12


def test_malformed_lines_are_counted_with_location(tmp_path: Path, raw_events: list[dict[str, Any]]) -> None:
    lines: list[Any] = [
        raw_events[0],
        "{not json",
        "",
        "[1, 2]",
        {"something": "else"},
        {"process_exec": 5},
        {"process_exec": {"parent": {}}},
        raw_events[1],
    ]
    p = write_lines(tmp_path / "t.json", lines)
    src, events = replay(p)
    assert [e.data["proc.pid"] for e in events] == [68790, 68862]
    assert src.stats.malformed == 5
    where = [err.split(": ", 1)[0] for err in src.stats.errors]
    assert where == [f"{p}:{n}" for n in (2, 4, 5, 6, 7)]
    assert "not a Tetragon event" in src.stats.errors[2]
    assert "no process" in src.stats.errors[4]


def test_container_without_pod_and_host_process(tmp_path: Path) -> None:
    docker_only = {
        "process_exec": {
            "process": {
                "exec_id": "eA==",
                "pid": 5,
                "binary": "/bin/ls",
                "docker": "abcdef0123456789abcdef0123456",
            }
        }
    }
    host = {"process_exec": {"process": {"exec_id": "eQ==", "pid": 6, "binary": "/usr/sbin/sshd", "uid": 0}}}
    _, events = replay(write_lines(tmp_path / "t.json", [docker_only, host]))
    assert events[0].data["container.id"] == "abcdef012345"
    assert events[1].data["container.id"] == "host"
    assert "proc.pname" not in events[1].data


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("docker.io/tgraf/netperf:latest", ("docker.io/tgraf/netperf", "latest", None)),
        ("registry.local:5000/team/app", ("registry.local:5000/team/app", None, None)),
        ("registry.local:5000/team/app:1.2.3", ("registry.local:5000/team/app", "1.2.3", None)),
        ("quay.io/x/y@sha256:abc", ("quay.io/x/y", None, "sha256:abc")),
        ("nginx:1.27@sha256:def", ("nginx", "1.27", "sha256:def")),
        ("busybox", ("busybox", None, None)),
    ],
)
def test_split_image(ref: str, expected: tuple[str, str | None, str | None]) -> None:
    assert split_image(ref) == expected


def test_open_flags_str() -> None:
    assert open_flags_str(0) == "O_RDONLY"
    assert open_flags_str(0o1 | 0o100 | 0o1000) == "O_WRONLY|O_CREAT|O_TRUNC"
    assert open_flags_str(0o2 | 0o2000000) == "O_RDWR|O_CLOEXEC"


# --- never crash on unknown shapes -------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
_process = st.fixed_dictionaries(
    {},
    optional={
        "exec_id": _json,
        "pid": _json,
        "binary": _json,
        "arguments": _json,
        "uid": _json,
        "auid": _json,
        "parent_exec_id": _json,
        "pod": st.fixed_dictionaries({}, optional={"container": _json, "pod_labels": _json, "name": _json})
        | _json,
        "docker": _json,
    },
)
_body = st.fixed_dictionaries(
    {"process": _process | _json},
    optional={
        "parent": _process | _json,
        "ancestors": st.lists(_process | _json, max_size=3) | _json,
        "function_name": st.sampled_from(["tcp_connect", "security_file_permission", "__x64_sys_openat", "x"])
        | _json,
        "args": st.lists(
            st.dictionaries(
                st.sampled_from(["sock_arg", "file_arg", "int_arg", "bytes_arg", "size_arg"]),
                _json,
                max_size=2,
            ),
            max_size=3,
        )
        | _json,
        "return": _json,
        "subsys": _json,
        "event": _json,
        "status": _json,
    },
)
_event = st.builds(
    lambda kind, body, t: {kind: body, "time": t, "node_name": "n"},
    st.sampled_from(["process_exec", "process_exit", "process_kprobe", "process_tracepoint", "process_lsm"]),
    _body,
    _json,
)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_event, min_size=1, max_size=4))
def test_never_crashes_on_unknown_shapes(objs: list[dict[str, Any]]) -> None:
    import io

    body = b"".join(json.dumps(o).encode() + b"\n" for o in objs)
    src = TetragonSource(io.BytesIO(body), name_hint="fuzz")
    events = list(src.events())
    assert len(events) + src.stats.malformed == len(objs)
    for e in events:
        assert isinstance(e.data["evt.type"], str)


# --- with the engine ---------------------------------------------------------------------------

RULES = """
- macro: spawned_process
  condition: (evt.type in (execve, execveat) and evt.dir=<)
- macro: container
  condition: (container.id != host)
- rule: Shell in container
  desc: a shell ran in a container
  condition: spawned_process and container and proc.name in (sh, bash)
  output: shell in %container.name (pod=%k8s.pod.name parent=%proc.pname gparent=%proc.aname[2] cmd=%proc.cmdline)
  priority: WARNING
"""


def test_shell_rule_fires_on_tetragon_events(tmp_path: Path, raw_events: list[dict[str, Any]]) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    engine = Engine.from_files([str(rules)], rule_matching="all", hostname="test-host")
    sh = _child_exec(raw_events[1], "/bin/sh", "-c id", 70001, "c2gtZXhlYw==")
    idcmd = _child_exec(sh, "/usr/bin/id", "", 70002, "aWQtZXhlYw==")
    _, events = replay(write_lines(tmp_path / "t.json", [*raw_events, sh, idcmd]))
    fired = [(i, a) for i, e in enumerate(events) for a in engine.process(e)]
    assert [i for i, _ in fired] == [3]
    alert = fired[0][1]
    assert alert.rule == "Shell in container"
    assert "pod=deathstar-6f87496b94-qdlh8" in alert.output
    assert "parent=starwars-docker gparent=containerd-shim cmd=sh -c id" in alert.output
