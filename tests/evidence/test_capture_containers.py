"""Evidence capture of real containers: a podman container with a secret in a process's environment,
an open file, a listening socket, an established connection, a marker in a process's memory and
files added, changed and deleted; captured frozen (podman pause), the bundle holds them all and
verifies. A runc container with a plain rootfs: its changes are recorded as unknown, with why.
The CLI and the API capture through a running manager's API."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from containers import PodmanContainer, PodmanFactory, RuncFactory
from helpers import free_port, wait_until
from stockade.api.app import create_app
from stockade.cli.main import main
from stockade.config import load_config
from stockade.enforce.freeze import frozen
from stockade.errors import NotFoundError
from stockade.evidence.bundle import Bundle
from stockade.evidence.capture import capture_container
from stockade.evidence.redact import REDACTED
from stockade.evidence.verify import verify_bundle
from stockade.model.alert import Alert
from stockade.model.event import Event
from stockade.runtime.service import Runtime
from stockade.sensor.containers.lookup import find_container
from stockade.storage.store import Store

pytestmark = [pytest.mark.root, pytest.mark.containers]

TOKEN = "tok-SECRET-5f1c2a9e"
DB_PASSWORD = "hunter2pw"
MARKER = "memory-marker-42"
# the marker is made at run time: it is in the shell's memory but not in its command line
SCRIPT = f"""
M=mem; M="${{M}}ory-marker-$((6*7))"
exec 3>/tmp/held.log
echo tampered >> /etc/passwd
mkdir /data && echo new > /data/added.txt
rm /etc/group
export API_TOKEN={TOKEN} DB_URL=postgres://admin:{DB_PASSWORD}@db:5432/x PLAIN_SETTING=visible-value
sleep 300 | nc -l -p 7000 &
sleep 300 | nc -l -p 7001 &
sleep 0.3
sleep 300 | nc 127.0.0.1 7001 &
echo ready > /tmp/ready
wait
"""


def _established(pid: int) -> bool:
    """Both ends of the connection are up (the server's, on a dual-stack socket, in tcp6)."""
    n = 0
    for table in ("tcp", "tcp6"):
        try:
            text = Path(f"/proc/{pid}/net/{table}").read_text()
        except OSError:
            return False
        n += sum(1 for line in text.splitlines()[1:] if line.split()[3] == "01")
    return n >= 2


@pytest.fixture(scope="module")
def target(module_podman_container: PodmanFactory) -> PodmanContainer:
    c = module_podman_container(("sh", "-c", SCRIPT))
    assert wait_until(lambda: Path(f"/proc/{c.pid}/root/tmp/ready").exists() and _established(c.pid), 15)
    return c


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, target: PodmanContainer) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path_factory.mktemp('store') / 'stockade.db'}")
    now = time.time_ns()
    fields = {"container.id": target.id[:12], "container.name": target.name, "proc.name": "nc"}
    s.add_events([Event("syscall", {"evt.time": now, "evt.type": "execve", **fields}, id="ev-test-1")])
    s.add_alerts(
        [Alert(now, "Netcat in container", "Warning", "nc ran", fields, "syscall", ["T1059"], "h", id="al-1")]
    )
    yield s
    s.close()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory, target: PodmanContainer, store: Store) -> Bundle:
    """The container captured while paused (podman pause: the v1 freezer), the shell's memory dumped."""
    data = tmp_path_factory.mktemp("data")
    found = find_container(target.name)
    r = subprocess.run(["podman", "pause", target.name], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    try:
        return capture_container(
            found, data, store=store, memory=[found.init_pid], reason="test capture", actor="tester"
        )
    finally:
        subprocess.run(["podman", "unpause", target.name], capture_output=True, timeout=60, check=False)


def _json(b: Bundle, rel: str) -> Any:
    return orjson.loads((b.path / rel).read_bytes())


def _procs(b: Bundle) -> dict[int, dict[str, Any]]:
    return {p["pid"]: p for p in _json(b, "processes.json")}


def test_find_container_by_name_prefix_and_id(target: PodmanContainer) -> None:
    by_name = find_container(target.name)
    assert by_name.id == target.id and by_name.runtime == "podman" and by_name.name == target.name
    assert by_name.init_pid == target.pid and target.pid in by_name.pids
    assert by_name.cgroup2_dir.endswith(target.id) or target.id in by_name.cgroup2_dir
    assert by_name.info.upperdir and by_name.raw is not None and by_name.raw["Id"] == target.id
    assert find_container(target.id[:10]).id == target.id
    assert find_container(target.id).id == target.id
    with pytest.raises(NotFoundError, match="no running container"):
        find_container("no-such-container-anywhere")


def test_bundle_verifies_and_was_frozen(bundle: Bundle) -> None:
    r = verify_bundle(bundle.path)
    assert r.ok, r.problems
    m = bundle.manifest
    assert m["frozen"]["during"]["frozen"] is True and m["frozen"]["memory_dumped_frozen"] is True
    assert m["frozen"]["during"]["v1_freezer"]["freezer.state"] == "FROZEN"
    assert m["reason"] == "test capture" and m["collector"]["actor"] == "tester"
    assert m["collector"]["uid"] == 0 and m["target"]["container_id"]
    assert not [p for p in m["problems"] if "memory" in p], m["problems"]
    for rel in ("host.json", "container/container.json", "container/inspect.json", "process-tree.txt"):
        assert (bundle.path / rel).is_file(), rel
    assert _json(bundle, "host.json")["boot_id"]


def test_processes_env_redacted_raw_kept(bundle: Bundle, target: PodmanContainer) -> None:
    procs = _procs(bundle)
    assert target.pid in procs
    nc = [p for p in procs.values() if p["comm"] == "nc"]
    assert len(nc) == 3
    summary = (bundle.path / "processes.json").read_bytes() + (bundle.path / "summary.json").read_bytes()
    assert TOKEN.encode() not in summary and DB_PASSWORD.encode() not in summary
    env = nc[0]["environ"]
    assert env["API_TOKEN"] == REDACTED and env["PLAIN_SETTING"] == "visible-value"
    assert env["DB_URL"] == "postgres://admin:***@db:5432/x"
    assert {"API_TOKEN", "DB_URL"} <= set(nc[0]["environ_redacted"])
    raw = (bundle.path / "raw" / "environ" / str(nc[0]["pid"])).read_bytes()
    assert f"API_TOKEN={TOKEN}".encode() in raw and DB_PASSWORD.encode() in raw
    assert oct((bundle.path / "raw" / "environ" / str(nc[0]["pid"])).stat().st_mode & 0o777) == "0o400"
    # executables hashed through /proc/PID/exe: busybox, the same file for all
    busybox = shutil.which("busybox") or "/bin/busybox"
    import hashlib

    want = hashlib.sha256(Path(busybox).read_bytes()).hexdigest()
    assert {p["exe_sha256"] for p in procs.values()} == {want}
    assert procs[target.pid]["cwd"] == "/" and procs[target.pid]["cmdline"][:2] == ["sh", "-c"]
    held = [f for f in procs[target.pid]["fds"] if f["fd"] == 3]
    assert held and held[0]["target"] == "/tmp/held.log" and held[0]["kind"] == "file"
    tree = (bundle.path / "process-tree.txt").read_text()
    assert tree.startswith(f"{target.pid} ") and "  " in tree and "nc 127.0.0.1 7001" in tree


def test_network_listening_and_established_with_owners(bundle: Bundle) -> None:
    socks = _json(bundle, "network.json")["sockets"]
    procs = _procs(bundle)
    listening = [s for s in socks if s["proto"].startswith("tcp") and s["state"] == "LISTEN"]
    assert any(s["local"].endswith(":7000") for s in listening)
    est = [s for s in socks if s["state"] == "ESTABLISHED"]
    assert len(est) == 2 and {s["remote"].split(":")[-1] for s in est} >= {"7001"}
    for s in est + listening:
        assert s["pids"] and all(procs[p]["comm"] == "nc" for p in s["pids"])
    assert (bundle.path / "raw" / "net" / "tcp").is_file() and (
        bundle.path / "raw" / "net" / "unix"
    ).is_file()


def test_memory_dump_holds_the_marker(bundle: Bundle, target: PodmanContainer) -> None:
    dump = (bundle.path / "memory" / f"{target.pid}.mem").read_bytes()
    assert MARKER.encode() in dump
    index = _json(bundle, f"memory/{target.pid}.json")
    assert index["bytes"] == len(dump) > 0
    kernel = [r for r in index["regions"] if r["path"] in ("[vvar]", "[vsyscall]")]
    assert kernel and all("dumped" not in r and r["skipped"] for r in kernel)
    first = (bundle.path / "maps" / f"{target.pid}.maps").read_text().split("-", 1)[0]
    assert int(first, 16) == int(index["regions"][0]["start"], 16)
    # memory of the other processes was not asked for; their maps are kept
    assert len(list((bundle.path / "memory").glob("*.mem"))) == 1
    assert len(list((bundle.path / "maps").glob("*.maps"))) == len(_procs(bundle))


def test_filesystem_changes_archived_and_deletions_listed(bundle: Bundle) -> None:
    fs = _json(bundle, "fs/changes.json")
    assert fs["known"] is True
    changes = {c["path"]: c for c in fs["changes"]}
    assert changes["/etc/passwd"]["change"] == "changed"
    assert changes["/data/added.txt"]["change"] == "added" and changes["/data"]["change"] == "added"
    assert changes["/etc/group"]["change"] == "deleted"
    assert changes["/tmp/held.log"]["change"] == "added"
    with tarfile.open(bundle.path / "fs" / "changes.tar") as tf:
        names = set(tf.getnames())
        assert {"etc/passwd", "data/added.txt"} <= names and "etc/group" not in names
        f = tf.extractfile("etc/passwd")
        assert f is not None and f.read().endswith(b"tampered\n")
    diff = _json(bundle, "fs/podman-diff.json")
    assert "/etc/group" in (diff.get("deleted") or []) and "/data/added.txt" in (diff.get("added") or [])


def test_store_records_of_the_workload(bundle: Bundle) -> None:
    events = [orjson.loads(x) for x in (bundle.path / "store" / "events.jsonl").read_bytes().splitlines()]
    alerts = [orjson.loads(x) for x in (bundle.path / "store" / "alerts.jsonl").read_bytes().splitlines()]
    assert [e["id"] for e in events] == ["ev-test-1"]
    assert [a["rule"] for a in alerts] == ["Netcat in container"]


def test_runc_plain_rootfs_changes_unknown(runc_container: RuncFactory, tmp_path: Path) -> None:
    """Also: frozen by the freezer the runtime passes (stockade.enforce.freeze), thawed after."""
    c = runc_container(("sh", "-c", "echo x > /tmp/new; sleep 300"))
    found = find_container(c.id)
    assert found.runtime == "runc" and found.init_pid == c.pid
    b = capture_container(
        found, tmp_path / "data", reason="runc", memory=["all"], freezer=lambda: frozen(found.cgroup2_dir)
    )
    fs = _json(b, "fs/changes.json")
    assert fs["known"] is False and "plain directory" in fs["reason"] and "unknown" in fs["reason"]
    fz = b.manifest["frozen"]
    assert fz["freezer"] == "given" and fz["freezer_said"] is True and fz["memory_dumped_frozen"] is True
    assert (
        fz["before"]["frozen"] is False and fz["during"]["frozen"] is True and fz["after"]["frozen"] is False
    )
    assert sorted(int(p.stem) for p in (b.path / "memory").glob("*.mem")) == sorted(found.pids)
    assert not (b.path / "fs" / "podman-diff.json").exists()
    assert verify_bundle(b.path).ok


def test_cli_and_api_capture_through_the_running_instance(
    target: PodmanContainer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real manager (the runtime and its API served by uvicorn); the CLI's commands run in this
    process (main()) and reach it over HTTP."""
    port = free_port()
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "- rule: Nothing\n  desc: d\n  condition: evt.type = execve and proc.name = nosuchprog\n"
        "  output: o\n  priority: INFO\n"
    )
    data = tmp_path / "data"
    cfg = load_config(None, {"data_dir": str(data), "engine": {"falco_rules_paths": []}}, environ={})
    rt = Runtime(cfg, rules=[str(rules)])
    srv = uvicorn.Server(
        uvicorn.Config(
            create_app(rt.store, rt), host="127.0.0.1", port=port, log_level="error", lifespan="off"
        )
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_until(lambda: srv.started, 30)

        def run(*args: str) -> tuple[int, str, str]:
            code = main([*args, "--port", str(port)])
            out, err = capsys.readouterr()
            return code, out, err

        code, out, err = run(
            "evidence", "capture", target.name, "--reason", "cli test", "--pid", str(target.pid)
        )
        assert code == 0, err
        path = Path(out.strip())
        assert path.parent == data / "evidence" and path.is_dir()
        m = orjson.loads((path / "manifest.json").read_bytes())
        assert m["target"]["kind"] == "process" and m["target"]["pids"] == [target.pid]
        assert m["reason"] == "cli test" and "evidence capture" in m["collector"]["command"]
        code, out, err = run("evidence", "list", "--output", "json")
        assert code == 0 and orjson.loads(out.splitlines()[0])["id"] == path.name
        code, out, err = run("evidence", "show", path.name)
        assert code == 0 and path.name in out and "captured by" in out, err
        code, out, err = run("evidence", "verify", path.name)
        assert code == 0 and "intact" in out, out + err
        code, out, err = run("evidence", "capture", "no-such-container-anywhere")
        assert code == 3 and err.startswith("stockade: error: no running container")
        code, out, err = run("evidence", "capture", target.name, "--pid", "1")
        assert code == 2 and "--pid 1: not a process of container" in err
        # the API: 201 with id and path; the chain of custody records views and verifications
        r = httpx.post(
            f"{base}/api/v1/evidence", json={"container": target.id[:12], "reason": "api"}, timeout=120
        )
        assert r.status_code == 201, r.text
        bid = r.json()["id"]
        assert r.json()["path"].endswith(bid)
        v = httpx.get(f"{base}/api/v1/evidence/{bid}/verify", timeout=60).json()
        assert v["ok"] is True and v["key_source"] == "given"
        shown = httpx.get(f"{base}/api/v1/evidence/{bid}", timeout=60).json()
        assert [e["action"] for e in shown["custody"]] == ["captured", "verified", "viewed"]
        assert httpx.get(f"{base}/api/v1/evidence/ev-nope", timeout=10).status_code == 404
        # offline, on the directory, with the node's public key: still intact after the appends
        code, out, err = run(
            "evidence", "verify", r.json()["path"], "--public-key", str(data / "keys" / "signing.pub")
        )
        assert code == 0 and "(given)" in out, out + err
    finally:
        srv.should_exit = True
        thread.join(10)
        rt.close()
