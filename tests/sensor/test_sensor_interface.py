"""Every registered sensor backend through the interface (stockade.sensor.interface.Backend).

probe() says whether it can run here without raising (with the reason when not); where it can
(as root: every kernel backend in CI), it starts, delivers raw events of the documented shape,
closes twice safely, and its stats have the documented keys. A new backend is one file and one
registry line: this test runs it without further edits.
"""

from __future__ import annotations

import importlib
import pkgutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

import stockade.sensor
from helpers import need
from stockade.config import SensorConfig
from stockade.sensor.interface import (
    PRIVATE_KEYS,
    ROLES,
    Backend,
    BackendContext,
    BackendStatsDict,
    Capabilities,
    RawEvent,
)
from stockade.sensor.registry import BACKENDS

#: what every raw event carries (the interface's module docstring)
REQUIRED_KEYS = {"evt.type", "evt.dir", "evt.time", "proc.pid", "thread.tid"}


@pytest.mark.parametrize("name", BACKENDS.names())
def test_declares_how_it_is_planned(name: str) -> None:
    cls = BACKENDS.load(name)
    assert issubclass(cls, Backend) and cls.name == name
    assert cls.role in ROLES and isinstance(cls.title, str) and cls.title
    assert cls.reader_nice is None or -20 <= cls.reader_nice <= 19
    if cls.causal_first:  # its reader waits on a descriptor before taking the lock
        assert cls.fileno is not Backend.fileno
    if cls.watches_containers:
        assert cls.watch_container is not Backend.watch_container
    if cls.prefilters_failed:
        assert cls.from_context is not Backend.from_context  # it must take ctx.drop_failed


@pytest.mark.parametrize("name", BACKENDS.names())
def test_probe_says_whether_it_can_run_and_why_not(name: str) -> None:
    caps = BACKENDS.load(name).probe()
    assert isinstance(caps, Capabilities) and caps.name == name
    assert caps.available or caps.reason, "an unavailable backend says why"
    if caps.available and BACKENDS.load(name).role != "replay":
        assert caps.evttypes, "a kernel backend says which event types it can produce"


def _activity(tmp_path: Path) -> None:
    """Something for every backend to see: a child that writes and reads a file, a connection."""
    subprocess.run(["/bin/sh", "-c", f"echo x > {tmp_path}/f; /bin/cat {tmp_path}/f >/dev/null"], check=True)
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        with socket.create_connection(srv.getsockname(), timeout=2):
            pass


def _check_event(ev: RawEvent) -> None:
    assert ev.keys() >= REQUIRED_KEYS, sorted(ev)
    assert ev["evt.dir"] == "<" and isinstance(ev["evt.time"], int) and isinstance(ev["proc.pid"], int)
    assert {k for k in ev if k.startswith("_")} <= set(PRIVATE_KEYS)


#: the backends, those reading the kernel marked root (the recorded double runs anywhere)
RUNNING = [
    pytest.param(n, marks=[] if BACKENDS.load(n).role == "replay" else [pytest.mark.root]) for n in BACKENDS
]


@pytest.mark.parametrize("name", RUNNING)
def test_runs_through_the_interface(name: str, tmp_path: Path) -> None:
    cls = BACKENDS.load(name)
    caps = cls.probe()
    need(caps.available, f"the {name} backend cannot run here: {caps.reason}")
    b = cls.from_context(BackendContext(SensorConfig(watch_paths=[str(tmp_path)])))
    b.start(None)
    try:
        b.start(None)  # a second start changes nothing
        events: list[RawEvent] = []
        _activity(tmp_path)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            batch = b.poll(0.05)
            if events and not batch:
                break
            events += batch
        for ev in events:
            _check_event(ev)
        assert b.stats.events == len(events)
        if caps.evttypes:
            assert {e["evt.type"] for e in events} <= caps.evttypes | {"procexit"}
    finally:
        b.close()
        b.close()  # twice is safe
    st = b.stats.to_dict()
    assert set(st) == set(BackendStatsDict.__annotations__)
    assert st["lost_total"] == sum(st["lost"].values()) and len(st["last_errors"]) <= st["errors"]


@pytest.mark.parametrize("name", BACKENDS.names())
def test_closing_before_starting_is_safe(name: str, tmp_path: Path) -> None:
    b = BACKENDS.load(name).from_context(BackendContext(SensorConfig(watch_paths=[str(tmp_path)])))
    b.close()
    b.close()


def test_every_backend_in_the_package_is_registered() -> None:
    """One registry line is what makes a backend usable: none is left out of it."""
    for mod in pkgutil.walk_packages(stockade.sensor.__path__, "stockade.sensor."):
        importlib.import_module(mod.name)
    registered = {BACKENDS.load(n) for n in BACKENDS.names()}
    found: set[type[Backend]] = set()
    todo = [Backend]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("stockade.sensor."):
                found.add(sub)
    assert found == registered
