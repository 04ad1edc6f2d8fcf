"""Storage fixtures: a real PostgreSQL server for the session, and `db_url` (SQLite and PostgreSQL).

The server is started from the Debian binaries (/usr/lib/postgresql/<version>/bin: initdb + pg_ctl)
in a temporary directory, on a free port on 127.0.0.1 with its unix socket in the same directory,
trust authentication. As root it runs as the `postgres` system user (runuser). Without the binaries
the PostgreSQL tests are skipped with the reason (in CI, CI=true, they fail instead).
"""

from __future__ import annotations

import itertools
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import PG_ROOT, free_port, need, pg_bindir


class PgServer:
    """A throwaway PostgreSQL cluster; `new_database()` gives a fresh database URL."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="stockade-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.as_root = os.geteuid() == 0
        self.port = 0
        self._names = itertools.count(1)
        self._watchdog: subprocess.Popen[bytes] | None = None
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.dir)

    def start(self) -> None:
        r = self._run(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"
        )
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed: {r.stderr or r.stdout}")
        for _attempt in range(5):
            self.port = free_port()
            opts = (
                f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off"
            )
            r = self._run(
                "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60", "start"
            )
            if r.returncode == 0:
                self._start_watchdog()
                return
        log = self.log.read_text() if self.log.exists() else ""
        raise RuntimeError(f"pg_ctl start failed: {r.stderr or r.stdout}\n{log[-2000:]}")

    def _start_watchdog(self) -> None:
        """A detached shell that stops the server if this test process dies without tearing down
        (killed by a timeout, SIGKILL): no PostgreSQL is left behind."""
        pg_ctl = shlex.join(
            (["runuser", "-u", "postgres", "--"] if self.as_root else [])
            + [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]
        )
        script = (
            f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
            f"{pg_ctl} >/dev/null 2>&1; rm -rf {shlex.quote(str(self.dir))}"
        )
        self._watchdog = subprocess.Popen(
            ["sh", "-c", script],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.kill()
            self._watchdog.wait()
            self._watchdog = None
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres") as conn:
            conn.autocommit = True
            conn.execute(sql)

    def new_database(self) -> str:
        name = f"stockade_test_{next(self._names)}"
        self._admin(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A real PostgreSQL server for the test session (skipped without the binaries)."""
    bindir = need(
        pg_bindir(), f"PostgreSQL server binaries not found under {PG_ROOT} (apt-get install postgresql)"
    )
    server = PgServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh, empty PostgreSQL database (dropped afterwards)."""
    name = pg_server.new_database()
    yield pg_server.url(name)
    pg_server.drop_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: SQLite in tmp_path, then the same test on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'stockade.db'}"
    return str(request.getfixturevalue("pg_url"))


T0 = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z


@pytest.fixture
def make_alert() -> Any:
    """Factory: make_alert(rule=..., priority=..., time_ns=..., container=..., **fields) -> Alert."""
    from stockade.model.alert import Alert

    def make(
        rule: str = "Terminal shell in container",
        priority: str = "Notice",
        time_ns: int = T0,
        container: str | None = "3ad7b26ded6d",
        source: str = "syscall",
        output: str | None = None,
        **kw: object,
    ) -> Alert:
        fields: dict[str, object] = {"proc.name": "bash", "user.name": "root"}
        if container is not None:
            fields["container.id"] = container
        return Alert(
            time_ns=time_ns,
            rule=rule,
            priority=priority,
            output=output if output is not None else f"{rule} (user=root container_id={container})",
            output_fields=fields,
            source=source,
            tags=["container", "shell", "mitre_execution"],
            hostname="node-1",
            **kw,  # type: ignore[arg-type]
        )

    return make


@pytest.fixture
def make_event() -> Any:
    """Factory: make_event(time_ns, **falco_fields) -> a syscall Event."""
    from stockade.model.event import Event

    def make(time_ns: int = T0, origin: str | None = "rec.jsonl:1", **fields: object) -> Event:
        data: dict[str, object] = {"evt.time": time_ns, "evt.type": "execve", "proc.name": "bash"}
        data.update({k.replace("__", "."): v for k, v in fields.items()})
        return Event(source="syscall", data=data, origin=origin)

    return make
