"""`stockade up` as a user runs it: a real process with the sensor, the API and the store; a shell
started in a podman container shows up in `stockade alerts` and at /api/v1/alerts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import free_port

pytestmark = [pytest.mark.root, pytest.mark.containers, pytest.mark.slow]
STOCKADE = str(Path(sys.executable).parent / "stockade")


def test_shell_in_a_container_reaches_stockade_alerts_and_the_api(
    tmp_path: Path, podman_container: Any
) -> None:
    port = free_port()
    data = tmp_path / "data"
    env = {**os.environ, "STOCKADE_CONFIG": "", "STOCKADE_SENSOR__WATCH_PATHS": f"[{tmp_path}]"}
    up = subprocess.Popen(
        [STOCKADE, "--output", "json", "up", "--port", str(port), "--data-dir", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert up.poll() is None, up.stderr.read().decode() if up.stderr else ""
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "stockade up did not come up"
            time.sleep(0.3)
        c = podman_container()
        short = c.id[:12]
        time.sleep(0.5)
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + 45
        next_try = 0.0
        while time.monotonic() < deadline and not found:
            if time.monotonic() >= next_try:
                # again if need be: on this shared machine a burst elsewhere can make the kernel drop
                # proc connector messages (counted and alerted on; tests/sensor covers that)
                c.exec(["sh", "-i", "-c", "id; sleep 0.2"])
                next_try = time.monotonic() + 10
            items = httpx.get(f"{base}/api/v1/alerts", params={"limit": 200}, timeout=5).json()["items"]
            found = [
                a
                for a in items
                if a["output_fields"].get("container.id") == short
                and a["output_fields"].get("proc.name") == "sh"
            ]
            time.sleep(0.5)
        if not found:
            st = httpx.get(f"{base}/api/v1/status", timeout=5).json()["runtime"]
            seen = [
                (a["rule"], a["output_fields"].get("container.id"), a["output_fields"].get("proc.name"))
                for a in items
            ]
            raise AssertionError(
                f"no alert for the shell in container {short}; alerts {seen[:20]}; sensor {st['sensor']}"
            )
        a = found[0]
        assert a["output_fields"].get("container.image.repository") == "localhost/stockade-test-busybox"
        st = httpx.get(f"{base}/api/v1/status", timeout=5).json()["runtime"]
        assert st["sensor"]["backend"]  # it says which backend runs
        assert "filtered_total" in st["sensor"] and "lost_total" in st["sensor"]
        if st["sensor"]["backend"] == "ebpf":  # no rule of the pack reads a failed creat
            assert "creat" in st["sensor"]["kernel_prefilter"]["drop_failed"]
        shown = subprocess.run(
            [STOCKADE, "status", "--port", str(port)], capture_output=True, text=True, env=env, timeout=30
        )
        assert shown.returncode == 0 and "lost," in shown.stdout and "filtered in the kernel" in shown.stdout
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            _out, err = up.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            up.kill()
            _out, err = up.communicate()
    assert up.returncode == 0, err.decode()
    assert b"stopped" in err
    # the alert was stored: `stockade alerts` finds it after the stop
    r = subprocess.run(
        [STOCKADE, "alerts", "list", "--data-dir", str(data), "--container", short, "-o", "json"],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    rules = [json.loads(line)["rule"] for line in r.stdout.splitlines()]
    assert rules, "stockade alerts lists nothing for the container"
