"""Serving a runtime over HTTP with uvicorn until SIGINT/SIGTERM; SIGHUP reopens the file sinks and
reloads the rules (:meth:`stockade.runtime.service.Runtime.hangup`)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

import uvicorn

from stockade.api.app import create_app
from stockade.runtime.preflight import check_listen
from stockade.runtime.service import Runtime


class _Server(uvicorn.Server):
    """uvicorn's server, but a SIGINT/SIGTERM only stops it: uvicorn would re-raise the signal once
    it has stopped, killing the process before Stockade flushes its pipeline, store and sinks.
    SIGHUP (which would kill the process by default) calls `on_hangup` in a thread of its own."""

    def __init__(self, config: uvicorn.Config, on_hangup: Any = None) -> None:
        super().__init__(config)
        self.on_hangup = on_hangup

    def _hangup(self, *_: Any) -> None:
        if self.on_hangup is not None:
            threading.Thread(target=self.on_hangup, name="stockade-sighup", daemon=True).start()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._hangup)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def api_url(host: str, port: int) -> str:
    """The URL clients on this host use (a wildcard address is reached through the loopback)."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(rt: Runtime, host: str | None = None, port: int | None = None) -> None:
    """Run the API over `rt` until SIGINT/SIGTERM; then flush and close the runtime."""
    host = host or rt.cfg.api.host
    port = port or rt.cfg.api.port
    check_listen(rt.cfg, host, port)
    app = create_app(rt.store, rt, token=rt.cfg.api.token)
    server = _Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"),
        on_hangup=rt.hangup,
    )
    main = threading.current_thread() is threading.main_thread()
    # SIGHUP from the start: a logrotate between here and uvicorn's own handlers must not kill us
    previous = signal.signal(signal.SIGHUP, server._hangup) if main else None
    rt.start(api_url(host, port))
    try:
        server.run()
    finally:
        if main:
            signal.signal(signal.SIGHUP, previous)
        rt.close()
