"""`stockade audit` end to end: a real `stockade server` process records an alert and the API
changes made through the CLI; `stockade audit checkpoint` asks it to sign; after it stops
`stockade audit list` and `verify` read the store; an attacker's edit makes `verify` exit 1 naming
the record on its first line."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from helpers import free_port
from stockade.audit.keys import NodeKey
from stockade.cli.main import main

STOCKADE = str(Path(sys.executable).parent / "stockade")
RULES = """
- rule: Shadow read
  desc: d
  condition: evt.type = openat and fd.name = /etc/shadow
  output: shadow read by %proc.name (container=%container.id)
  priority: WARNING
"""


@contextlib.contextmanager
def _server(tmp_path: Path, port: int, data: Path, env: dict[str, str]) -> Iterator[None]:
    """`stockade server` until the block ends, then SIGTERM: it must stop cleanly (exit 0)."""
    base = f"http://127.0.0.1:{port}"
    out = tmp_path / "server.log"
    with out.open("wb") as log:
        proc = subprocess.Popen(
            [STOCKADE, "server", "--port", str(port), "--data-dir", str(data)],
            stdout=log,
            stderr=log,
            env=env,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, out.read_text()
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "stockade server did not come up"
                time.sleep(0.2)
            yield
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
    assert code == 0, out.read_text()


def test_audit_commands_against_a_running_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    config = tmp_path / "stockade.yaml"
    config.write_text(
        yaml.safe_dump({"runtime_dir": str(tmp_path / "run"), "engine": {"rules_files": [str(rules)]}})
    )
    env = {**os.environ, "STOCKADE_CONFIG": str(config)}
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [STOCKADE, *args], capture_output=True, text=True, env=env, timeout=60, check=False
        )

    with _server(tmp_path, port, data, env):
        shadow = {
            "evt.type": "openat",
            "fd.name": "/etc/shadow",
            "proc.name": "cat",
            "container.id": "3ad7b26ded6d",
        }
        assert httpx.post(f"{base}/api/v1/ingest/events", json=[shadow]).status_code == 200
        r = cli("rules", "mute", "Shadow read", "--reason", "drill", "--for", "1h", "--port", str(port))
        assert r.returncode == 0, r.stderr
        r = cli("audit", "checkpoint", "--port", str(port))
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("checkpoint 1 signed: records up to "), r.stdout

    # after it stopped: the commands that read the store, in this process (the executable's own
    # start-up is paid once more below, for the exit status of the contract)
    monkeypatch.setenv("STOCKADE_CONFIG", str(config))

    def run(*args: str) -> tuple[int, str, str]:
        rc = main(list(args))
        out, err = capsys.readouterr()
        return rc, out, err

    rc, out, _ = run("audit", "list", "--data-dir", str(data), "--output", "json")
    records = [json.loads(line) for line in out.splitlines()]
    kinds = [r["kind"] for r in reversed(records)]
    # the alert is stored at the pipeline's next tick: before or after the mute; it opened an
    # incident (recorded by the incident service's thread)
    assert rc == 0 and sorted(kinds) == ["alert", "api", "api", "incident", "mute"], kinds
    assert kinds[-1] == "api" and records[0]["subject"] == "POST /api/v1/audit/checkpoints"
    assert {r["kind"]: r["actor"] for r in records}["api"] == "127.0.0.1"

    rc, out, err = run("audit", "verify", "--data-dir", str(data))
    assert rc == 0, out + err
    [line] = out.splitlines()
    # one checkpoint asked for, one at shutdown (after the checkpoint request's own record)
    assert line.startswith("audit log intact: 5 records, 2 checkpoints, last checkpoint "), line
    assert "signed by key " in line

    other = tmp_path / "other"
    NodeKey.load_or_create(other)
    rc, out, _ = run(
        "audit", "verify", "--data-dir", str(data), "--public-key", str(other / "keys" / "signing.pub")
    )
    assert rc == 1 and out.startswith("checkpoint 1: bad signature (key "), out
    rc, _, err = run("audit", "verify", "--data-dir", str(data), "--public-key", str(tmp_path / "nope.pub"))
    assert rc == 1 and err.startswith("stockade: error: cannot read the public key"), err

    con = sqlite3.connect(data / "stockade.db")
    con.execute("""UPDATE audit_log SET actor='nobody' WHERE seq=2""")
    con.commit()
    con.close()
    bad = cli("audit", "verify", "--data-dir", str(data))
    assert bad.returncode == 1
    assert bad.stdout.splitlines()[0] == "record 2 changed (hash mismatch)", bad.stdout
    assert bad.stdout.splitlines()[-1].startswith("audit log NOT intact: 1 problem")
