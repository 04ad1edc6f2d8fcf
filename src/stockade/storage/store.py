"""The Store: alerts and a bounded event log in SQL (SQLite in WAL mode by default, PostgreSQL by URL).

One writer (the pipeline) and any number of readers (the API thread) may share a Store. Every
database problem (bad URL, unreachable server, locked database, full disk, schema from a newer
Stockade) becomes a :class:`~stockade.errors.StorageError` naming the URL (password hidden) and
the cause.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson
import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from stockade.errors import NotFoundError, StorageError, UsageError
from stockade.model import timeutil
from stockade.model.alert import Alert, priority_rank
from stockade.model.event import Event
from stockade.model.mute import Mute
from stockade.storage import tables
from stockade.storage.files import create_private_file, make_private_dirs
from stockade.storage.filters import AlertFilter, span_conditions
from stockade.storage.tables import EVENT_INDEXED_FIELDS, INDEXED_LEN

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

    from stockade.config import StockadeConfig

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: shortest id prefix get_alert / get_event accept
MIN_ID_PREFIX = 6


def _sqlite_is_wal(path: Path) -> bool:
    """Whether the SQLite header says WAL mode (file format versions at offsets 18 and 19 are 2)."""
    try:
        with open(path, "rb") as f:
            head = f.read(20)
    except OSError:
        return False
    return len(head) == 20 and head[18] == 2 and head[19] == 2


def redact_url(url: str | URL) -> str:
    """The URL with its password replaced by ***."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def normalize_url(url: str) -> URL:
    """Parse a database URL; plain ``postgresql://`` / ``postgres://`` use psycopg 3."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u


def _cause(e: BaseException) -> str:
    orig = getattr(e, "orig", None)
    msg = str(orig if orig is not None else e).strip() or type(e).__name__
    return msg.splitlines()[0]


def _json_dumps(obj: Any) -> str:
    return orjson.dumps(obj, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _jsonb_dumps(obj: Any) -> str:
    """JSON for PostgreSQL's jsonb, which refuses NUL characters in strings (they become U+FFFD)."""
    s = _json_dumps(obj)
    return s.replace("\\u0000", "\\ufffd") if "\\u0000" in s else s


def _text(v: Any) -> str | None:
    """A value for an indexed text column: str, no NUL, at most INDEXED_LEN characters."""
    if v is None or isinstance(v, (dict, list)):
        return None
    s = v if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)
    return s.replace("\x00", "")[:INDEXED_LEN]


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    """Alembic's configuration for Stockade's migrations (no alembic.ini needed)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _event_field(data: dict[str, Any], name: str) -> Any:
    """The value of a Falco field in an event's data (derived fields included), or None."""
    from stockade.model import fields

    if name in data:
        return data[name]
    spec = fields.lookup(name)
    if spec is None:
        return None
    try:
        return spec.extractor(None)(data)
    except Exception:
        return None


def _mute(r: Any) -> Mute:
    return Mute(
        id=r.id,
        rule=r.rule,
        workload=r.workload,
        reason=r.reason,
        created_ns=r.created_ns,
        expires_ns=r.expires_ns,
        created_by=r.created_by,
    )


