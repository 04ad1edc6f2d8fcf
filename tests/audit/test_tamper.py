"""The audit log against an attacker who edits the SQLite file directly (sqlite3, as one would):
every change, insertion and deletion is found, and the first problem names where."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stockade.audit.chain import CHECKPOINT_FILE, AuditLog, checkpoint_payload, record_hash
from stockade.audit.keys import NodeKey
from stockade.audit.verify import VerifyReport, verify
from stockade.storage.store import Store

#: records in the log; a checkpoint every 10 of them, and one at close (heads 10, 20, ..., 50, 55)
N = 55


@dataclass
class Log:
    """A closed audit log of N records in a SQLite file, its key and its checkpoint file."""

    db: Path
    key: NodeKey
    cp_file: Path

    def sql(self, *statements: str, params: tuple[object, ...] = ()) -> None:
        con = sqlite3.connect(self.db)
        try:
            for s in statements:
                con.execute(s, params)
            con.commit()
        finally:
            con.close()

    def rows(self) -> list[tuple[int, int, str, str, str, str, str, str]]:
        con = sqlite3.connect(self.db)
        try:
            return list(
                con.execute(
                    "SELECT seq, time_ns, kind, actor, subject, data, prev_hash, hash FROM audit_log ORDER BY seq"
                )
            )
        finally:
            con.close()

    def rechain(self, start: int) -> None:
        """What an attacker who knows the algorithm does: recompute every hash from `start` on."""
        con = sqlite3.connect(self.db)
        try:
            rows = list(
                con.execute(
                    "SELECT seq, time_ns, kind, actor, subject, data, prev_hash FROM audit_log ORDER BY seq"
                )
            )
            prev = None
            for seq, t, kind, actor, subject, data, stored_prev in rows:
                if seq < start:
                    prev = con.execute("SELECT hash FROM audit_log WHERE seq=?", (seq,)).fetchone()[0]
                    continue
                p = stored_prev if prev is None else prev
                h = record_hash(seq, t, kind, actor, subject, data, p)
                con.execute("UPDATE audit_log SET prev_hash=?, hash=? WHERE seq=?", (p, h, seq))
                prev = h
            con.commit()
        finally:
            con.close()

    def verify(self, *, with_file: bool = True) -> VerifyReport:
        with Store(f"sqlite:///{self.db}", read_only=True) as s:
            return verify(s, self.key.public, checkpoint_file=self.cp_file if with_file else None)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Log]:
    db = tmp_path / "stockade.db"
    key = NodeKey.load_or_create(tmp_path)
    cp_file = tmp_path / CHECKPOINT_FILE
    with Store(f"sqlite:///{db}") as store:
        audit = AuditLog(store, key, checkpoint_every=10, checkpoint_file=cp_file)
        for i in range(1, N + 1):
            audit.append("alert", f"alert-{i}", {"rule": "Terminal shell in container", "n": i})
        audit.close()
    yield Log(db, key, cp_file)


def _first(r: VerifyReport) -> str:
    assert not r.ok, r.summary()
    return r.problems[0].message


def test_intact_log_verifies(log: Log) -> None:
    r = log.verify()
    assert r.ok, r.lines()
    assert (r.records, r.checkpoints, r.signed, r.file_checkpoints) == (N, 6, 6, 6)
    assert r.summary().startswith(f"audit log intact: {N} records, 6 checkpoints, last checkpoint ")


def test_changed_record(log: Log) -> None:
    log.sql("""UPDATE audit_log SET data='{"n":42,"rule":"nothing to see"}' WHERE seq=42""")
    r = log.verify()
    assert _first(r) == "record 42 changed (hash mismatch)"
    assert len(r.problems) == 1


def test_changed_record_with_its_hash_recomputed(log: Log) -> None:
    seq, t, kind, actor, subject, _data, prev, _h = log.rows()[41]
    data = '{"n":42,"rule":"nothing to see"}'
    log.sql(
        "UPDATE audit_log SET data=?, hash=? WHERE seq=42",
        params=(data, record_hash(seq, t, kind, actor, subject, data, prev)),
    )
    r = log.verify()
    assert (
        _first(r)
        == "record 42 changed (rewritten, its hash recomputed): record 43's prev hash does not match it"
    )


def test_record_deleted_in_the_middle(log: Log) -> None:
    log.sql("DELETE FROM audit_log WHERE seq=42")
    r = log.verify()
    assert _first(r) == "record 42 missing: deleted between 41 and 43"
    assert [p.kind for p in r.problems] == ["missing"]


def test_record_deleted_and_the_rest_renumbered(log: Log) -> None:
    log.sql(
        "DELETE FROM audit_log WHERE seq=42",
        *(f"UPDATE audit_log SET seq={s - 1} WHERE seq={s}" for s in range(43, N + 1)),
    )
    r = log.verify()
    assert _first(r) == (
        "record 42 missing: deleted between 41 and 43, the records after it renumbered (record 42 was 43); "
        f"records 42-{N - 1} renumbered"
    )


def test_forged_record_inserted_and_the_rest_renumbered(log: Log) -> None:
    rows = log.rows()
    log.sql(*(f"UPDATE audit_log SET seq={s + 1} WHERE seq={s}" for s in range(N, 41, -1)))
    _, t, _, _, _, _, _, prev = rows[40]  # record 41's hash: the forgery chains on it correctly
    data = '{"n":0,"rule":"all clear"}'
    h = record_hash(42, t, "alert", "stockade", "forged", data, prev)
    log.sql(
        "INSERT INTO audit_log VALUES (42, ?, 'alert', 'stockade', 'forged', ?, ?, ?)",
        params=(t, data, prev, h),
    )
    r = log.verify()
    assert _first(r) == (
        f"record 42 inserted/forged: the records after it were renumbered (record 43 was 42); records 43-{N + 1} renumbered"
    )


def test_forged_record_appended_without_renumbering(log: Log) -> None:
    t = log.rows()[-1][1]
    data = '{"rule":"forged"}'
    prev = "f" * 64  # the forger does not know the head's hash
    h = record_hash(N + 1, t, "alert", "stockade", "forged", data, prev)
    log.sql(
        "INSERT INTO audit_log VALUES (?, ?, 'alert', 'stockade', 'forged', ?, ?, ?)",
        params=(N + 1, t, data, prev, h),
    )
    assert _first(log.verify()) == f"record {N + 1} inserted/forged: prev hash does not match record {N}"


def test_tail_deleted(log: Log) -> None:
    log.sql("DELETE FROM audit_log WHERE seq > 50")
    assert _first(log.verify()) == "records after 50 deleted: checkpoint 6 (signed) covers up to 55"


def test_tail_and_its_checkpoint_deleted_caught_by_the_checkpoint_file(log: Log) -> None:
    log.sql("DELETE FROM audit_log WHERE seq > 50", "DELETE FROM audit_checkpoints WHERE id = 6")
    assert log.verify(with_file=False).ok  # the store alone cannot tell: what the file is for
    r = log.verify()
    assert (
        _first(r)
        == "records after 50 deleted: checkpoint 6 (checkpoints.jsonl line 6, signed) covers up to 55"
    )
    assert "checkpoint 6 missing from the store (checkpoints.jsonl line 6 has it)" in [
        p.message for p in r.problems
    ]


def test_rewritten_with_every_later_hash_recomputed(log: Log) -> None:
    log.sql("""UPDATE audit_log SET data='{"n":42,"rule":"nothing to see"}' WHERE seq=42""")
    log.rechain(42)
    r = log.verify()
    assert _first(r) == (
        "records 41-50 rewritten: checkpoint 5 (signed) does not match record 50, checkpoint 4 (record 40) does; "
        "1 later checkpoint(s) do not match either"
    )
    assert len(r.problems) == 1


def test_forged_checkpoint(log: Log) -> None:
    log.sql("UPDATE audit_checkpoints SET head_hash=? WHERE id=3", params=("a" * 64,))
    r = log.verify()
    assert _first(r) == "checkpoint 3: bad signature"
    # and one signed with another key: the attacker's own
    other = NodeKey.load_or_create(log.db.parent / "attacker")
    last = log.rows()[-1]
    payload = checkpoint_payload(7, last[1], N, last[7], other.key_id)
    log.sql(
        "INSERT INTO audit_checkpoints VALUES (7, ?, ?, ?, ?, ?)",
        params=(last[1], N, last[7], other.key_id, other.sign(payload)),
    )
    messages = [p.message for p in log.verify().problems]
    assert f"checkpoint 7: bad signature (key {other.key_id}, not {log.key.key_id})" in messages


def test_deleted_checkpoint(log: Log) -> None:
    log.sql("DELETE FROM audit_checkpoints WHERE id=2")
    r = log.verify(with_file=False)
    assert _first(r) == "checkpoint 2 missing: deleted between 1 and 3"


def test_without_a_public_key_signatures_are_not_checked(log: Log) -> None:
    with Store(f"sqlite:///{log.db}", read_only=True) as s:
        r = verify(s)
    assert r.ok and not r.signatures_checked
    assert "signatures not checked (no public key)" in r.summary()
