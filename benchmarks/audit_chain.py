"""What the audit log's hash chain costs: appends per second through ``AuditLog`` against the same
rows inserted without the chain, in the same run (issue 15).

    .venv/bin/python benchmarks/audit_chain.py [--count N] [--batch B] [--repeat R] [--url URL]
                                               [--cpu C | --no-pin] [--json]

Each setting writes to a fresh database (SQLite in WAL mode in a temporary directory, as `stockade
up` keeps it; or each round in a fresh schema of the PostgreSQL server ``--url`` names) rows of the
same shape: kind ``alert``, a 36-character subject, ``data`` as an alert's audit record has it
(rule, priority, workload, container, sha256; ~190 bytes of JSON):

* **plain, one per transaction**: ``INSERT`` of the finished row (``seq``, hashes precomputed), one
  transaction per row: the floor an audited action costs in this store without a chain;
* **chain, one per transaction**: :meth:`AuditLog.append` (read the head, canonical JSON, SHA-256,
  insert, in one transaction; a signed checkpoint every 1,000 records, as configured by default);
* **plain, batches of B** and **chain, batches of B** (``--batch``, 100): the same with B rows per
  transaction (:meth:`AuditLog.append_many`: how the pipeline records a batch of stored alerts);
* **hash only**: :func:`record_hash` of a record, no database: the chain's own CPU;
* **verify**: :func:`stockade.audit.verify.verify` of the chained log written above (records/s).

``--count`` rows (5,000) per one-per-transaction setting, 10 x as many in batches; best of
``--repeat`` rounds (3) by wall time (a store's writes wait on the disk), with the CPU time of the
same round; ratios to the plain setting of the same shape. Pinned to one CPU unless ``--no-pin``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness

from stockade.audit.chain import AuditEntry, AuditLog, canonical_json, record_hash
from stockade.audit.keys import NodeKey
from stockade.audit.verify import verify
from stockade.storage import tables
from stockade.storage.store import Store


@dataclass
class Figure:
    """One setting: records, and the wall and CPU seconds of each round."""

    name: str
    records: int
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def best(self) -> int:
        """The round with the least wall time."""
        return min(range(len(self.wall)), key=self.wall.__getitem__)

    @property
    def rate(self) -> float:
        """Records per wall second in the best round."""
        return self.records / self.wall[self.best] if self.wall else 0.0

    @property
    def cpu_us(self) -> float:
        """CPU microseconds per record in the best round."""
        return self.cpu[self.best] * 1e6 / self.records if self.cpu else 0.0


@dataclass
class Result:
    """Every figure, the settings and the machine."""

    count: int
    batch: int
    repeat: int
    store: str
    pinned_cpu: int | None
    figures: list[Figure]
    #: chain rate / plain rate of the same shape
    ratios: dict[str, float]
    machine: dict[str, Any]


def _entries(n: int) -> list[AuditEntry]:
    return [
        AuditEntry(
            "alert",
            str(uuid.UUID(int=i)),
            {
                "rule": "Terminal shell in container",
                "priority": "Notice",
                "workload": "container/localhost/web/web",
                "container": "3ad7b26ded6d",
                "sha256": f"{i:064x}",
            },
        )
        for i in range(n)
    ]


def _plain_rows(entries: Sequence[AuditEntry]) -> list[dict[str, Any]]:
    now = time.time_ns()
    return [
        {
            "seq": i + 1,
            "time_ns": now,
            "kind": e.kind,
            "actor": e.actor,
            "subject": e.subject,
            "data": canonical_json(dict(e.data)),
            "prev_hash": "0" * 64,
            "hash": f"{i:064x}",
        }
        for i, e in enumerate(entries)
    ]


def _timed(fig: Figure, run: Callable[[], object]) -> None:
    w, c = time.perf_counter(), time.process_time()
    run()
    fig.wall.append(time.perf_counter() - w)
    fig.cpu.append(time.process_time() - c)


def _fresh_store(args: argparse.Namespace, work: Path, name: str) -> Store:
    if args.url:
        import sqlalchemy as sa

        s = Store(args.url)
        with s.writing("reset") as conn:
            conn.execute(sa.text("TRUNCATE audit_log, audit_checkpoints"))
        return s
    return Store(f"sqlite:///{work / name}.db")


def measure(args: argparse.Namespace) -> Result:
    """Every setting, `--repeat` rounds, each on a fresh database."""
    pinned = None if args.no_pin else harness.pin_cpu(args.cpu)
    n, b = args.count, args.batch
    single, batched = _entries(n), _entries(10 * n)
    names = [
        ("plain, one per transaction", n),
        ("chain, one per transaction", n),
        (f"plain, batches of {b}", 10 * n),
        (f"chain, batches of {b}", 10 * n),
        ("hash only", 10 * n),
        ("verify", 10 * n),
    ]
    figs = {name: Figure(name, count) for name, count in names}
    with tempfile.TemporaryDirectory(prefix="stockade-bench-audit-") as tmp:
        work = Path(tmp)
        key = NodeKey.load_or_create(work)
        for r in range(args.repeat):
            with _fresh_store(args, work, f"plain1-{r}") as s:
                rows = _plain_rows(single)

                def plain_one(s: Store = s, rows: list[dict[str, Any]] = rows) -> None:
                    for row in rows:
                        with s.writing("bench") as conn:
                            conn.execute(tables.audit_log.insert(), [row])

                _timed(figs["plain, one per transaction"], plain_one)
            with _fresh_store(args, work, f"chain1-{r}") as s:
                log = AuditLog(s, key)
                _timed(
                    figs["chain, one per transaction"],
                    lambda log=log: [log.append(e.kind, e.subject, e.data) for e in single],
                )
            with _fresh_store(args, work, f"plainb-{r}") as s:
                rows = _plain_rows(batched)

                def plain_batches(s: Store = s, rows: list[dict[str, Any]] = rows) -> None:
                    for i in range(0, len(rows), b):
                        with s.writing("bench") as conn:
                            conn.execute(tables.audit_log.insert(), rows[i : i + b])

                _timed(figs[f"plain, batches of {b}"], plain_batches)
            with _fresh_store(args, work, f"chainb-{r}") as s:
                log = AuditLog(s, key)
                _timed(
                    figs[f"chain, batches of {b}"],
                    lambda log=log: [log.append_many(batched[i : i + b]) for i in range(0, len(batched), b)],
                )
                datas = [canonical_json(dict(e.data)) for e in batched]
                _timed(
                    figs["hash only"],
                    lambda datas=datas: [
                        record_hash(i, 1, "alert", "stockade", "s", d, "0" * 64) for i, d in enumerate(datas)
                    ],
                )
                report = verify(s, key.public)
                assert report.ok and report.records == 10 * n, report.lines()
                _timed(figs["verify"], lambda s=s: verify(s, key.public))
    f = figs
    ratios = {
        "one per transaction": f["chain, one per transaction"].rate / f["plain, one per transaction"].rate,
        f"batches of {b}": f[f"chain, batches of {b}"].rate / f[f"plain, batches of {b}"].rate,
    }
    return Result(
        n,
        b,
        args.repeat,
        "postgresql" if args.url else "sqlite (WAL, synchronous=NORMAL)",
        pinned,
        list(figs.values()),
        {k: round(v, 3) for k, v in ratios.items()},
        harness.machine_info(),
    )


def print_table(res: Result) -> None:
    """The figures as a table."""
    m = res.machine
    print(
        f"audit chain on {res.store}; {m['cpu_model']}, load {m['loadavg']}, pinned to CPU {res.pinned_cpu}"
    )
    print(f"{'setting':<32} {'records':>8} {'records/s':>11} {'CPU us/record':>14}")
    for fig in res.figures:
        print(f"{fig.name:<32} {fig.records:>8} {fig.rate:>11,.0f} {fig.cpu_us:>14.1f}")
    for shape, ratio in res.ratios.items():
        print(f"chain / plain, {shape}: {ratio:.2f} x the rate")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=5000, help="rows per one-per-transaction setting (5,000)")
    ap.add_argument(
        "--batch", type=int, default=100, help="rows per transaction in the batched settings (100)"
    )
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the best is reported (3)")
    ap.add_argument(
        "--url", default=None, help="a PostgreSQL database to measure instead of SQLite (emptied)"
    )
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the last allowed)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    ap.add_argument("--json", action="store_true", help="print machine-readable results")
    return ap.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(harness.main(None, parse, measure, print_table))