class Store:
    """Alerts and a bounded event log in a SQL database (see module docs)."""

    def __init__(
        self,
        url: str,
        *,
        max_events: int = 1_000_000,
        event_retention_s: float | None = None,
        alert_retention_s: float | None = None,
        busy_timeout_s: float = 10.0,
        read_only: bool = False,
    ) -> None:
        self.url_display = redact_url(url)
        self.read_only = read_only
        self.max_events = max_events
        self.event_retention_s = event_retention_s
        self.alert_retention_s = alert_retention_s
        self._write_lock = threading.RLock()
        self._inserted_since_trim = 0
        self._closed = False
        with self._errors("cannot open the database"):
            self.url = normalize_url(url)
            self._engine = self._create_engine(self.url, busy_timeout_s)
        self.dialect = self._engine.dialect.name
        # An in-memory SQLite database lives in one connection shared by all threads: serialise.
        self._read_lock: contextlib.AbstractContextManager[Any] = (
            self._write_lock if self._memory else contextlib.nullcontext()
        )
        try:
            if read_only:
                self._check_schema()
            else:
                self._migrate()
        except BaseException:
            self._engine.dispose()
            raise

    # -- opening ---------------------------------------------------------------------------------

    @classmethod
    def from_config(cls, cfg: StockadeConfig) -> Store:
        """The store the configuration names (storage.url, else SQLite in data_dir), with its retention."""
        s = cfg.storage
        return cls(
            cfg.db_url(),
            max_events=s.max_events,
            event_retention_s=s.event_retention_s,
            alert_retention_s=s.alert_retention_s,
        )

    def _create_engine(self, url: URL, busy_timeout_s: float) -> Engine:
        kw: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
        self._memory = False
        if url.get_backend_name() == "sqlite":
            db = url.database or ""
            self._memory = db in ("", ":memory:") or "mode=memory" in str(url.query.get("mode", ""))
            connect_args: dict[str, Any] = {"timeout": busy_timeout_s, "check_same_thread": False}
            if self._memory:
                kw["poolclass"] = StaticPool
            elif self.read_only:
                uri = self._read_only_uri(url)
                kw["creator"] = lambda: sqlite3.connect(uri, uri=True, **connect_args)
            elif not db.startswith("file:"):
                path = Path(db).expanduser()
                make_private_dirs(path.parent)
                create_private_file(path)  # SQLite would create it 0644; -wal and -shm take its mode
            engine = sa.create_engine(url, connect_args=connect_args, **kw)
            busy_ms = int(busy_timeout_s * 1000)

            @sa_event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                try:
                    cur.execute(f"PRAGMA busy_timeout={busy_ms}")
                    if not self._memory and not self.read_only:
                        cur.execute("PRAGMA journal_mode=WAL")
                    cur.execute("PRAGMA synchronous=NORMAL")
                    cur.execute("PRAGMA foreign_keys=ON")
                finally:
                    cur.close()

            return engine
        if url.get_backend_name() == "postgresql":
            kw["json_serializer"] = _jsonb_dumps
            kw["pool_pre_ping"] = True
            if url.get_driver_name() == "psycopg":
                kw["connect_args"] = {"connect_timeout": max(1, int(busy_timeout_s))}
                if self.read_only:
                    kw["connect_args"]["options"] = "-c default_transaction_read_only=on"
        return sa.create_engine(url, **kw)

    def _read_only_uri(self, url: URL) -> str:
        """The SQLite URI that opens the database file read-only and creates nothing.

        SQLite opens a WAL database read-only by creating its -wal and -shm files when they are
        missing, and leaves them behind. They are missing only when no connection has the database
        open (the last one to close removes them): nothing is writing it, so it is opened
        ``immutable`` (no locks, no -shm). Otherwise the writer's files are shared (``mode=ro``).
        """
        db = url.database or ""
        if db.startswith("file:"):
            sep = "&" if "?" in db else "?"
            return db if "mode=" in db else f"{db}{sep}mode=ro"
        path = Path(db).expanduser().resolve()
        if not path.is_file():
            raise StorageError(f"no database at {path}: nothing has been stored there yet")
        uri = f"file:{quote(str(path))}?mode=ro"
        if _sqlite_is_wal(path) and not Path(f"{path}-wal").exists():
            uri += "&immutable=1"
        return uri

    def _check_schema(self) -> None:
        """For a read-only store: the database must hold this Stockade's schema (nothing is migrated)."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        where = self.url_display
        if self.dialect == "sqlite" and self.url.database and not self._memory:
            where = self.url.database
        what = "cannot connect to the database"
        try:
            with self._engine.connect() as conn:
                what = "cannot read the database"
                current = MigrationContext.configure(conn).get_current_revision()
                tables_found = [] if current else sa.inspect(conn).get_table_names()
        except (sa_exc.SQLAlchemyError, OSError) as e:
            if "file is not a database" in _cause(e):
                raise StorageError(f"{where} is not a Stockade database (not an SQLite file)") from e
            raise StorageError(f"{self.url_display}: {what}: {_cause(e)}") from e
        if current == head:
            return
        if current is None:
            why = (
                "it is empty"
                if not tables_found
                else f"it has no Stockade schema; tables: {', '.join(tables_found[:5])}"
            )
            raise StorageError(f"{where} is not a Stockade database ({why})")
        raise StorageError(
            f"{self.url_display}: database schema revision {current!r} is not this Stockade's ({head!r}); "
            "`stockade up` or `stockade server` upgrades an older one when it opens it, "
            "a newer one needs a newer Stockade"
        )

    def _migrate(self) -> None:
        from alembic import command
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        with self._errors("cannot connect to the database"), self._engine.connect():
            pass
        with self._errors("cannot migrate the database schema"), self._write_lock:
            cfg = alembic_config()
            script = ScriptDirectory.from_config(cfg)
            head = script.get_current_head()
            with self._engine.begin() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
                if current == head:
                    return
                if current is not None and current not in {r.revision for r in script.walk_revisions()}:
                    raise StorageError(
                        f"{self.url_display}: database schema is newer than this Stockade "
                        f"(revision {current!r}, this Stockade knows up to {head!r}); upgrade Stockade"
                    )
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except StorageError:
            raise
        except UsageError:
            raise
        except NotFoundError:
            raise
        except (sa_exc.SQLAlchemyError, OSError, ValueError, ImportError, OverflowError) as e:
            raise StorageError(f"{self.url_display}: {what}: {_cause(e)}") from e
        except Exception as e:
            # alembic's CommandError and friends
            if type(e).__module__.startswith(("alembic", "psycopg", "sqlite3")):
                raise StorageError(f"{self.url_display}: {what}: {_cause(e)}") from e
            raise

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"{self.url_display}: the store is closed")

    # -- writing ---------------------------------------------------------------------------------

    def _upsert(self, table: sa.Table, key: str, update: bool) -> Any:
        return self.upsert(table, (key,), update=update)

    def upsert(self, table: sa.Table, keys: tuple[str, ...], *, update: bool | tuple[str, ...] = True) -> Any:
        """An INSERT of `table` rows that, for a row whose `keys` are taken, updates the other
        columns (`update` True), only the columns named (a tuple), or nothing (False)."""
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            stmt: Any = sqlite_insert(table)
        elif self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            stmt = pg_insert(table)
        else:  # pragma: no cover - other backends: plain insert
            return table.insert()
        index = [table.c[k] for k in keys]
        if update:
            names = (
                update if isinstance(update, tuple) else [c.name for c in table.columns if c.name not in keys]
            )
            return stmt.on_conflict_do_update(index_elements=index, set_={n: stmt.excluded[n] for n in names})
        return stmt.on_conflict_do_nothing(index_elements=index)

    @contextlib.contextmanager
    def reading(self, what: str) -> Iterator[Connection]:
        """A connection to read with (repositories over this store use it): a database problem
        becomes a StorageError saying ``<url>: <what>: <cause>``."""
        self._check_open()
        with self._errors(what), self._read_lock, self._engine.connect() as conn:
            yield conn

    @contextlib.contextmanager
    def writing(self, what: str) -> Iterator[Connection]:
        """A transaction to write in, committed at the end (rolled back on an error, which
        becomes a StorageError as in :meth:`reading`); writers take turns."""
        self._check_open()
        with self._errors(what), self._write_lock, self._engine.begin() as conn:
            yield conn

    def add_alerts(self, alerts: list[Alert]) -> None:
        """Store alerts in one transaction; an alert with an id already stored replaces it."""
        if not alerts:
            return
        rows = []
        for a in alerts:
            body = a.to_falco_json()
            of = a.output_fields or {}
            rows.append(
                {
                    "id": a.id,
                    "time_ns": a.time_ns,
                    "rule": _text(a.rule) or "",
                    "priority": a.priority,
                    "priority_rank": priority_rank(a.priority),
                    "source": _text(a.source) or "",
                    "hostname": _text(a.hostname) or "",
                    "container_id": _text(of.get("container.id")),
                    "workload": _text(a.workload),
                    "output": (a.output or "").replace("\x00", ""),
                    "body": body,
                }
            )
        self._check_open()
        with self._errors("cannot store alerts"), self._write_lock, self._engine.begin() as conn:
            conn.execute(self._upsert(tables.alerts, "id", update=True), rows)

    def add_events(self, events: list[Event]) -> None:
        """Store events in one transaction, assigning ``event.id`` where it is None.

        The log is kept near ``max_events``: once a tenth of it has been added, the oldest events
        beyond the bound are deleted (``apply_retention`` does the time-based part).
        """
        if not events:
            return
        rows = []
        now = timeutil.now_ns()
        for ev in events:
            if ev.id is None:
                ev.id = uuid.uuid4().hex
            t = ev.time_ns
            row: dict[str, Any] = {
                "id": ev.id,
                "time_ns": t if isinstance(t, int) else now,
                "source": ev.source,
                "origin": ev.origin,
                "data": ev.data,
                "meta": ev.meta or None,
            }
            for name, col in EVENT_INDEXED_FIELDS.items():
                row[col] = _text(_event_field(ev.data, name))
            rows.append(row)
        self._check_open()
        with self._errors("cannot store events"), self._write_lock:
            with self._engine.begin() as conn:
                conn.execute(self._upsert(tables.events, "id", update=False), rows)
            self._inserted_since_trim += len(rows)
            if self._inserted_since_trim >= max(1, self.max_events // 10):
                self._trim_events()

    # -- retention -------------------------------------------------------------------------------

    def _trim_events(self) -> int:
        """Delete the oldest events beyond max_events; returns how many."""
        ev = tables.events
        self._inserted_since_trim = 0
        with self._engine.begin() as conn:
            cut = conn.execute(
                sa.select(ev.c.time_ns, ev.c.seq)
                .order_by(ev.c.time_ns.desc(), ev.c.seq.desc())
                .offset(max(0, self.max_events))
                .limit(1)
            ).first()
            if cut is None:
                return 0
            t, seq = cut
            res = conn.execute(
                ev.delete().where(sa.or_(ev.c.time_ns < t, sa.and_(ev.c.time_ns == t, ev.c.seq <= seq)))
            )
            return int(res.rowcount or 0)

    def apply_retention(self, now_ns: int | None = None) -> dict[str, int]:
        """Delete events older than event_retention_s or beyond max_events (oldest first), and alerts
        older than alert_retention_s. Returns ``{"events": n, "alerts": m}`` (rows deleted)."""
        now = now_ns if now_ns is not None else timeutil.now_ns()
        out = {"events": 0, "alerts": 0}
        self._check_open()
        with self._errors("cannot apply retention"), self._write_lock:
            with self._engine.begin() as conn:
                if self.event_retention_s is not None:
                    cutoff = now - int(self.event_retention_s * 1e9)
                    res = conn.execute(tables.events.delete().where(tables.events.c.time_ns < cutoff))
                    out["events"] += int(res.rowcount or 0)
                if self.alert_retention_s is not None:
                    cutoff = now - int(self.alert_retention_s * 1e9)
                    res = conn.execute(tables.alerts.delete().where(tables.alerts.c.time_ns < cutoff))
                    out["alerts"] += int(res.rowcount or 0)
            out["events"] += self._trim_events()
        return out

    # -- reading alerts --------------------------------------------------------------------------

    def list_alerts(
        self,
        alert_filter: AlertFilter | None = None,
        /,
        *,
        limit: int = 100,
        offset: int = 0,
        **filters: Any,
    ) -> list[Alert]:
        """Alerts matching `alert_filter`, newest first.

        The filter's fields may be given as keywords instead (``list_alerts(rule="...")``), or to
        change some of a given filter's; see :class:`~stockade.storage.filters.AlertFilter`.
        """
        conds = replace(alert_filter or AlertFilter(), **filters).conditions()
        a = tables.alerts
        stmt = (
            sa.select(a.c.body)
            .where(*conds)
            .order_by(a.c.time_ns.desc(), a.c.id.desc())
            .limit(max(0, limit))
            .offset(max(0, offset))
        )
        self._check_open()
        with self._errors("cannot read alerts"), self._read_lock, self._engine.connect() as conn:
            return [Alert.from_falco_json(body) for (body,) in conn.execute(stmt)]

    def count_alerts(self, alert_filter: AlertFilter | None = None, /, **filters: Any) -> int:
        """How many alerts match (the filter as in :meth:`list_alerts`)."""
        conds = replace(alert_filter or AlertFilter(), **filters).conditions()
        stmt = sa.select(sa.func.count()).select_from(tables.alerts).where(*conds)
        self._check_open()
        with self._errors("cannot count alerts"), self._read_lock, self._engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def _by_id(self, table: sa.Table, column: str, kind: str, ident: str) -> Any:
        """The value of `column` in the row whose id is `ident` or starts with it (>= 6 chars)."""
        ident = ident.strip()
        self._check_open()
        with self._errors(f"cannot read {kind}s"), self._read_lock, self._engine.connect() as conn:
            row = conn.execute(sa.select(table.c[column]).where(table.c.id == ident)).first()
            if row is not None:
                return row[0]
            if len(ident) >= MIN_ID_PREFIX:
                rows = conn.execute(
                    sa.select(table.c.id, table.c[column])
                    .where(table.c.id.startswith(ident, autoescape=True))
                    .limit(2)
                ).all()
                if len(rows) == 1:
                    return rows[0][1]
                if len(rows) > 1:
                    raise NotFoundError(f"{kind} id prefix {ident!r} is ambiguous; give more characters")
        hint = (
            ""
            if len(ident) >= MIN_ID_PREFIX
            else f" (an id prefix needs at least {MIN_ID_PREFIX} characters)"
        )
        raise NotFoundError(f"no {kind} with id {ident!r}{hint}")

    def get_alert(self, alert_id: str) -> Alert:
        """The alert with this id (or unique id prefix of at least 6 characters), as stored."""
        body = self._by_id(tables.alerts, "body", "alert", alert_id)
        return Alert.from_falco_json(body)

    # -- reading events --------------------------------------------------------------------------

    def _where_condition(self, name: str, value: str) -> Any:
        ev = tables.events
        col = EVENT_INDEXED_FIELDS.get(name)
        if col is not None:
            return ev.c[col] == value.replace("\x00", "")[:INDEXED_LEN]
        if not name or '"' in name or "\\" in name:
            raise UsageError(f"cannot query events on field {name!r}")
        # A flat key ("proc.aname[2]" in a syscall event) or a path in a nested object
        # ("objectRef.name" in a Kubernetes audit event).
        parts = name.split(".")
        if self.dialect == "postgresql":
            flat = ev.c.data.op("->>")(sa.literal(name, sa.Text))
            nested = ev.c.data.op("#>>")(sa.literal(parts, sa.ARRAY(sa.Text)))
            return sa.or_(flat == value, nested == value)
        flat_path = f'$."{name}"'
        nested_path = "$" + "".join(f'."{p}"' for p in parts)
        return sa.or_(*(self._sqlite_json_eq(p, value) for p in dict.fromkeys([flat_path, nested_path])))

    @staticmethod
    def _sqlite_json_eq(path: str, value: str) -> Any:
        """json value at `path` equals `value`, compared as PostgreSQL's ->> text would be."""
        data = tables.events.c.data
        extract = sa.func.json_extract(data, path)
        jtype = sa.func.json_type(data, path)
        if value in ("true", "false"):
            return jtype == value
        alts = [sa.and_(jtype == "text", extract == value)]
        try:
            num: int | float = int(value)
            alts.append(sa.and_(jtype == "integer", extract == num))
        except ValueError:
            try:
                num = float(value)
                alts.append(sa.and_(jtype.in_(["integer", "real"]), extract == num))
            except ValueError:
                pass
        return sa.or_(*alts)

    def query_events(
        self,
        *,
        since_ns: int | None = None,
        until_ns: int | None = None,
        source: str | None = None,
        where: dict[str, str] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Event]:
        """Events matching every filter, newest first. ``where`` maps field names to values (exact
        match): indexed fields (``evt.type``, ``proc.name``, ``container.id``, ``k8s.ns.name``,
        ``ka.verb``, ...) use their column, any other name a key of the event's JSON (a flat key,
        or a dotted path in a nested Kubernetes audit object)."""
        ev = tables.events
        conds = span_conditions(ev, since_ns, until_ns, source)
        conds.extend(self._where_condition(k, str(v)) for k, v in (where or {}).items())
        stmt = (
            sa.select(ev.c.id, ev.c.source, ev.c.origin, ev.c.data, ev.c.meta)
            .where(*conds)
            .order_by(ev.c.time_ns.desc(), ev.c.seq.desc())
            .limit(max(0, limit))
            .offset(max(0, offset))
        )
        self._check_open()
        with self._errors("cannot read events"), self._read_lock, self._engine.connect() as conn:
            return [
                Event(source=s, data=d, origin=o, id=i, meta=m or {}) for i, s, o, d, m in conn.execute(stmt)
            ]

    def get_event(self, event_id: str) -> Event:
        """The event with this id (or unique id prefix of at least 6 characters)."""
        ev = tables.events
        ident = self._by_id(ev, "id", "event", event_id)
        self._check_open()
        with self._errors("cannot read events"), self._read_lock, self._engine.connect() as conn:
            row = conn.execute(
                sa.select(ev.c.id, ev.c.source, ev.c.origin, ev.c.data, ev.c.meta).where(ev.c.id == ident)
            ).first()
        if row is None:
            raise NotFoundError(f"no event with id {event_id!r}")
        i, s, o, d, m = row
        return Event(source=s, data=d, origin=o, id=i, meta=m or {})

    # -- mutes -----------------------------------------------------------------------------------

    def add_mute(self, mute: Mute) -> None:
        """Store a mute (one with the same id is replaced)."""
        row = {
            "id": mute.id,
            "rule": mute.rule,
            "workload": mute.workload,
            "reason": mute.reason,
            "created_ns": mute.created_ns,
            "expires_ns": mute.expires_ns,
            "created_by": mute.created_by,
        }
        self._check_open()
        with self._errors("cannot store the mute"), self._write_lock, self._engine.begin() as conn:
            conn.execute(self._upsert(tables.mutes, "id", update=True), [row])

    def list_mutes(self, active_at_ns: int | None = None) -> list[Mute]:
        """Mutes, soonest to expire first; with `active_at_ns` only those not expired by then."""
        m = tables.mutes
        stmt = sa.select(m).order_by(m.c.expires_ns, m.c.id)
        if active_at_ns is not None:
            stmt = stmt.where(m.c.expires_ns > active_at_ns)
        self._check_open()
        with self._errors("cannot read mutes"), self._read_lock, self._engine.connect() as conn:
            return [_mute(r) for r in conn.execute(stmt)]

    def delete_mute(self, mute_id: str) -> Mute:
        """Delete the mute with this id (or unique prefix of 6+ characters); the mute deleted."""
        m = tables.mutes
        ident = self._by_id(m, "id", "mute", mute_id)
        with self._errors("cannot delete the mute"), self._write_lock, self._engine.begin() as conn:
            row = conn.execute(sa.select(m).where(m.c.id == ident)).first()
            conn.execute(m.delete().where(m.c.id == ident))
        if row is None:
            raise NotFoundError(f"no mute with id {mute_id!r}")
        return _mute(row)

    # -- misc ------------------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Row counts (``alerts``, ``events``) and the database size in bytes (``db_bytes``)."""
        self._check_open()
        with self._errors("cannot read statistics"), self._read_lock, self._engine.connect() as conn:
            out = {
                "alerts": int(
                    conn.execute(sa.select(sa.func.count()).select_from(tables.alerts)).scalar_one()
                ),
                "events": int(
                    conn.execute(sa.select(sa.func.count()).select_from(tables.events)).scalar_one()
                ),
            }
            if self.dialect == "sqlite":
                pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
                size = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
                out["db_bytes"] = int(pages) * int(size)
            elif self.dialect == "postgresql":
                out["db_bytes"] = int(
                    conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()
                )
        return out

    def close(self) -> None:
        """Release the connections (idempotent)."""
        if self._closed:
            return
        with self._write_lock:
            self._closed = True
            self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url_display!r})"
