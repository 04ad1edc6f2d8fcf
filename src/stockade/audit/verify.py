"""Verifying the audit log: every change, insertion and deletion found, and where.

:func:`verify` makes three passes, none of which holds the log in memory:

1. **The chain**, in seq order a page at a time. Each record's hash is computed again from its
   fields: a difference is ``record 42 changed (hash mismatch)``; a record whose hash is right for
   another seq was renumbered (records inserted or deleted before it, the rest shifted to hide the
   gap). A gap in the seqs is ``record 42 missing: deleted between 41 and 43``. A record whose
   ``prev`` is not the previous record's hash, while its own hash is right, means the previous
   record was rewritten with its hash recomputed (when the record after it links to it), or that
   it was inserted (the last record, whose successor cannot vouch for it).
2. **The checkpoints** in the store, in id order: each signature checked with the public key
   (``checkpoint 5: bad signature``), ids contiguous, heads in order, and each head compared with
   the chain: a head hash that differs from the stored record's means the records up to it were
   rewritten, every hash recomputed (what the chain alone cannot see); a head beyond the last
   record means the newest records were deleted
   (``records after 120 deleted: checkpoint 9 (signed) covers up to 125``).
3. **The checkpoint file** (``DATA_DIR/audit/checkpoints.jsonl``), if there is one: each line must
   be a checkpoint in the store, unchanged; one deleted from the store still vouches for the head it
   signed (the newest records and their checkpoints deleted together).

What it cannot see: anything done by someone holding the node's private key (they can sign a
rewritten chain), and records appended or deleted after the last checkpoint by someone who also
edits the checkpoint file and the logs (docs/audit.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from stockade.audit.chain import GENESIS, checkpoint_payload, row_hash
from stockade.audit.keys import key_id_of, verify_signature
from stockade.storage.audit import AuditRow, AuditStore, CheckpointRow
from stockade.storage.store import Store

__all__ = ["MAX_PROBLEMS", "Problem", "VerifyReport", "verify"]

#: problems kept in a report (the others are counted)
MAX_PROBLEMS = 1000
#: renumbering shifts tried on a record whose hash does not match its seq
_SHIFTS = (-1, 1, -2, 2, -3, 3, -4, 4)
#: checkpoints compared with the chain per query
_CP_BATCH = 1000
#: the order of problems found at the same seq
_RANK = {
    "missing": 0,
    "inserted": 1,
    "changed": 2,
    "renumbered": 3,
    "rewritten": 4,
    "checkpoint": 5,
    "truncated": 6,
}


@dataclass(slots=True)
class Problem:
    """One thing found wrong: its kind, the first seq it concerns (for ordering), what it is."""

    kind: str
    seq: int
    message: str
    #: the last seq of a run of records with the same problem (changed, renumbered)
    last: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The problem as the API and ``--output json`` show it."""
        return {"kind": self.kind, "seq": self.seq, "message": self.message}


