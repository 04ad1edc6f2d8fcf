"""The audit log: a hash chain of records in the store, with signed checkpoints.

Every record holds the hash of the one before it (``prev``; the first one 64 zeros), and its own
``hash`` is the SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of
``{seq, time_ns, kind, actor, subject, data, prev}``; ``data`` is stored as that canonical JSON text
and hashed as stored. Changing, inserting or deleting a record breaks the chain where it happened.
Someone who can write the database can also recompute every later hash: the **checkpoints** stop
that. A checkpoint is the chain's head (``head_seq``, ``head_hash``) at a time, signed with the
node's Ed25519 key (:mod:`stockade.audit.keys`); a rewritten chain no longer matches the heads the
node signed, and a checkpoint cannot be forged without the key. Each checkpoint is also appended to
``DATA_DIR/audit/checkpoints.jsonl`` and logged, so that deleting the newest records and their
checkpoints from the database is still seen (:mod:`stockade.audit.verify`).

:class:`AuditLog` appends (thread-safe; processes sharing a database never fork the chain:
:class:`~stockade.storage.audit.AuditStore`), signs a checkpoint every ``checkpoint_every`` records,
every ``checkpoint_interval_s`` seconds when records were added (:meth:`AuditLog.tick`, from the
runtime's housekeeping) and at a clean shutdown (:meth:`AuditLog.close`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from stockade.audit.keys import NodeKey
from stockade.errors import StockadeError, UsageError
from stockade.storage.audit import AuditRow, AuditStore, CheckpointRow, Head
from stockade.storage.store import Store
from stockade.storage.tables import INDEXED_LEN

__all__ = [
    "CHECKPOINT_FILE",
    "GENESIS",
    "AuditEntry",
    "AuditLog",
    "AuditRecord",
    "Checkpoint",
    "canonical_json",
    "checkpoint_payload",
    "record_hash",
]

log = logging.getLogger("stockade.audit")

#: the ``prev`` of the first record
GENESIS = "0" * 64
#: where each checkpoint is also written, under the data directory (one JSON object per line)
CHECKPOINT_FILE = Path("audit") / "checkpoints.jsonl"
#: the longest kind name (its column's width)
MAX_KIND = 32

#: a record of the log as stored
AuditRecord = AuditRow
#: a signed checkpoint as stored
Checkpoint = CheckpointRow


class AuditEntry(NamedTuple):
    """One record to append: what happened (`kind`), to what (`subject`), the details, by whom."""

    kind: str
    subject: str
    data: Mapping[str, Any]
    actor: str = "stockade"


def canonical_json(obj: Any) -> str:
    """`obj` as canonical JSON: keys sorted, no whitespace, UTF-8 (non-JSON values as strings)."""
    return orjson.dumps(obj, default=str, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()


def record_hash(seq: int, time_ns: int, kind: str, actor: str, subject: str, data: str, prev: str) -> str:
    """A record's hash: SHA-256 (hex) of the canonical JSON of its fields and `prev`; `data` is
    the stored canonical JSON text, embedded as it is."""
    envelope = {
        "actor": actor,
        "data": orjson.Fragment(data),
        "kind": kind,
        "prev": prev,
        "seq": seq,
        "subject": subject,
        "time_ns": time_ns,
    }
    return hashlib.sha256(orjson.dumps(envelope, option=orjson.OPT_SORT_KEYS)).hexdigest()


def row_hash(r: AuditRow, seq: int | None = None) -> str:
    """The hash `r` should have (at `seq` instead of its own, to recognise a renumbered record)."""
    return record_hash(
        r.seq if seq is None else seq, r.time_ns, r.kind, r.actor, r.subject, r.data, r.prev_hash
    )


def checkpoint_payload(cp_id: int, time_ns: int, head_seq: int, head_hash: str, key_id: str) -> bytes:
    """What a checkpoint's signature covers."""
    return canonical_json(
        {"head_hash": head_hash, "head_seq": head_seq, "id": cp_id, "key_id": key_id, "time_ns": time_ns}
    ).encode()


def _column(s: str) -> str:
    """A value for the indexed actor and subject columns: no NUL, at most INDEXED_LEN characters."""
    return s.replace("\x00", "")[:INDEXED_LEN]


def _check_kind(kind: str) -> str:
    if not kind or len(kind) > MAX_KIND or not kind.replace("_", "").replace("-", "").isalnum():
        raise UsageError(
            f"audit record kind {kind!r}: expected a word of 1-{MAX_KIND} letters, digits, - or _"
        )
    return kind


