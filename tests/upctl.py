"""`stockade up` as a real process, for the integration tests of any directory.

``stockade_up``: a factory of :class:`Up` (``start()``, ``stop()``, ``cli(args)``, ``api(path)``,
``get(route, query, **path)``, ``alerts()``), each a ``stockade up`` process with its own data directory, API port and BPF pin
directory; stopped and cleaned up at the end of the test (registered in tests/conftest.py).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from helpers import free_port, need
from stockade.model import apipaths
from trees import CACHE as TEST_CACHE

STOCKADE = str(Path(sys.executable).parent / "stockade")
#: the compiled-rules cache every start shares (the key covers the rules, options and code)
RULES_CACHE = TEST_CACHE / "rules"


class Up:
    """`stockade up` as a real process (module docstring)."""

    def __init__(self, tmp: Path, config: dict[str, Any]) -> None:
        self.port = free_port()
        self.data = tmp / "data"
        self.pin_dir = f"/sys/fs/bpf/stockade-test-{secrets.token_hex(4)}"
        cfg = {
            "zero_trust": {
                "promotion": {"to": "off"},
                "save_every_s": 1,
                "enforcement": {"pin_dir": self.pin_dir},
            },
            "sensor": {"watch_paths": [str(tmp)]},
            # scans of every container and loopback port on this shared machine: on in the tests
            # that are about them (tests/certs), off elsewhere so other tests' alerts stay theirs
            "certs": {"enabled": False},
            "drift": {"enabled": False},
            # walks of the host's root and of every image: in tests/vulns only
            "vulnerabilities": {"watch": False},
            # one compiled-rules cache for every start in the suite (each has its own data dir)
            "engine": {"rules_cache_dir": str(RULES_CACHE)},
        }
        _merge(cfg, config)
        self.config = tmp / "stockade.yaml"
        self.config.write_text(yaml.safe_dump(cfg))
        self.env = {**os.environ, "STOCKADE_CONFIG": str(self.config)}
        self.proc: subprocess.Popen[bytes] | None = None
        #: its standard error (all runs, appended)
        self.log_path = tmp / "stockade.log"
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> None:
        """Start it and wait until its API answers."""
        cmd = [
            STOCKADE,
            "--config",
            str(self.config),
            "up",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data),
        ]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=self.env)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"stockade up exited: {self.log()}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "stockade up did not come up"
            time.sleep(0.3)

    def log(self) -> str:
        """What it wrote on standard error so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> str:
        """SIGTERM and wait; its standard error. It must exit 0."""
        if self.proc is None:
            return ""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self.proc = None
        assert code == 0, self.log()
        return self.log()

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """A stockade command against this instance (found by its data directory, as users do)."""
        cmd = [STOCKADE, "--config", str(self.config), *args, "--data-dir", str(self.data)]
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=timeout, check=False)

    def api(self, path: str, **params: Any) -> Any:
        """GET /api/v1 + path."""
        r = httpx.get(f"{self.base}/api/v1{path}", params=params, timeout=10)
        r.raise_for_status()
        return r.json()

    def get(self, route: str, /, query: dict[str, Any] | None = None, **path: str) -> Any:
        """GET a route of stockade.model.apipaths, its placeholders filled from `path` (what a
        test polls: a request, not a CLI process per look)."""
        r = httpx.get(self.base + apipaths.api_path(route, **path), params=query, timeout=10)
        r.raise_for_status()
        return r.json()

    def alerts(self, rule_prefix: str = "Workload policy") -> list[dict[str, Any]]:
        """The stored alerts whose rule starts with `rule_prefix`, oldest first."""
        items = self.api("/alerts", limit=1000)["items"]
        return sorted((a for a in items if a["rule"].startswith(rule_prefix)), key=lambda a: a["time"])

    def cleanup(self) -> None:
        """Stop if running; remove the pinned programs it left."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.pin_dir, ignore_errors=True)


def _merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = v


@pytest.fixture
def stockade_up(tmp_path: Path) -> Iterator[Any]:
    """Makes :class:`Up` instances; every one is stopped and cleaned up at the end of the test."""
    need(os.geteuid() == 0, "needs root")
    made: list[Up] = []

    def make(config: dict[str, Any] | None = None) -> Up:
        home = tmp_path / f"up{len(made)}"
        home.mkdir()
        up = Up(home, config or {})
        made.append(up)
        return up

    try:
        yield make
    finally:
        for up in made:
            up.cleanup()
