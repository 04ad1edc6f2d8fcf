"""Zero-trust records in the store: workloads, behaviour profiles, mode changes and policies.

:class:`BehaviorStore` is a repository over a :class:`~stockade.storage.store.Store` (the same
database, connections, locks and error translation: every database problem is a
:class:`~stockade.errors.StorageError` naming the URL and the cause). Records are plain data; a
profile is stored as its JSON form (``Profile.to_dict()``, :mod:`stockade.behavior.model`, which
lives above storage) and read back as that dict.

* Workloads: :meth:`~BehaviorStore.upsert_workloads` writes them whole (a known one keeps its
  creation time). :meth:`~BehaviorStore.set_mode` changes one's mode and records who changed it
  and why in the same transaction; a caller that keeps modes itself upserts the workload and
  records the change with :meth:`~BehaviorStore.record_mode_change` (whose ``workload`` may also
  be a pattern of workload ids: a mode set for a namespace or group).
* Profiles: one per (workload, image digest); :meth:`~BehaviorStore.load_profile` without a digest
  gives the latest version, :meth:`~BehaviorStore.latest_profiles` the latest of every workload
  (what an agent resumes from after a restart).
* Policies: WorkloadPolicy YAML documents by name, with where they came from and who applied them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal, get_args

import sqlalchemy as sa

from stockade.config import Mode
from stockade.errors import NotFoundError, UsageError
from stockade.storage import tables
from stockade.storage.store import Store

__all__ = [
    "MODES",
    "POLICY_SOURCES",
    "BehaviorStore",
    "ModeChange",
    "PolicyRecord",
    "PolicySource",
    "ProfileRecord",
    "WorkloadRecord",
    "check_mode",
]

#: where an applied policy came from
PolicySource = Literal["generated", "file", "api"]
POLICY_SOURCES: Final[tuple[PolicySource, ...]] = get_args(PolicySource)

MODES: Final[tuple[Mode, ...]] = get_args(Mode)

#: the columns an upsert of a known workload updates (its creation time stays)
_WORKLOAD_UPDATES = (
    "kind",
    "namespace",
    "owner_kind",
    "owner",
    "mode",
    "mode_since_ns",
    "image_digest",
    "last_seen_ns",
    "labels",
)


def check_mode(value: str) -> Mode:
    """`value` as a mode (stockade.config.Mode); a UsageError if it is none."""
    for mode in MODES:
        if value == mode:
            return mode
    raise UsageError(f"mode must be one of {', '.join(MODES)}, not '{value}'")


@dataclass(frozen=True, slots=True)
class WorkloadRecord:
    """A workload as stored: identity (stockade.behavior.workload.WorkloadRef), mode, image."""

    id: str
    kind: str
    mode: Mode = "discover"
    mode_since_ns: int = 0
    namespace: str | None = None
    owner_kind: str | None = None
    owner: str | None = None
    image_digest: str | None = None
    created_ns: int = 0
    last_seen_ns: int = 0
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ProfileRecord:
    """A stored profile: its key, version, when it was saved, and its JSON form."""

    workload: str
    image_digest: str
    version: int
    updated_ns: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ModeChange:
    """One change of a workload's mode. ``old`` is None for a workload's first mode; ``forced``:
    made without the dry run that normally guards a promotion; ``id`` is given by the store."""

    workload: str
    old: Mode | None
    new: Mode
    who: str
    why: str
    time_ns: int
    forced: bool = False
    id: int | None = None


@dataclass(frozen=True, slots=True)
class PolicyRecord:
    """An applied WorkloadPolicy: its name, workload, YAML text, origin, when and by whom."""

    name: str
    workload: str
    body: str
    source: PolicySource
    applied_ns: int
    applied_by: str | None = None


def _workload(r: Any) -> WorkloadRecord:
    return WorkloadRecord(
        id=r.id,
        kind=r.kind,
        mode=check_mode(r.mode),
        mode_since_ns=r.mode_since_ns,
        namespace=r.namespace,
        owner_kind=r.owner_kind,
        owner=r.owner,
        image_digest=r.image_digest,
        created_ns=r.created_ns,
        last_seen_ns=r.last_seen_ns,
        labels=dict(r.labels or {}),
    )


def _profile(r: Any) -> ProfileRecord:
    return ProfileRecord(r.workload, r.image_digest, r.version, r.updated_ns, dict(r.body))


def _change(r: Any) -> ModeChange:
    return ModeChange(
        workload=r.workload,
        old=check_mode(r.old) if r.old is not None else None,
        new=check_mode(r.new),
        who=r.who,
        why=r.why,
        time_ns=r.time_ns,
        forced=bool(r.forced),
        id=r.id,
    )


def _policy(r: Any) -> PolicyRecord:
    return PolicyRecord(r.name, r.workload, r.body, r.source, r.applied_ns, r.applied_by)


class BehaviorStore:
    """Workloads, profiles, mode changes and policies in a Store's database (module docs)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- workloads ---------------------------------------------------------------------------------

    def upsert_workloads(self, records: Sequence[WorkloadRecord]) -> None:
        """Store workloads in one transaction (a known one keeps its creation time)."""
        if not records:
            return
        rows = [
            {
                "id": w.id,
                "kind": w.kind,
                "namespace": w.namespace,
                "owner_kind": w.owner_kind,
                "owner": w.owner,
                "mode": check_mode(w.mode),
                "mode_since_ns": w.mode_since_ns,
                "image_digest": w.image_digest,
                "created_ns": w.created_ns,
                "last_seen_ns": w.last_seen_ns,
                "labels": w.labels or None,
            }
            for w in records
        ]
        stmt = self.store.upsert(tables.workloads, ("id",), update=_WORKLOAD_UPDATES)
        with self.store.writing("cannot store workloads") as conn:
            conn.execute(stmt, rows)

    def get_workload(self, workload: str) -> WorkloadRecord:
        """The workload with this id (NotFoundError if none)."""
        w = tables.workloads
        with self.store.reading("cannot read workloads") as conn:
            row = conn.execute(sa.select(w).where(w.c.id == workload)).first()
        if row is None:
            raise NotFoundError(f"no workload {workload!r}")
        return _workload(row)

    def list_workloads(
        self,
        *,
        namespace: str | None = None,
        mode: Mode | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[WorkloadRecord]:
        """Workloads by id, optionally of one namespace or mode."""
        w = tables.workloads
        stmt = sa.select(w).order_by(w.c.id).offset(max(0, offset))
        if namespace is not None:
            stmt = stmt.where(w.c.namespace == namespace)
        if mode is not None:
            stmt = stmt.where(w.c.mode == mode)
        if limit is not None:
            stmt = stmt.limit(max(0, limit))
        with self.store.reading("cannot read workloads") as conn:
            return [_workload(r) for r in conn.execute(stmt)]

    # -- modes -------------------------------------------------------------------------------------

    def set_mode(
        self, workload: str, new: Mode, *, who: str, why: str, time_ns: int, forced: bool = False
    ) -> ModeChange:
        """Change a workload's mode and record the change (one transaction); the change as
        recorded (``old`` the mode it had). NotFoundError for an unknown workload."""
        w, m = tables.workloads, tables.mode_changes
        change = ModeChange(workload, None, check_mode(new), who, why, time_ns, forced)
        with self.store.writing("cannot change the mode") as conn:
            old = conn.execute(sa.select(w.c.mode).where(w.c.id == workload)).scalar_one_or_none()
            if old is None:
                raise NotFoundError(f"no workload {workload!r}")
            conn.execute(w.update().where(w.c.id == workload).values(mode=new, mode_since_ns=time_ns))
            change = replace(change, old=check_mode(old))
            row_id = conn.execute(
                m.insert().values(**self._change_row(change)).returning(m.c.id)
            ).scalar_one()
        return replace(change, id=int(row_id))

    def record_mode_change(self, change: ModeChange) -> ModeChange:
        """Record a mode change made elsewhere (a new workload's first mode); with its id."""
        m = tables.mode_changes
        with self.store.writing("cannot record the mode change") as conn:
            row_id = conn.execute(
                m.insert().values(**self._change_row(change)).returning(m.c.id)
            ).scalar_one()
        return replace(change, id=int(row_id))

    @staticmethod
    def _change_row(c: ModeChange) -> dict[str, Any]:
        return {
            "workload": c.workload,
            "old": check_mode(c.old) if c.old is not None else None,
            "new": check_mode(c.new),
            "who": c.who,
            "why": c.why,
            "time_ns": c.time_ns,
            "forced": c.forced,
        }

    def list_mode_changes(self, workload: str | None = None, *, limit: int = 100) -> list[ModeChange]:
        """Mode changes, newest first, of one workload or all."""
        m = tables.mode_changes
        stmt = sa.select(m).order_by(m.c.time_ns.desc(), m.c.id.desc()).limit(max(0, limit))
        if workload is not None:
            stmt = stmt.where(m.c.workload == workload)
        with self.store.reading("cannot read mode changes") as conn:
            return [_change(r) for r in conn.execute(stmt)]

    # -- profiles ----------------------------------------------------------------------------------

    def save_profiles(self, bodies: Sequence[Mapping[str, Any]], updated_ns: int) -> None:
        """Store profiles (their ``to_dict()`` forms) in one transaction, replacing the stored
        version of the same workload and image digest."""
        if not bodies:
            return
        rows = [
            {
                "workload": str(b["workload"]),
                "image_digest": str(b.get("image_digest") or ""),
                "version": int(b.get("version", 1)),
                "body": dict(b),
                "updated_ns": updated_ns,
            }
            for b in bodies
        ]
        stmt = self.store.upsert(tables.profiles, ("workload", "image_digest"))
        with self.store.writing("cannot store profiles") as conn:
            conn.execute(stmt, rows)

    def load_profile(self, workload: str, image_digest: str | None = None) -> ProfileRecord | None:
        """The profile of `workload` at `image_digest`, or its latest version (highest version,
        then the last saved); None when there is none."""
        p = tables.profiles
        stmt = sa.select(p).where(p.c.workload == workload)
        if image_digest is not None:
            stmt = stmt.where(p.c.image_digest == image_digest)
        stmt = stmt.order_by(p.c.version.desc(), p.c.updated_ns.desc()).limit(1)
        with self.store.reading("cannot read profiles") as conn:
            row = conn.execute(stmt).first()
        return _profile(row) if row is not None else None

    def list_profiles(self, workload: str) -> list[ProfileRecord]:
        """Every stored version of a workload's profile, newest first."""
        p = tables.profiles
        stmt = (
            sa.select(p)
            .where(p.c.workload == workload)
            .order_by(p.c.version.desc(), p.c.updated_ns.desc(), p.c.image_digest)
        )
        with self.store.reading("cannot read profiles") as conn:
            return [_profile(r) for r in conn.execute(stmt)]

    def latest_profiles(self) -> list[ProfileRecord]:
        """The latest profile of every workload, by workload."""
        p = tables.profiles
        rank = (
            sa.func.row_number()
            .over(partition_by=p.c.workload, order_by=(p.c.version.desc(), p.c.updated_ns.desc()))
            .label("rank")
        )
        ranked = sa.select(p, rank).subquery()
        stmt = sa.select(ranked).where(ranked.c.rank == 1).order_by(ranked.c.workload)
        with self.store.reading("cannot read profiles") as conn:
            return [_profile(r) for r in conn.execute(stmt)]

    # -- policies ----------------------------------------------------------------------------------

    def save_policy(self, policy: PolicyRecord) -> None:
        """Store a policy (one of the same name is replaced)."""
        if policy.source not in POLICY_SOURCES:
            raise UsageError(
                f"policy source must be one of {', '.join(POLICY_SOURCES)}, not {policy.source!r}"
            )
        row = {
            "name": policy.name,
            "workload": policy.workload,
            "body": policy.body,
            "source": policy.source,
            "applied_ns": policy.applied_ns,
            "applied_by": policy.applied_by,
        }
        with self.store.writing("cannot store the policy") as conn:
            conn.execute(self.store.upsert(tables.policies, ("name",)), [row])

    def get_policy(self, name: str) -> PolicyRecord:
        """The policy with this name (NotFoundError if none)."""
        p = tables.policies
        with self.store.reading("cannot read policies") as conn:
            row = conn.execute(sa.select(p).where(p.c.name == name)).first()
        if row is None:
            raise NotFoundError(f"no policy {name!r}")
        return _policy(row)

    def policy_of(self, workload: str) -> PolicyRecord | None:
        """The policy applied last to `workload`, or None."""
        p = tables.policies
        stmt = sa.select(p).where(p.c.workload == workload).order_by(p.c.applied_ns.desc(), p.c.name).limit(1)
        with self.store.reading("cannot read policies") as conn:
            row = conn.execute(stmt).first()
        return _policy(row) if row is not None else None

    def list_policies(self, workload: str | None = None) -> list[PolicyRecord]:
        """Policies by name, of one workload or all."""
        p = tables.policies
        stmt = sa.select(p).order_by(p.c.name)
        if workload is not None:
            stmt = stmt.where(p.c.workload == workload)
        with self.store.reading("cannot read policies") as conn:
            return [_policy(r) for r in conn.execute(stmt)]

    def delete_policy(self, name: str) -> PolicyRecord:
        """Delete the policy with this name; the policy deleted (NotFoundError if none)."""
        p = tables.policies
        with self.store.writing("cannot delete the policy") as conn:
            row = conn.execute(sa.select(p).where(p.c.name == name)).first()
            if row is None:
                raise NotFoundError(f"no policy {name!r}")
            conn.execute(p.delete().where(p.c.name == name))
        return _policy(row)