class AuditLog:
    """Append to the chain, sign checkpoints (module docstring)."""

    def __init__(
        self,
        store: Store,
        key: NodeKey,
        *,
        checkpoint_every: int = 1000,
        checkpoint_interval_s: float = 60.0,
        checkpoint_file: str | Path | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        """`checkpoint_file`: where each checkpoint is also written (None: nowhere but the store)."""
        self.store = AuditStore(store)
        self.key = key
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval_s = checkpoint_interval_s
        self.checkpoint_file = Path(checkpoint_file) if checkpoint_file is not None else None
        self.clock = clock
        self._lock = threading.RLock()
        #: records appended, checkpoints signed, appends that failed (tried by :meth:`record`)
        self.appended = 0
        self.checkpoints = 0
        self.failed = 0
        self.last_error: str | None = None
        last = self.store.last_checkpoint()
        head = self.store.head()
        self._signed_seq = last.head_seq if last is not None else 0
        self._since_checkpoint = (head[0] if head else 0) - self._signed_seq
        self._last_checkpoint_t = time.monotonic()

    # -- appending ---------------------------------------------------------------------------------
    def append(
        self, kind: str, subject: str, data: Mapping[str, Any] | None = None, *, actor: str = "stockade"
    ) -> AuditRecord:
        """Append one record; a StorageError if the store cannot take it."""
        return self.append_many([AuditEntry(kind, subject, data or {}, actor)])[0]

    def append_many(self, entries: Iterable[AuditEntry]) -> list[AuditRecord]:
        """Append records in one transaction, in order; a StorageError if the store cannot take them."""
        items = [
            (_check_kind(e.kind), _column(e.actor), _column(e.subject), canonical_json(dict(e.data)))
            for e in entries
        ]
        if not items:
            return []

        def build(head: Head) -> list[AuditRow]:
            seq, prev = head if head is not None else (0, GENESIS)
            now = self.clock()
            rows = []
            for kind, actor, subject, data in items:
                seq += 1
                h = record_hash(seq, now, kind, actor, subject, data, prev)
                rows.append(AuditRow(seq, now, kind, actor, subject, data, prev, h))
                prev = h
            return rows

        with self._lock:
            rows = self.store.append(build)
            self.appended += len(rows)
            self._since_checkpoint += len(rows)
            if self.checkpoint_every and self._since_checkpoint >= self.checkpoint_every:
                self.checkpoint()
        return rows

    def record(
        self, kind: str, subject: str, data: Mapping[str, Any] | None = None, *, actor: str = "stockade"
    ) -> AuditRecord | None:
        """:meth:`append` for hooks that must go on when the store fails: the failure is counted
        (``failed``), remembered (``last_error``) and logged, and None returned."""
        try:
            return self.append(kind, subject, data, actor=actor)
        except StockadeError as e:
            self._failed(1, e)
            return None

    def record_many(self, entries: Iterable[AuditEntry]) -> list[AuditRecord]:
        """:meth:`append_many` for hooks (failures counted as in :meth:`record`)."""
        entries = list(entries)
        try:
            return self.append_many(entries)
        except StockadeError as e:
            self._failed(len(entries), e)
            return []

    def _failed(self, n: int, e: StockadeError) -> None:
        with self._lock:
            self.failed += n
            self.last_error = str(e)
        log.error("audit log: %d record(s) not appended: %s", n, e)

    # -- checkpoints -------------------------------------------------------------------------------
    def checkpoint(self) -> Checkpoint:
        """Sign the chain's head now: stored, appended to the checkpoint file, logged."""
        key = self.key

        def build(cp_id: int, head: Head) -> CheckpointRow:
            seq, h = head if head is not None else (0, GENESIS)
            now = self.clock()
            sig = key.sign(checkpoint_payload(cp_id, now, seq, h, key.key_id))
            return CheckpointRow(cp_id, now, seq, h, key.key_id, sig)

        with self._lock:
            cp = self.store.add_checkpoint(build)
            self._signed_seq = cp.head_seq
            self._since_checkpoint = 0
            self._last_checkpoint_t = time.monotonic()
            self.checkpoints += 1
            line = canonical_json(cp.row())
            if self.checkpoint_file is not None:
                self._write_line(line)
        log.info("audit checkpoint %s", line)
        return cp

    def _write_line(self, line: str) -> None:
        path = self.checkpoint_file
        assert path is not None
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (line + "\n").encode())
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as e:
            self.failed += 1
            self.last_error = f"cannot write the checkpoint to {path}: {e}"
            log.error("audit log: %s", self.last_error)

    def tick(self) -> Checkpoint | None:
        """Housekeeping: a checkpoint when records were added and ``checkpoint_interval_s`` passed
        since the last one; failures counted, never raised."""
        with self._lock:
            due = (
                self._since_checkpoint > 0
                and time.monotonic() - self._last_checkpoint_t >= self.checkpoint_interval_s
            )
        if not due:
            return None
        try:
            return self.checkpoint()
        except StockadeError as e:
            self._failed(0, e)
            return None

    def close(self) -> Checkpoint | None:
        """At a clean shutdown: a last checkpoint if records were added since the last one."""
        with self._lock:
            if self._since_checkpoint <= 0:
                return None
        try:
            return self.checkpoint()
        except StockadeError as e:
            self._failed(0, e)
            return None

    def status(self) -> dict[str, Any]:
        """What `stockade status` shows of the audit log."""
        with self._lock:
            return {
                "appended": self.appended,
                "checkpoints": self.checkpoints,
                "signed_up_to": self._signed_seq,
                "unsigned": self._since_checkpoint,
                "failed": self.failed,
                "last_error": self.last_error,
                "key_id": self.key.key_id,
            }
