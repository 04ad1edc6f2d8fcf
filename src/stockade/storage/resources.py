"""Resource samples in the store: one row per container per sampling interval, kept for
``resources.retention_s``; and each workload's learned baseline (:class:`BaselineRecord`).

:class:`ResourceSample` is the one record of a container's resource use at one time, made by the
sampler (:mod:`stockade.resources.sampler`), read by the baseline and the detector, stored here and
served by the API. Counters (CPU time, network bytes and packets) are cumulative since the container
started; rates (``cpu_cores``, ``rx_bps``, ``tx_bps``) are over the interval before the sample and
None on a container's first sample. A value that could not be read is None, and ``missing`` says
what and why.

:class:`ResourceStore` is a repository over a :class:`~stockade.storage.store.Store` (the same
database, locks and error translation as :class:`~stockade.storage.behavior.BehaviorStore`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import sqlalchemy as sa

from stockade.errors import NotFoundError, UsageError
from stockade.model.timeutil import format_time_ns
from stockade.storage import tables
from stockade.storage.store import Store

__all__ = ["MIN_ID_PREFIX", "BaselineRecord", "ResourceSample", "ResourceStore"]

#: shortest container id prefix a history query accepts
MIN_ID_PREFIX = 6


@dataclass(frozen=True, slots=True)
class ResourceSample:
    """A container's resource use at one time (module docstring)."""

    container_id: str
    time_ns: int
    workload: str | None = None
    container_name: str | None = None
    #: CPU used over the interval, in cores (1.0: one core busy all the time)
    cpu_cores: float | None = None
    cpu_usage_ns: int | None = None
    #: the working set (usage less inactive file cache, as `podman stats` counts it)
    memory_bytes: int | None = None
    memory_limit_bytes: int | None = None
    #: tasks (processes and threads) in the container's cgroup
    pids: int | None = None
    pids_limit: int | None = None
    #: file descriptors its processes hold
    open_files: int | None = None
    rx_bytes: int | None = None
    tx_bytes: int | None = None
    rx_packets: int | None = None
    tx_packets: int | None = None
    rx_bps: float | None = None
    tx_bps: float | None = None
    missing: tuple[str, ...] = ()

    def row(self) -> dict[str, Any]:
        """The sample as a row of ``resource_samples``."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["missing"] = list(self.missing) or None
        return out

    def to_dict(self) -> dict[str, Any]:
        """The sample as the API and `stockade top --output json` show it (``time`` in RFC 3339)."""
        out: dict[str, Any] = {"time": format_time_ns(self.time_ns)}
        out.update((f.name, getattr(self, f.name)) for f in fields(self) if f.name != "time_ns")
        out["missing"] = list(self.missing)
        return out

    def with_owner(self, workload: str | None, name: str | None) -> ResourceSample:
        """The same sample, attributed to a workload and a container name."""
        return dataclasses.replace(self, workload=workload, container_name=name)


@dataclass(frozen=True, slots=True)
class BaselineRecord:
    """A workload's learned resource baseline as stored: when learning began and ended, from how
    many samples, and per metric ``{"p50": .., "high": .., "samples": n}``."""

    workload: str
    first_ns: int
    ready_ns: int
    samples: int
    metrics: dict[str, dict[str, float]]


_COLUMNS = tuple(f.name for f in fields(ResourceSample))


def _sample(r: Any) -> ResourceSample:
    values = {name: getattr(r, name) for name in _COLUMNS}
    values["missing"] = tuple(r.missing or ())
    return ResourceSample(**values)


class ResourceStore:
    """Resource samples in a Store's database (module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add_samples(self, samples: Sequence[ResourceSample]) -> None:
        """Store samples in one transaction."""
        if not samples:
            return
        with self.store.writing("cannot store resource samples") as conn:
            conn.execute(tables.resource_samples.insert(), [s.row() for s in samples])

    def prune(self, before_ns: int) -> int:
        """Delete the samples older than `before_ns`; how many."""
        t = tables.resource_samples
        with self.store.writing("cannot prune resource samples") as conn:
            return int(conn.execute(t.delete().where(t.c.time_ns < before_ns)).rowcount or 0)

    def container_id(self, ref: str) -> str:
        """The full id of the container `ref` names: its full id, a unique id prefix (6+
        characters) or its name (the one sampled last by that name). NotFoundError when no stored
        sample has it; UsageError for a prefix of several."""
        t = tables.resource_samples
        ref = ref.strip()
        with self.store.reading("cannot read resource samples") as conn:
            if conn.execute(sa.select(t.c.seq).where(t.c.container_id == ref).limit(1)).first():
                return ref
            if len(ref) >= MIN_ID_PREFIX and all(c in "0123456789abcdef" for c in ref):
                found = conn.execute(
                    sa.select(t.c.container_id).where(t.c.container_id.startswith(ref)).distinct().limit(2)
                ).all()
                if len(found) > 1:
                    raise UsageError(f"container id prefix {ref!r} is ambiguous: give more characters")
                if found:
                    return str(found[0][0])
            row = conn.execute(
                sa.select(t.c.container_id)
                .where(t.c.container_name == ref)
                .order_by(t.c.time_ns.desc())
                .limit(1)
            ).first()
        if row is None:
            raise NotFoundError(f"no resource samples of a container {ref!r} (id, id prefix or name)")
        return str(row[0])

    def history(
        self,
        container_id: str,
        *,
        since_ns: int | None = None,
        until_ns: int | None = None,
        limit: int = 1000,
    ) -> list[ResourceSample]:
        """One container's samples in a time range, oldest first (the latest `limit` of them)."""
        t = tables.resource_samples
        stmt = sa.select(t).where(t.c.container_id == container_id)
        if since_ns is not None:
            stmt = stmt.where(t.c.time_ns >= since_ns)
        if until_ns is not None:
            stmt = stmt.where(t.c.time_ns <= until_ns)
        stmt = stmt.order_by(t.c.time_ns.desc(), t.c.seq.desc()).limit(max(0, limit))
        with self.store.reading("cannot read resource samples") as conn:
            rows = [_sample(r) for r in conn.execute(stmt)]
        rows.reverse()
        return rows

    def recent(self, since_ns: int, *, limit: int = 200_000) -> list[ResourceSample]:
        """The samples of known workloads since `since_ns`, oldest first (at most the latest
        `limit`): what a restarted node learns its baselines again from."""
        t = tables.resource_samples
        stmt = (
            sa.select(t)
            .where(t.c.time_ns >= since_ns, t.c.workload.is_not(None))
            .order_by(t.c.time_ns.desc(), t.c.seq.desc())
            .limit(max(0, limit))
        )
        with self.store.reading("cannot read resource samples") as conn:
            rows = [_sample(r) for r in conn.execute(stmt)]
        rows.reverse()
        return rows

    def save_baselines(self, records: Sequence[BaselineRecord]) -> None:
        """Store learned baselines (one of the same workload is replaced)."""
        if not records:
            return
        rows = [
            {
                "workload": r.workload,
                "first_ns": r.first_ns,
                "ready_ns": r.ready_ns,
                "samples": r.samples,
                "body": r.metrics,
            }
            for r in records
        ]
        with self.store.writing("cannot store resource baselines") as conn:
            conn.execute(self.store.upsert(tables.resource_baselines, ("workload",)), rows)

    def load_baselines(self) -> list[BaselineRecord]:
        """Every stored baseline, by workload."""
        t = tables.resource_baselines
        with self.store.reading("cannot read resource baselines") as conn:
            return [
                BaselineRecord(r.workload, r.first_ns, r.ready_ns, r.samples, dict(r.body))
                for r in conn.execute(sa.select(t).order_by(t.c.workload))
            ]

    def delete_baseline(self, workload: str) -> bool:
        """Forget a workload's baseline (it learns again); whether there was one."""
        t = tables.resource_baselines
        with self.store.writing("cannot delete the resource baseline") as conn:
            return bool(conn.execute(t.delete().where(t.c.workload == workload)).rowcount)
