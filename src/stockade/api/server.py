"""Serving a runtime over HTTP with uvicorn until SIGINT/SIGTERM."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Iterator

import uvicorn

from stockade.api.app import create_app
from stockade.errors import ConfigError
from stockade.runtime.service import Runtime


class _Server(uvicorn.Server):
    """uvicorn's server, but a SIGINT/SIGTERM only stops it: uvicorn would re-raise the signal once
    it has stopped, killing the process before Stockade flushes its pipeline, store and sinks."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def check_port_free(host: str, port: int) -> None:
    """Fail early, with a clear message, if the API address cannot be bound."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise ConfigError(
                f"cannot listen on {host}:{port}: {e.strerror or e} (set --port or api.port)"
            ) from None


def serve(rt: Runtime, host: str | None = None, port: int | None = None) -> None:
    """Run the API over `rt` until SIGINT/SIGTERM; then flush and close the runtime."""
    host = host or rt.cfg.api.host
    port = port or rt.cfg.api.port
    check_port_free(host, port)
    app = create_app(rt.store, rt, token=rt.cfg.api.token)
    server = _Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
    )
    rt.start()
    try:
        server.run()
    finally:
        rt.close()
