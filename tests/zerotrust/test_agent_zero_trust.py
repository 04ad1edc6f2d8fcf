"""Zero trust in the split deployment: `stockade agent` on the node learns a podman service in
Discover, promotes it to Monitor on its own once its profile is stable (its configuration's
promotion), keeps profiles and modes in a store of its own, and ships the deviation an attack
through the service's foothold raises to `stockade server`, where it is stored."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from containers import _run
from helpers import free_port, wait_until
from stockade.config import load_config
from stockade.storage.behavior import BehaviorStore
from stockade.storage.store import Store
from upctl import STOCKADE
from zerotrust.test_zero_trust_e2e import _ask, _ip, _podman_run

pytestmark = [pytest.mark.root, pytest.mark.containers, pytest.mark.ebpf, pytest.mark.slow]


def _start(args: list[str], config: dict[str, Any], home: Path) -> subprocess.Popen[bytes]:
    home.mkdir()
    cfg = home / "stockade.yaml"
    cfg.write_text(yaml.safe_dump(config))
    with (home / "stderr").open("wb") as log:
        return subprocess.Popen(
            [STOCKADE, "--config", str(cfg), *args], stdout=subprocess.DEVNULL, stderr=log
        )


def _stop(p: subprocess.Popen[bytes]) -> None:
    p.terminate()
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def _modes(data: Path) -> dict[str, str]:
    cfg = load_config(None, {"data_dir": str(data)}, environ={})
    if not Path(cfg.db_url().removeprefix("sqlite:///")).exists():
        return {}
    st = Store.from_config(cfg)
    try:
        return {w.id: w.mode for w in BehaviorStore(st).list_workloads()}
    finally:
        st.close()


def test_the_agent_learns_promotes_and_ships_deviations(
    tmp_path: Path, svc_images: dict[str, str], podman_network: str
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = _start(["server", "--port", str(port), "--data-dir", str(tmp_path / "mgr")], {}, tmp_path / "s")
    agent_data = tmp_path / "agent"
    pin = f"/sys/fs/bpf/stockade-test-agent-{port}"
    config = {
        "zero_trust": {
            "promotion": {"to": "monitor", "quiet_s": 6, "min_observations": 5},
            "save_every_s": 1,
            "enforcement": {"pin_dir": pin},
        },
        "resources": {"enabled": False},
    }
    agent = _start(["agent", "--manager", base, "--data-dir", str(agent_data)], config, tmp_path / "a")
    svc: dict[str, Any] = {}
    try:
        assert wait_until(lambda: _healthy(base), 60), (tmp_path / "s" / "stderr").read_text()
        assert wait_until(lambda: list(agent_data.glob("*.db")) != [] or agent.poll() is not None, 60)
        assert agent.poll() is None, (tmp_path / "a" / "stderr").read_text()
        time.sleep(2)  # the sensor attached
        svc = _podman_run(svc_images["v1"], f"ztagent{port}-1", podman_network)
        ip = _ip(svc)
        wid = f"container/localhost/stockade-test-svc/ztagent{port}"

        def promoted() -> bool:
            for _ in range(3):
                _ask(ip, "/")
                _ask(ip, "/report")
            return _modes(agent_data).get(wid) == "monitor"

        assert wait_until(promoted, 90, step=1), (_modes(agent_data), (tmp_path / "a" / "stderr").read_text())
        assert _ask(ip, "/x/exec?/bin/sh") == "exec ran status=0"  # Monitor: seen, not denied

        def shipped() -> list[dict[str, Any]]:
            items = httpx.get(f"{base}/api/v1/alerts", params={"limit": 500}, timeout=10).json()["items"]
            return [
                a
                for a in items
                if a["rule"] == "Workload policy deviation"
                and a["output_fields"].get("stockade.workload") == wid
            ]

        assert wait_until(lambda: bool(shipped()), 30, step=0.5), (tmp_path / "a" / "stderr").read_text()
        assert any("/bin/" in a["output_fields"]["stockade.target"] for a in shipped())
    finally:
        if svc:
            _run(["podman", "rm", "-f", "-t", "0", svc["Name"]], timeout=120)
        _stop(agent)
        _stop(server)
        _run(["rm", "-rf", pin])


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