@dataclass(slots=True)
class VerifyReport:
    """What :func:`verify` found: counts, the last checkpoint, and every problem, first one first."""

    records: int = 0
    head_seq: int = 0
    checkpoints: int = 0
    #: checkpoints whose signature was checked and is good
    signed: int = 0
    #: whether a public key was given (else signatures are not checked)
    signatures_checked: bool = False
    key_id: str | None = None
    last_checkpoint: CheckpointRow | None = None
    #: the checkpoint file compared with the store (None: there was none)
    checkpoint_file: str | None = None
    file_checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)
    #: problems found beyond MAX_PROBLEMS (not kept)
    more: int = 0

    @property
    def ok(self) -> bool:
        """Nothing found wrong."""
        return not self.problems and not self.more

    def add(self, kind: str, seq: int, message: str) -> Problem | None:
        """Record a problem (counted only, beyond MAX_PROBLEMS)."""
        if len(self.problems) >= MAX_PROBLEMS:
            self.more += 1
            return None
        p = Problem(kind, seq, message, seq)
        self.problems.append(p)
        return p

    def summary(self, now_ns: int | None = None) -> str:
        """One line: intact or not, records, checkpoints, the age of the last checkpoint."""
        now = now_ns if now_ns is not None else time.time_ns()
        parts = [f"{self.records} records", f"{self.checkpoints} checkpoints"]
        cp = self.last_checkpoint
        if cp is not None:
            age = max(0, (now - cp.time_ns) // 1_000_000_000)
            parts.append(f"last checkpoint {age} s ago")
            unsigned = self.head_seq - cp.head_seq
            if unsigned > 0:
                parts.append(f"{unsigned} records since")
        if not self.signatures_checked:
            parts.append("signatures not checked (no public key)")
        elif self.key_id:
            parts.append(f"signed by key {self.key_id}")
        if self.ok:
            return "audit log intact: " + ", ".join(parts)
        n = len(self.problems) + self.more
        return f"audit log NOT intact: {n} problem{'s' if n != 1 else ''} ({', '.join(parts)})"

    def lines(self) -> list[str]:
        """The first problem, then the others, then the summary (or only the summary when intact)."""
        out = [p.message for p in self.problems]
        if self.more:
            out.append(f"... and {self.more} more problems")
        return [*out, self.summary()]

    def to_dict(self) -> dict[str, Any]:
        """The report as the API and ``--output json`` show it."""
        cp = self.last_checkpoint
        return {
            "ok": self.ok,
            "summary": self.summary(),
            "records": self.records,
            "head_seq": self.head_seq,
            "checkpoints": self.checkpoints,
            "signed": self.signed,
            "signatures_checked": self.signatures_checked,
            "key_id": self.key_id,
            "last_checkpoint": None if cp is None else cp.row(),
            "checkpoint_file": self.checkpoint_file,
            "file_checkpoints": self.file_checkpoints,
            "problems": [p.to_dict() for p in self.problems],
            "more_problems": self.more,
        }


def _records(first: int, last: int) -> str:
    return f"record {first}" if first == last else f"records {first}-{last}"


class _ChainWalk:
    """Pass 1 (module docstring)."""

    def __init__(self, report: VerifyReport) -> None:
        self.r = report
        self.expected = 1
        self.prev: AuditRow | None = None
        self.prev_hash = GENESIS
        #: whether the previous record's own hash was right (its successor's link is then checked)
        self.prev_sound = True
        self.shift = 0
        self.run: Problem | None = None
        #: the problem that opened a run of renumbered records, and the run's first and last seq
        self.renumbered: Problem | None = None
        self.renumbered_span = (0, 0)
        #: a broken link waiting for the next record to say which side is to blame: (record, prev seq)
        self.pending: tuple[AuditRow, int] | None = None

    def _extend(self, kind: str, seq: int, text: str) -> None:
        run = self.run
        if run is not None and run.kind == kind and run.last == seq - 1:
            run.last = seq
            run.message = f"{_records(run.seq, seq)} {text}"
            return
        self.run = self.r.add(kind, seq, f"record {seq} {text}")

    def _settle(self, nxt: AuditRow | None) -> None:
        """Blame the broken link found at the pending record, now that its successor is known."""
        if self.pending is None:
            return
        rec, before = self.pending
        self.pending = None
        if nxt is not None and nxt.seq == rec.seq + 1 and nxt.prev_hash == rec.hash:
            self.r.add(
                "changed",
                before,
                f"record {before} changed (rewritten, its hash recomputed): "
                f"record {rec.seq}'s prev hash does not match it",
            )
        else:
            self.r.add(
                "inserted",
                rec.seq,
                f"record {rec.seq} inserted/forged: prev hash does not match record {before}",
            )

    def step(self, rec: AuditRow) -> None:
        self._settle(rec)
        self.r.records += 1
        if rec.seq < 1:
            self.r.add("inserted", rec.seq, f"record {rec.seq} inserted/forged: the chain starts at record 1")
            return
        linked = True
        if rec.seq > self.expected:
            a, b = self.expected, rec.seq - 1
            what = f"record {a} missing" if a == b else f"records {a}-{b} missing"
            self.r.add("missing", a, f"{what}: deleted between {a - 1} and {b + 1}")
            linked = False
        sound = row_hash(rec) == rec.hash
        orig = rec.seq
        if not sound:
            for d in (self.shift, *_SHIFTS) if self.shift else _SHIFTS:
                if rec.seq + d >= 1 and row_hash(rec, rec.seq + d) == rec.hash:
                    orig = rec.seq + d
                    break
        d = orig - rec.seq
        if not sound and d == 0:
            self._end_renumbered()
            self._extend("changed", rec.seq, "changed (hash mismatch)")
        elif d != 0 and d != self.shift:
            # the first record of a renumbered run: what was done before it
            self._end_renumbered()
            self.shift = d
            if d < 0:
                first = rec.seq + d
                what = f"record {first}" if d == -1 else f"records {first}-{rec.seq - 1}"
                text = f"{what} inserted/forged: the records after it were renumbered (record {rec.seq} was {orig})"
                self.renumbered = self.r.add("inserted", first, text)
            else:
                a, b = rec.seq, orig - 1
                what = f"record {a} missing" if a == b else f"records {a}-{b} missing"
                text = f"{what}: deleted between {a - 1} and {b + 1}, the records after it renumbered (record {rec.seq} was {orig})"
                self.renumbered = self.r.add("missing", a, text)
            self.renumbered_span = (rec.seq, rec.seq)
            linked = False
        elif d != 0:
            self.renumbered_span = (self.renumbered_span[0], rec.seq)
        else:
            self._end_renumbered()
        if linked and self.prev_sound and (sound or d != 0) and rec.prev_hash != self.prev_hash:
            if rec.seq == 1:
                self.r.add(
                    "changed", 1, "record 1 changed: its prev hash is not the start of the chain (64 zeros)"
                )
            else:
                self.pending = (rec, rec.seq - 1)
        self.prev, self.prev_hash, self.prev_sound = rec, rec.hash, sound or d != 0
        self.expected = rec.seq + 1
        self.r.head_seq = rec.seq

    def _end_renumbered(self) -> None:
        p, (a, b) = self.renumbered, self.renumbered_span
        if p is not None and b > a:
            p.message += f"; records {a}-{b} renumbered"
        self.renumbered, self.shift = None, 0

    def finish(self) -> None:
        self._settle(None)
        self._end_renumbered()


def _signed_tag(good: bool | None, where: str = "") -> str:
    tag = "signed" if good else "signature not checked" if good is None else "bad signature"
    return f"{where}, {tag}" if where else tag


def _checkpoint_check(
    cp: CheckpointRow, key: Ed25519PublicKey | None, expected_key_id: str | None
) -> tuple[bool | None, str | None]:
    """Whether the signature is good (None: no key), and what is wrong with it."""
    if key is None:
        return None, None
    payload = checkpoint_payload(cp.id, cp.time_ns, cp.head_seq, cp.head_hash, cp.key_id)
    if cp.key_id != expected_key_id:
        return False, f"bad signature (key {cp.key_id}, not {expected_key_id})"
    if not verify_signature(key, payload, cp.signature):
        return False, "bad signature"
    return True, None


class _Checkpoints:
    """Passes 2 and 3 (module docstring)."""

    def __init__(self, report: VerifyReport, audit: AuditStore, key: Ed25519PublicKey | None) -> None:
        self.r = report
        self.audit = audit
        self.key = key
        self.key_id = key_id_of(key) if key is not None else None
        #: the last checkpoint whose head matched the chain (its id and head seq)
        self.good: tuple[int, int] | None = None
        #: a run of checkpoints that do not match the chain (the first one's problem)
        self.mismatch: Problem | None = None
        self.mismatch_text = ""
        self.later = 0
        #: the checkpoint vouching for the most records beyond the chain's end: (checkpoint, where)
        self.beyond: tuple[CheckpointRow, str, bool | None] | None = None

    def _compare(self, cp: CheckpointRow, stored: dict[int, str], good: bool | None, where: str) -> None:
        """Compare a checkpoint's head with the chain."""
        if good is False:
            return  # a forged checkpoint vouches for nothing (its bad signature is reported)
        last = self.r.head_seq
        tag = _signed_tag(good, where)
        if cp.head_seq > last:
            if self.beyond is None or cp.head_seq > self.beyond[0].head_seq:
                self.beyond = (cp, where, good)
            return
        expected = GENESIS if cp.head_seq == 0 else stored.get(cp.head_seq)
        if expected is None:
            return  # the record is missing: pass 1 said so
        if expected == cp.head_hash:
            self.good = (cp.id, cp.head_seq)
            self.mismatch = None
            return
        if self.mismatch is not None:
            self.later += 1
            self.mismatch.message = (
                f"{self.mismatch_text}; {self.later} later checkpoint(s) do not match either"
            )
            return
        first = self.good[1] + 1 if self.good else 1
        since = f", checkpoint {self.good[0]} (record {self.good[1]}) does" if self.good else ""
        self.mismatch_text = (
            f"{_records(first, cp.head_seq)} rewritten: checkpoint {cp.id} ({tag}) "
            f"does not match record {cp.head_seq}{since}"
        )
        self.later = 0
        self.mismatch = self.r.add("rewritten", first, self.mismatch_text)

    def store_pass(self) -> None:
        prev_id, prev_head = 0, 0
        for batch in _batches(self.audit.iter_checkpoints(), _CP_BATCH):
            stored = self.audit.hashes(cp.head_seq for cp in batch)
            for cp in batch:
                self.r.checkpoints += 1
                self.r.last_checkpoint = cp
                if cp.id != prev_id + 1:
                    a, b = prev_id + 1, cp.id - 1
                    what = f"checkpoint {a} missing" if a == b else f"checkpoints {a}-{b} missing"
                    self.r.add("checkpoint", cp.head_seq, f"{what}: deleted between {a - 1} and {b + 1}")
                good, bad = _checkpoint_check(cp, self.key, self.key_id)
                if good:
                    self.r.signed += 1
                if bad is not None:
                    self.r.add("checkpoint", cp.head_seq, f"checkpoint {cp.id}: {bad}")
                if cp.head_seq < prev_head:
                    self.r.add(
                        "checkpoint",
                        cp.head_seq,
                        f"checkpoint {cp.id}: out of order (head {cp.head_seq}, after a checkpoint of {prev_head})",
                    )
                self._compare(cp, stored, good, "")
                prev_id, prev_head = cp.id, max(prev_head, cp.head_seq)

    def file_pass(self, path: Path) -> None:
        self.r.checkpoint_file = str(path)
        name = path.name
        with path.open("rb") as f:
            lines = ((i, line) for i, line in enumerate(f, 1) if line.strip())
            for batch in _batches(lines, _CP_BATCH):
                parsed: list[tuple[int, CheckpointRow]] = []
                for i, line in batch:
                    try:
                        d = orjson.loads(line)
                        parsed.append((i, CheckpointRow(**{k: d[k] for k in CheckpointRow.__slots__})))
                    except (orjson.JSONDecodeError, KeyError, TypeError) as e:
                        self.r.add(
                            "checkpoint", 0, f"{name} line {i}: not a checkpoint ({type(e).__name__}: {e})"
                        )
                in_store = self.audit.checkpoints(cp.id for _, cp in parsed)
                stored = self.audit.hashes(cp.head_seq for _, cp in parsed)
                for i, cp in parsed:
                    self.r.file_checkpoints += 1
                    good, bad = _checkpoint_check(cp, self.key, self.key_id)
                    if bad is not None:
                        self.r.add("checkpoint", cp.head_seq, f"{name} line {i}: checkpoint {cp.id}: {bad}")
                    db = in_store.get(cp.id)
                    if db == cp:
                        continue  # the store pass compared it
                    where = f"{name} line {i}"
                    if db is None:
                        self.r.add(
                            "checkpoint",
                            cp.head_seq,
                            f"checkpoint {cp.id} missing from the store ({where} has it)",
                        )
                    else:
                        self.r.add("checkpoint", cp.head_seq, f"checkpoint {cp.id} differs from {where}")
                    self._compare(cp, stored, good, where)

    def finish(self) -> None:
        if self.beyond is None:
            return
        cp, where, good = self.beyond
        last = self.r.head_seq
        self.r.add(
            "truncated",
            last + 1,
            f"records after {last} deleted: checkpoint {cp.id} ({_signed_tag(good, where)}) "
            f"covers up to {cp.head_seq}",
        )


def _batches(it: Any, n: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for x in it:
        batch.append(x)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


def verify(
    store: Store, public_key: Ed25519PublicKey | None = None, *, checkpoint_file: str | Path | None = None
) -> VerifyReport:
    """Check the audit log in `store` (module docstring): signatures with `public_key` (None: not
    checked, and the report says so), and the checkpoints in `checkpoint_file` when it exists."""
    report = VerifyReport(signatures_checked=public_key is not None)
    if public_key is not None:
        report.key_id = key_id_of(public_key)
    audit = AuditStore(store)
    walk = _ChainWalk(report)
    for rec in audit.iter_records():
        walk.step(rec)
    walk.finish()
    cps = _Checkpoints(report, audit, public_key)
    cps.store_pass()
    if checkpoint_file is not None and Path(checkpoint_file).is_file():
        cps.file_pass(Path(checkpoint_file))
    cps.finish()
    # what the chain locates exactly comes first; what only the checkpoints show (a span) after it
    report.problems.sort(
        key=lambda p: (_RANK.get(p.kind, 9) > _RANK["renumbered"], p.seq, _RANK.get(p.kind, 9))
    )
    return report
