"""Errors blame where a value came from (flag, environment variable, file), not `<defaults>`; the
preflight checks of `stockade up` (busy port, unusable data directory); runtime files and how the
CLI finds the running instance from them."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from stockade.cli import common, locate
from stockade.config import load_config
from stockade.errors import ConfigError, UsageError
from stockade.runtime import instance
from stockade.runtime.preflight import check_data_dir, check_listen

REPO = Path(__file__).resolve().parents[2]


def test_origins() -> None:
    cfg = load_config(
        None,
        {"api": {"port": 8721}},
        environ={"STOCKADE_DATA_DIR": "/tmp/x"},
        override_origins={"api.port": "--port 8721"},
    )
    assert cfg.origin("api.port") == "--port 8721"
    assert cfg.origin("data_dir") == "STOCKADE_DATA_DIR=/tmp/x"
    assert cfg.origin("api.host") is None and cfg.describe("api.host") == "api.host (default)"


def test_file_origin(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("api:\n  port: 9000\n")
    cfg = load_config(p, environ={})
    assert cfg.origin("api.port") == f"{p} (key 'api.port')"


@pytest.mark.parametrize(
    ("overrides", "origins", "environ", "expected"),
    [
        ({"api": {"port": 99999}}, {"api.port": "--port 99999"}, {}, "--port 99999: key 'api.port': "),
        (None, None, {"STOCKADE_API__PORT": "many"}, "STOCKADE_API__PORT=many: key 'api.port': "),
        (None, None, {"STOCKADE_BOGUS": "1"}, "STOCKADE_BOGUS=1: key 'bogus': "),
    ],
)
def test_bad_values_blame_the_flag_or_variable(
    overrides: dict[str, object] | None,
    origins: dict[str, str] | None,
    environ: dict[str, str],
    expected: str,
) -> None:
    with pytest.raises(ConfigError) as ei:
        load_config(None, overrides, environ=environ, override_origins=origins)
    assert str(ei.value).startswith(expected) and "<defaults>" not in str(ei.value)


def test_busy_port_blames_its_origin() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        flag = load_config(
            None, {"api": {"port": port}}, environ={}, override_origins={"api.port": f"--port {port}"}
        )
        with pytest.raises(ConfigError) as ei:
            check_listen(flag)
        assert str(ei.value) == f"--port {port}: cannot listen on 127.0.0.1:{port}: address already in use"
        env = load_config(None, environ={"STOCKADE_API__PORT": str(port)})
        with pytest.raises(ConfigError, match=rf"^STOCKADE_API__PORT={port}: cannot listen"):
            check_listen(env)


def test_unusable_data_dir_blames_its_origin(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    cfg = load_config(
        None,
        {"data_dir": str(tmp_path / "file" / "data")},
        environ={},
        override_origins={"data_dir": "--data-dir X"},
    )
    with pytest.raises(ConfigError, match=r"^--data-dir X: data directory .* is not usable: a file stands"):
        check_data_dir(cfg)
    ok = load_config(None, {"data_dir": str(tmp_path / "new" / "data")}, environ={})
    check_data_dir(ok)
    assert (tmp_path / "new" / "data").is_dir() and list((tmp_path / "new" / "data").iterdir()) == []
    assert (tmp_path / "new" / "data").stat().st_mode & 0o777 == 0o700  # private, as the store's


def _cfg(tmp_path: Path, data: str = "data") -> object:
    return load_config(
        None, {"data_dir": str(tmp_path / data), "runtime_dir": str(tmp_path / "run")}, environ={}
    )


def test_runtime_file_written_found_and_removed(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    rf = instance.RuntimeFile(cfg, "up", api_url="http://127.0.0.1:9999")  # type: ignore[arg-type]
    rf.write()
    assert rf.problems == []
    assert (tmp_path / "run" / f"up-{os.getpid()}.json").is_file()
    found = instance.running(cfg)  # type: ignore[arg-type]
    assert [(i.pid, i.api_url, i.db_url) for i in found] == [
        (os.getpid(), "http://127.0.0.1:9999", f"sqlite:///{tmp_path / 'data' / 'stockade.db'}")
    ]
    assert instance.in_data_dir(str(tmp_path / "data")) is not None
    rf.remove()
    assert instance.running(cfg) == [] and not (tmp_path / "data" / "instance.json").exists()  # type: ignore[arg-type]


def test_stale_runtime_file_is_ignored_and_removed(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    rf = instance.RuntimeFile(cfg, "up", api_url="http://127.0.0.1:9999")  # type: ignore[arg-type]
    rf.instance = dataclasses.replace(rf.instance, pid=dead.pid)
    rf.write()
    stale = tmp_path / "run" / f"up-{os.getpid()}.json"
    assert stale.is_file()
    assert instance.running(cfg) == []  # type: ignore[arg-type]
    assert not stale.exists()
    # a live pid with another start time is a reused pid: stale too
    rf2 = instance.RuntimeFile(cfg, "up", api_url=None)  # type: ignore[arg-type]
    rf2.instance = dataclasses.replace(rf2.instance, pid_start=(rf2.instance.pid_start or 0) + 1)
    rf2.write()
    assert instance.running(cfg) == []  # type: ignore[arg-type]


def test_locate_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKADE_CONFIG", "")
    monkeypatch.setenv("STOCKADE_RUNTIME_DIR", str(tmp_path / "run"))
    for k in [
        k
        for k in os.environ
        if k.startswith("STOCKADE_") and k not in ("STOCKADE_CONFIG", "STOCKADE_RUNTIME_DIR")
    ]:
        monkeypatch.delenv(k)
    common.STATE.config_path, common.STATE.overrides, common.STATE.origins = None, {}, {}
    common.STATE._config = None
    assert locate.api_base() == "http://127.0.0.1:8720"  # nothing runs: the default
    cfg = common.STATE.config()
    a = instance.RuntimeFile(
        cfg.model_copy(update={"data_dir": str(tmp_path / "a")}), "up", api_url="http://127.0.0.1:9001"
    )
    a.write()
    try:
        assert locate.api_base() == "http://127.0.0.1:9001"
        assert locate.store_url() == f"sqlite:///{tmp_path / 'a' / 'stockade.db'}"
        assert locate.api_base(port=9005) == "http://127.0.0.1:9005"
        b = instance.RuntimeFile(
            cfg.model_copy(update={"data_dir": str(tmp_path / "b")}),
            "server",
            api_url="http://127.0.0.1:9002",
        )
        b.instance = dataclasses.replace(b.instance, started=b.instance.started + 1)
        b.paths = [tmp_path / "run" / "server-1.json", tmp_path / "b" / "instance.json"]
        b.write()
        with pytest.raises(UsageError, match="2 Stockade instances are running here"):
            locate.api_base()
        assert locate.api_base(data_dir=str(tmp_path / "b")) == "http://127.0.0.1:9002"
        # the environment names a port: that one, not the runtime files
        monkeypatch.setenv("STOCKADE_API__PORT", "9100")
        common.STATE._config = None
        assert locate.api_base() == "http://127.0.0.1:9100"
        b.remove()
    finally:
        a.remove()
        common.STATE._config = None


def test_make_up_passes_port_and_data_dir() -> None:
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "up", "PORT=8721", "DATA_DIR=/tmp/x"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert ".venv/bin/stockade up --port 8721 --data-dir /tmp/x" in dry.stdout
    plain = subprocess.run(
        ["make", "--no-print-directory", "-n", "up"], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert plain.stdout.splitlines()[-1].strip() == ".venv/bin/stockade up"
