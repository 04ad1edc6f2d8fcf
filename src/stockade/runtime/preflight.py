"""Checks `stockade up`, `server` and `agent` make before anything starts (rules, store, sensor): the
data directory is usable and the API address can be bound. Each failure is one line that blames
the flag, environment variable or config key that set the value (``--port 8720: ...``,
``STOCKADE_DATA_DIR=/x: ...``)."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import tempfile
from pathlib import Path

from stockade.config import StockadeConfig
from stockade.errors import ConfigError, Location

_HOST_ERRNOS = {errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT}


def check_data_dir(cfg: StockadeConfig) -> None:
    """The data directory exists (created if need be) and this process can create files in it."""
    path = Path(cfg.data_dir).expanduser()
    blame = cfg.describe("data_dir")
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)  # private, as the store makes it
        fd, probe = tempfile.mkstemp(prefix=".stockade-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        why = e.strerror or str(e)
        if isinstance(e, (NotADirectoryError, FileExistsError)):
            why = "a file stands where a directory should"
        raise ConfigError(f"data directory {path} is not usable: {why}", Location(blame)) from None


def check_listen(cfg: StockadeConfig, host: str | None = None, port: int | None = None) -> None:
    """The API address can be bound now (SO_REUSEADDR, as uvicorn binds it)."""
    host = host or cfg.api.host
    port = port or cfg.api.port
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ConfigError(
            f"cannot listen on {host}: {e.strerror}", Location(cfg.describe("api.host"))
        ) from None
    fam, _, _, _, addr = infos[0]
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        with contextlib.suppress(OSError):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
        except OSError as e:
            blame = cfg.describe("api.host" if e.errno in _HOST_ERRNOS else "api.port")
            why = (e.strerror or str(e)).lower()
            raise ConfigError(f"cannot listen on {host}:{port}: {why}", Location(blame)) from None


def preflight(cfg: StockadeConfig, *, api: bool = True) -> None:
    """Check the data directory (and the API address, with `api`) before anything starts."""
    check_data_dir(cfg)
    if api:
        check_listen(cfg)
