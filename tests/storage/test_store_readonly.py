"""Reading commands never create or change a file; the files Stockade creates are private.

`stockade alerts`, `events`, `rules`, `replay` and `status` run as real processes against files in a
temporary directory, which is compared before and after, byte for byte and mode for mode.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from helpers import free_port, in_parallel
from stockade.errors import StorageError
from stockade.storage.store import Store

STOCKADE = str(Path(sys.executable).parent / "stockade")
REPO = Path(__file__).resolve().parents[2]
RECORDING = REPO / "tests" / "data" / "recordings" / "shell_in_container.jsonl"


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`stockade ARGS` in `cwd`, which is also its home (a file written there is seen)."""
    env = {**os.environ, "STOCKADE_CONFIG": "", "HOME": str(cwd)}
    env = {k: v for k, v in env.items() if not k.startswith(("STOCKADE_", "XDG_")) or k == "STOCKADE_CONFIG"}
    return subprocess.run(
        [STOCKADE, *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd, check=False
    )


def run_all(cwd: Path, commands: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    """`run` of each command, at once (commands that read only: none sees another's work)."""
    return in_parallel([partial(run, cwd, *args) for args in commands])


def snapshot(root: Path) -> dict[str, tuple[int, int, int, bytes]]:
    """Every file and directory under root: (mode, size, mtime_ns, content of files)."""
    out: dict[str, tuple[int, int, int, bytes]] = {}
    for p in [root, *sorted(root.rglob("*"))]:
        st = p.lstat()
        body = p.read_bytes() if p.is_file() else b""
        out[str(p.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns, body)
    return out


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory with a config whose data_dir is inside it, and a rules file."""
    (tmp_path / "stockade.yaml").write_text(
        f"data_dir: {tmp_path / 'data'}\nengine:\n  falco_rules_paths: []\n"
    )
    (tmp_path / "rules.yaml").write_text(
        "- rule: Shell\n  desc: d\n  condition: evt.type = execve and proc.name = bash\n"
        "  output: shell (user=%user.name)\n  priority: WARNING\n"
    )
    return tmp_path


def read_only_commands(port: int) -> list[list[str]]:
    return [
        ["-c", "stockade.yaml", "alerts", "list"],
        ["-c", "stockade.yaml", "alerts", "show", "0123456789"],
        ["-c", "stockade.yaml", "events", "list"],
        ["-c", "stockade.yaml", "events", "show", "0123456789"],
        ["-c", "stockade.yaml", "rules", "list", "-r", "rules.yaml"],
        ["-c", "stockade.yaml", "rules", "lint", "rules.yaml"],
        ["-c", "stockade.yaml", "rules", "fields"],
        # replay's compiled-rules cache (~/.cache/stockade/rules) is the one file it may write: not here
        ["-c", "stockade.yaml", "replay", "--no-cache", "-r", "rules.yaml", str(RECORDING)],
        ["-c", "stockade.yaml", "status", "--port", str(port)],
    ]


def test_read_only_commands_without_a_database_create_nothing(workdir: Path) -> None:
    """The commands run at once (none writes, so none sees another's file): any file one of them
    made or changed is a difference, whichever made it."""
    before = snapshot(workdir)
    commands = read_only_commands(free_port())
    for args, r in zip(commands, run_all(workdir, commands), strict=True):
        assert "Traceback" not in r.stderr, (args, r.stderr)
        if args[2] in ("alerts", "events"):
            assert r.returncode == 1, (args, r.stderr)
            assert r.stderr.strip() == (
                f"stockade: error: no database at {workdir / 'data' / 'stockade.db'}: nothing has been "
                "stored there yet (give --db URL or --data-dir DIR)"
            )
    assert snapshot(workdir) == before, commands


def test_replay_writes_nothing_but_its_rules_cache(workdir: Path) -> None:
    before = snapshot(workdir)
    r = run(workdir, "-c", "stockade.yaml", "replay", "-r", "rules.yaml", str(RECORDING))
    assert r.returncode == 0, r.stderr
    after = snapshot(workdir)
    new = {k for k in after if k not in before}
    changed = {k for k in before if k in after and after[k] != before[k] and k != "."}
    assert changed == set()
    cache = {".cache", ".cache/stockade", ".cache/stockade/rules"}
    assert cache <= new and all(k in cache or k.startswith(".cache/stockade/rules/") for k in new), new
    for k in new - {".cache", ".cache/stockade"}:  # ~/.cache is the user's
        mode = stat.S_IMODE(after[k][0])
        assert mode in (0o700, 0o600), (k, oct(mode))


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "it is empty"),
        (b"hello, not a database\n" * 10, "not an SQLite file"),
        (None, "it has no Stockade schema; tables: notes"),
    ],
)
def test_a_file_that_is_not_a_stockade_database_is_left_alone(
    workdir: Path, content: bytes | None, why: str
) -> None:
    db = workdir / "some.db"
    if content is None:
        with sqlite3.connect(db) as c:
            c.execute("CREATE TABLE notes (x)")
        sqlite3.connect(db).close()
    else:
        db.write_bytes(content)
    before = snapshot(workdir)
    commands = [
        [*cmd, "--db", f"sqlite:///{db}"]
        for cmd in (["alerts", "list"], ["events", "list"], ["alerts", "show", "0123456789"])
    ]
    for args, r in zip(commands, run_all(workdir, commands), strict=True):
        assert r.returncode == 1, (args, r.stderr)
        assert r.stderr.strip() == f"stockade: error: {db} is not a Stockade database ({why})", args
    assert snapshot(workdir) == before, commands


def test_reading_a_database_nothing_has_open_changes_no_file(
    workdir: Path, make_alert: Any, make_event: Any
) -> None:
    """SQLite would create (and leave) -wal and -shm files next to a WAL database opened read-only."""
    url = f"sqlite:///{workdir / 'data' / 'stockade.db'}"
    alert = make_alert(rule="Terminal shell in container")
    with Store(url) as s:
        s.add_alerts([alert])
        s.add_events([make_event(**{"evt.type": "execve", "proc.name": "bash"})])
    assert not (workdir / "data" / "stockade.db-wal").exists()
    before = snapshot(workdir)
    listed, shown, events = run_all(
        workdir,
        [
            ["-c", "stockade.yaml", "alerts", "list"],
            ["alerts", "show", alert.id, "--data-dir", "data"],
            ["events", "list", "--db", url],
        ],
    )
    assert listed.returncode == 0 and "Terminal shell in container" in listed.stdout, listed.stderr
    assert shown.returncode == 0 and alert.id in shown.stdout, shown.stderr
    assert events.returncode == 0 and "bash" in events.stdout, events.stderr
    assert snapshot(workdir) == before


def test_reading_while_a_writer_has_the_database_open_sees_its_writes(workdir: Path, make_alert: Any) -> None:
    url = f"sqlite:///{workdir / 'data' / 'stockade.db'}"
    with Store(url) as writer:
        writer.add_alerts([make_alert(rule="First")])  # in the WAL, not yet checkpointed
        r = run(workdir, "alerts", "list", "--db", url)
        assert r.returncode == 0 and "First" in r.stdout, r.stderr
        writer.add_alerts([make_alert(rule="Second")])
        r = run(workdir, "alerts", "list", "--db", url)
        assert r.returncode == 0 and "Second" in r.stdout and "First" in r.stdout, r.stderr


def test_a_read_only_store_refuses_writes_and_runs_no_migration(tmp_path: Path, make_alert: Any) -> None:
    db = tmp_path / "stockade.db"
    Store(f"sqlite:///{db}").close()
    with (
        Store(f"sqlite:///{db}", read_only=True) as s,
        pytest.raises(StorageError, match="cannot store alerts: attempt to write a readonly database"),
    ):
        s.add_alerts([make_alert()])
    eng = sa.create_engine(f"sqlite:///{db}")
    with eng.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0000_older'"))
    eng.dispose()
    with pytest.raises(StorageError, match="schema revision '0000_older' is not this Stockade's"):
        Store(f"sqlite:///{db}", read_only=True)
    eng = sa.create_engine(f"sqlite:///{db}")
    with eng.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0000_older"
    eng.dispose()
    with pytest.raises(StorageError, match=r"^no database at .*missing\.db: nothing has been stored"):
        Store(f"sqlite:///{tmp_path / 'missing.db'}", read_only=True)
    assert not (tmp_path / "missing.db").exists()


@pytest.mark.postgres
def test_a_read_only_store_on_postgresql_runs_no_migration(pg_url: str, make_alert: Any) -> None:
    with pytest.raises(StorageError, match=r"is not a Stockade database \(it is empty\)"):
        Store(pg_url, read_only=True)
    eng = sa.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with eng.connect() as conn:
        assert sa.inspect(conn).get_table_names() == []
    eng.dispose()
    a = make_alert()
    with Store(pg_url) as s:
        s.add_alerts([a])
    with Store(pg_url, read_only=True) as s:
        assert s.get_alert(a.id) == a
        with pytest.raises(StorageError, match="read-only transaction"):
            s.add_alerts([make_alert()])


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.usefixtures("umask_022")
def test_the_database_and_its_directories_are_private(tmp_path: Path, make_alert: Any) -> None:
    (tmp_path / "existing").mkdir(mode=0o755)
    path = tmp_path / "existing" / "new" / "deeper" / "stockade.db"
    with Store(f"sqlite:///{path}") as s:
        s.add_alerts([make_alert()])
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "existing").stat().st_mode) == 0o755  # not ours: untouched
    os.umask(0)  # a permissive umask does not widen them
    other = tmp_path / "other" / "stockade.db"
    Store(f"sqlite:///{other}").close()
    assert stat.S_IMODE(other.stat().st_mode) == 0o600
    assert stat.S_IMODE(other.parent.stat().st_mode) == 0o700
