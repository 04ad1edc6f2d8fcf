"""The audit log in the store: the hash chain's rows and the signed checkpoints.

:class:`AuditStore` is a repository over a :class:`~stockade.storage.store.Store` (the same database,
locks and error translation as the other repositories). It knows rows, not hashes: what a row's hash
is and what a checkpoint signs is :mod:`stockade.audit.chain`'s business. Two things it does own:

* **Appending never forks the chain.** :meth:`AuditStore.append` reads the head (last ``seq`` and
  its hash) and inserts the rows built on it in one transaction; the primary key on ``seq`` makes a
  second writer that read the same head fail (an integrity error), and it then reads the new head
  and builds again. That holds between threads, processes and databases (SQLite, PostgreSQL).
  Checkpoints are numbered the same way, from one statement that reads the last checkpoint id and
  the head together.
* **Reading never loads the whole log.** :meth:`AuditStore.iter_records` and
  :meth:`AuditStore.iter_checkpoints` go through the tables in key order a page at a time.

The log is never trimmed: :meth:`Store.apply_retention` does not touch these tables.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from stockade.errors import StorageError
from stockade.model.timeutil import format_time_ns
from stockade.storage import tables
from stockade.storage.store import Store

__all__ = ["AuditRow", "AuditStore", "CheckpointRow", "Head"]

#: how often an append retries after another writer took the same seq first
_RETRIES = 200
#: rows per page when walking the log
PAGE = 5000

#: the last record's (seq, hash), or None for an empty log
Head = tuple[int, str] | None


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One record of the audit log as stored (``data``: canonical JSON text)."""

    seq: int
    time_ns: int
    kind: str
    actor: str
    subject: str
    data: str
    prev_hash: str
    hash: str

    def row(self) -> dict[str, Any]:
        """The record as a row of ``audit_log``."""
        return {
            "seq": self.seq,
            "time_ns": self.time_ns,
            "kind": self.kind,
            "actor": self.actor,
            "subject": self.subject,
            "data": self.data,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }

    def to_dict(self) -> dict[str, Any]:
        """The record as the API and ``--output json`` show it (``data`` parsed, ``time`` RFC 3339)."""
        try:
            data: Any = orjson.loads(self.data)
        except orjson.JSONDecodeError:
            data = self.data  # as stored: verification says what is wrong with it
        return {"time": format_time_ns(self.time_ns), **asdict(self), "data": data}


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    """One signed checkpoint as stored: the chain's head at `time_ns`, signed by key `key_id`."""

    id: int
    time_ns: int
    head_seq: int
    head_hash: str
    key_id: str
    signature: str

    def row(self) -> dict[str, Any]:
        """The checkpoint as a row of ``audit_checkpoints``."""
        return asdict(self)

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint as the API shows it (``time`` RFC 3339)."""
        return {"time": format_time_ns(self.time_ns), **asdict(self)}


_LOG = tables.audit_log
#: the head (last seq and its hash), and the insert: built once (an append runs both)
_HEAD = sa.select(_LOG.c.seq, _LOG.c.hash).order_by(_LOG.c.seq.desc()).limit(1)
_INSERT = _LOG.insert()


def _audit_row(r: Any) -> AuditRow:
    return AuditRow(r.seq, r.time_ns, r.kind, r.actor, r.subject, r.data, r.prev_hash, r.hash)


def _checkpoint_row(r: Any) -> CheckpointRow:
    return CheckpointRow(r.id, r.time_ns, r.head_seq, r.head_hash, r.key_id, r.signature)


def _conflict(e: StorageError) -> bool:
    """Whether a failed write lost the race for a key to another writer (then it tries again)."""
    return isinstance(e.__cause__, sa_exc.IntegrityError)


class AuditStore:
    """The audit log's tables in a Store's database (module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        #: appends that lost a race and were built again (for tests and status)
        self.retries = 0

    # -- writing -----------------------------------------------------------------------------------
    def _retrying(self, what: str, write: Callable[[sa.Connection], Any]) -> Any:
        for attempt in range(_RETRIES):
            try:
                with self.store.writing(what) as conn:
                    return write(conn)
            except StorageError as e:
                if not _conflict(e) or attempt == _RETRIES - 1:
                    raise
                self.retries += 1
                time.sleep(random.uniform(0, 0.002 * min(attempt + 1, 10)))
        raise AssertionError("unreachable")  # pragma: no cover

    def append(self, build: Callable[[Head], list[AuditRow]]) -> list[AuditRow]:
        """Insert the rows `build` makes on the current head, in one transaction (module docstring);
        `build` may be called again, on a newer head, when another writer got there first."""

        def write(conn: sa.Connection) -> list[AuditRow]:
            head = conn.execute(_HEAD).first()
            rows = build(None if head is None else (int(head[0]), str(head[1])))
            if rows:
                conn.execute(_INSERT, [r.row() for r in rows])
            return rows

        result: list[AuditRow] = self._retrying("cannot append to the audit log", write)
        return result

    def add_checkpoint(self, build: Callable[[int, Head], CheckpointRow]) -> CheckpointRow:
        """Insert the checkpoint `build` makes from the next checkpoint id and the current head,
        both read by one statement (module docstring)."""
        t, cp = tables.audit_log, tables.audit_checkpoints
        last_id = sa.select(sa.func.max(cp.c.id)).scalar_subquery()
        head_seq = sa.select(sa.func.max(t.c.seq)).scalar_subquery()
        head_hash = sa.select(t.c.hash).where(t.c.seq == head_seq).scalar_subquery()

        def write(conn: sa.Connection) -> CheckpointRow:
            r = conn.execute(sa.select(last_id, head_seq, head_hash)).one()
            head = None if r[1] is None else (int(r[1]), str(r[2]))
            row = build(int(r[0] or 0) + 1, head)
            conn.execute(cp.insert(), [row.row()])
            return row

        result: CheckpointRow = self._retrying("cannot store the audit checkpoint", write)
        return result

    # -- reading -----------------------------------------------------------------------------------
    def head(self) -> Head:
        """The last record's (seq, hash); None for an empty log."""
        with self.store.reading("cannot read the audit log") as conn:
            r = conn.execute(_HEAD).first()
        return None if r is None else (int(r[0]), str(r[1]))

    def count(self) -> int:
        """How many records the log holds."""
        with self.store.reading("cannot read the audit log") as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(tables.audit_log)).scalar_one())

    def last_checkpoint(self) -> CheckpointRow | None:
        """The newest checkpoint (highest id)."""
        cp = tables.audit_checkpoints
        with self.store.reading("cannot read the audit checkpoints") as conn:
            r = conn.execute(sa.select(cp).order_by(cp.c.id.desc()).limit(1)).first()
        return None if r is None else _checkpoint_row(r)

    def iter_records(self, after: int | None = None, *, page: int = PAGE) -> Iterator[AuditRow]:
        """Every record in seq order (those after seq `after`), a page at a time."""
        t = tables.audit_log
        last = after
        while True:
            stmt = sa.select(t).order_by(t.c.seq).limit(page)
            if last is not None:
                stmt = stmt.where(t.c.seq > last)
            with self.store.reading("cannot read the audit log") as conn:
                rows = [_audit_row(r) for r in conn.execute(stmt)]
            yield from rows
            if len(rows) < page:
                return
            last = rows[-1].seq

    def iter_checkpoints(self, *, page: int = PAGE) -> Iterator[CheckpointRow]:
        """Every checkpoint in id order, a page at a time."""
        cp = tables.audit_checkpoints
        last: int | None = None
        while True:
            stmt = sa.select(cp).order_by(cp.c.id).limit(page)
            if last is not None:
                stmt = stmt.where(cp.c.id > last)
            with self.store.reading("cannot read the audit checkpoints") as conn:
                rows = [_checkpoint_row(r) for r in conn.execute(stmt)]
            yield from rows
            if len(rows) < page:
                return
            last = rows[-1].id

    def hashes(self, seqs: Iterable[int]) -> dict[int, str]:
        """The stored hash of each record of `seqs` that exists."""
        t = tables.audit_log
        wanted = sorted(set(seqs))
        out: dict[int, str] = {}
        with self.store.reading("cannot read the audit log") as conn:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                out.update(
                    (int(s), str(h))
                    for s, h in conn.execute(sa.select(t.c.seq, t.c.hash).where(t.c.seq.in_(chunk)))
                )
        return out

    def checkpoints(self, ids: Iterable[int]) -> dict[int, CheckpointRow]:
        """The stored checkpoints of `ids` that exist."""
        cp = tables.audit_checkpoints
        wanted = sorted(set(ids))
        out: dict[int, CheckpointRow] = {}
        with self.store.reading("cannot read the audit checkpoints") as conn:
            for i in range(0, len(wanted), 500):
                rows = conn.execute(sa.select(cp).where(cp.c.id.in_(wanted[i : i + 500])))
                out.update((int(r.id), _checkpoint_row(r)) for r in rows)
        return out

    def recent(
        self,
        *,
        kind: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        limit: int = 100,
    ) -> list[AuditRow]:
        """The newest records (at most `limit`) of a kind and time range, newest first."""
        t = tables.audit_log
        stmt = sa.select(t).order_by(t.c.seq.desc()).limit(max(0, limit))
        if kind is not None:
            stmt = stmt.where(t.c.kind == kind)
        if since_ns is not None:
            stmt = stmt.where(t.c.time_ns >= since_ns)
        if until_ns is not None:
            stmt = stmt.where(t.c.time_ns < until_ns)
        with self.store.reading("cannot read the audit log") as conn:
            return [_audit_row(r) for r in conn.execute(stmt)]
