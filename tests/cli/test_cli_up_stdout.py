"""`stockade up` as a real process prints each alert once, with or without a configured stdout sink."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from helpers import free_port

STOCKADE = str(Path(sys.executable).parent / "stockade")
REPO = Path(__file__).resolve().parents[2]
RULES = """\
- rule: Shell
  desc: d
  condition: evt.type = execve and proc.name = bash
  output: shell (user=%user.name)
  priority: WARNING
"""
EVENT = b'{"evt.type":"execve","proc.name":"bash","user.name":"root","evt.time":1700000000000000000}\n'


def docs_stdout_sink() -> str:
    """The stdout sink example of docs/sinks.md, as written there."""
    text = (REPO / "docs" / "sinks.md").read_text()
    m = re.search(r"^## stdout\n\n```yaml\n(.*?)```", text, re.S | re.M)
    assert m, "docs/sinks.md has no stdout example"
    return m.group(1)


def run_up(tmp_path: Path, sinks_yaml: str, *global_args: str) -> tuple[str, str]:
    """Start `stockade up` (no sensor), send one event that raises one alert, stop it with SIGTERM;
    (its standard output, its standard error)."""
    port = free_port()
    cfg = tmp_path / "stockade.yaml"
    cfg.write_text(
        f"data_dir: {tmp_path / 'data'}\nsensor:\n  backend: none\n"
        f"engine:\n  falco_rules_paths: []\n  aggregate_window_s: 0\n"
        # the node's containers and ports are not this test's: their drift, certificate and
        # vulnerability alerts would be printed too (tests/upctl.py does the same)
        "certs:\n  enabled: false\ndrift:\n  enabled: false\nvulnerabilities:\n  watch: false\n"
        f"{sinks_yaml}"
    )
    (tmp_path / "rules.yaml").write_text(RULES)
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKADE_")}
    with out.open("wb") as fo, err.open("wb") as fe:
        proc = subprocess.Popen(
            [STOCKADE, "-c", str(cfg), *global_args, "up", "--port", str(port), "-r", "rules.yaml"],
            stdout=fo,
            stderr=fe,
            cwd=tmp_path,
            env=env,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, err.read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "stockade up did not start"
            time.sleep(0.1)
        r = httpx.post(
            f"{base}/api/v1/ingest/events",
            content=EVENT,
            headers={"Content-Type": "application/x-ndjson"},
            timeout=10,
        )
        assert r.status_code == 200 and r.json()["alerts"] == 1, r.text
        while not out.read_bytes().endswith(b"\n"):  # the first line is there; a second would follow it
            assert proc.poll() is None and time.monotonic() < deadline, err.read_text()
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
    assert rc == 0, err.read_text()
    return out.read_text(), err.read_text()


def test_the_docs_stdout_sink_prints_each_alert_once(tmp_path: Path) -> None:
    sink = docs_stdout_sink()
    assert "type: stdout" in sink and "format: text" in sink
    sinks_yaml = "sinks:\n" + "".join("  " + line + "\n" for line in sink.splitlines())
    out, err = run_up(tmp_path, sinks_yaml, "-o", "json")
    lines = out.splitlines()
    # the configured sink (text) replaces the printer (which would print JSON with -o json)
    assert len(lines) == 1, out
    assert lines[0].endswith(": Warning shell (user=root)"), out
    assert "stopped (1 alerts)" in err


@pytest.mark.parametrize(("args", "json_out"), [((), False), (("-o", "json"), True)])
def test_without_a_stdout_sink_up_prints_each_alert_once(
    tmp_path: Path, args: tuple[str, ...], json_out: bool
) -> None:
    out, _ = run_up(tmp_path, "", *args)
    lines = out.splitlines()
    assert len(lines) == 1, out
    assert lines[0].startswith('{"time"') if json_out else lines[0].endswith("shell (user=root)")
