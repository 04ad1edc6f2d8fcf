"""Store: migrations, SQLite settings, and how database problems are reported."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from stockade.config import load_config
from stockade.errors import StorageError
from stockade.storage import tables
from stockade.storage.store import Store, alembic_config, redact_url

#: the newest migration (every database is migrated to it)
_HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def _revision(url: str) -> str | None:
    eng = sa.create_engine(url)
    try:
        with eng.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        eng.dispose()


def test_migrating_an_empty_database_gives_the_model_schema(db_url: str) -> None:
    Store(db_url).close()
    assert _revision(db_url) == _HEAD
    eng = sa.create_engine(db_url)
    try:
        with eng.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), tables.metadata
            )
            names = set(sa.inspect(conn).get_table_names())
    finally:
        eng.dispose()
    assert diff == []
    assert {"alerts", "events", "mutes", "alembic_version"} <= names


def test_reopening_keeps_the_data(db_url: str, make_alert: Any, make_event: Any) -> None:
    with Store(db_url) as s:
        a = make_alert()
        s.add_alerts([a])
        s.add_events([make_event()])
    with Store(db_url) as s:
        assert s.get_alert(a.id) == a
        assert s.stats()["events"] == 1
    assert _revision(db_url) == _HEAD


def test_newer_schema_is_refused(db_url: str) -> None:
    Store(db_url).close()
    eng = sa.create_engine(db_url)
    with eng.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    eng.dispose()
    with pytest.raises(StorageError, match="database schema is newer than this Stockade"):
        Store(db_url)


def test_sqlite_settings_and_parent_directory(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "stockade.db"
    with Store(f"sqlite:///{path}") as s, s._engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert (conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) > 0
    assert path.is_file()


def test_in_memory_sqlite_works_across_threads(make_alert: Any) -> None:
    with Store("sqlite://") as s:
        s.add_alerts([make_alert()])
        out: list[int] = []
        t = threading.Thread(target=lambda: out.append(s.count_alerts()))
        t.start()
        t.join()
        assert out == [1]


def test_from_config_uses_data_dir_and_retention(tmp_path: Path) -> None:
    cfg = load_config(
        None,
        {"data_dir": str(tmp_path / "data"), "storage": {"max_events": 5, "event_retention_s": 60}},
        environ={},
    )
    with Store.from_config(cfg) as s:
        assert s.max_events == 5 and s.event_retention_s == 60 and s.alert_retention_s == 90 * 86400
    assert (tmp_path / "data" / "stockade.db").is_file()


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("not a url", "cannot open the database"),
        ("nosuchdb://x/y", "cannot open the database"),
        ("postgresql://stockade:s3cret@127.0.0.1:1/stockade", "127.0.0.1"),
    ],
)
def test_bad_or_unreachable_database(url: str, match: str) -> None:
    with pytest.raises(StorageError, match=match) as ei:
        Store(url)
    assert "s3cret" not in str(ei.value)


def test_unreachable_postgres_names_the_url_without_password() -> None:
    with pytest.raises(StorageError) as ei:
        Store("postgresql+psycopg://stockade:s3cret@127.0.0.1:1/stockade")
    msg = str(ei.value)
    assert msg.startswith("postgresql+psycopg://stockade:***@127.0.0.1:1/stockade: ")
    assert "s3cret" not in msg
    assert "connect" in msg.lower() or "refused" in msg.lower()


def test_unwritable_location(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match="cannot open the database"):
        Store(f"sqlite:///{blocker}/sub/stockade.db")


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(StorageError, match=str(path)):
        Store(f"sqlite:///{path}")


def test_locked_database(tmp_path: Path, make_alert: Any) -> None:
    path = tmp_path / "s.db"
    s = Store(f"sqlite:///{path}", busy_timeout_s=0.2)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StorageError, match="locked") as ei:
            s.add_alerts([make_alert()])
        assert str(path) in str(ei.value)
        other.execute("ROLLBACK")
        s.add_alerts([make_alert()])  # works again once the lock is gone
        assert s.count_alerts() == 1
    finally:
        other.close()
        s.close()


def test_disk_full(tmp_path: Path, make_event: Any) -> None:
    path = tmp_path / "full.db"
    s = Store(f"sqlite:///{path}")
    try:
        # SQLite reports SQLITE_FULL ("database or disk is full") when max_page_count is reached
        pages = s.stats()["db_bytes"] // 4096 + 2
        sa.event.listen(s._engine, "connect", lambda c, _r: c.execute(f"PRAGMA max_page_count={pages}"))
        s._engine.dispose()
        big = "x" * 4000
        with pytest.raises(StorageError, match="full"):
            s.add_events([make_event(**{"fd.name": f"{big}{i}"}) for i in range(200)])
    finally:
        s.close()


def test_closed_store(tmp_path: Path) -> None:
    s = Store(f"sqlite:///{tmp_path / 'c.db'}")
    s.close()
    s.close()
    with pytest.raises(StorageError, match="closed"):
        s.count_alerts()


def test_redact_url() -> None:
    assert redact_url("postgresql://u:p@h/d") == "postgresql://u:***@h/d"
    assert redact_url("sqlite:////var/lib/stockade/stockade.db") == "sqlite:////var/lib/stockade/stockade.db"
