"""Zero trust at runtime: learn what each workload does, then hold it to that (Discover -> Monitor
-> Protect).

* Every syscall event reaches :meth:`ZeroTrust.observe` after the engine (the pipeline's
  observer). Its workload (:mod:`stockade.behavior.workload`) is found from the container fields.
  In **Discover** the event's operation is learned into the profile of the workload's image
  digest (the kernel already dropped repeats: ``_novel``); in **Monitor** the workload's policy
  evaluates it and a deviation is an alert; in **Protect** the kernel denies exec, open and
  network operations outside the policy (:mod:`stockade.runtime.enforcement`) and reports them,
  and what it cannot deny (privileged syscalls, ingress) is alerted as in Monitor.
* :meth:`ZeroTrust.refresh` (the housekeeping thread, every second or so) finds the running
  containers in the cgroup2 hierarchy, gives each to its workload, applies or releases
  enforcement, promotes stable profiles, and saves changed profiles.
* Modes change by :meth:`set_mode` (`stockade mode set`, the API) or promotion; every change is
  recorded with who and why. Promotion to Protect first replays the workload's recent operations
  against the policy (the dry run of `stockade policy test`) and refuses, saying why, if any would
  be denied; ``force`` skips that.
* A new image digest starts from the previous digest's profile (``rebase``), keeps the workload's
  mode, and what it does beyond that base is listed as new for that version.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from stockade.behavior.learn import Learner
from stockade.behavior.model import Profile, Seen
from stockade.behavior.ops import FileOp, NetOp, Operation, PrivOp, ProcessOp, is_runtime, operation_of
from stockade.behavior.stability import confidence, is_stable, new_since_base, rebase, under_observed
from stockade.behavior.workload import HOST, WorkloadRef, is_workload_id, parse_workload_id, workload_of_event
from stockade.config import Mode, StockadeConfig
from stockade.enforce.interface import Denial
from stockade.errors import NotFoundError, StockadeError
from stockade.model.alert import Alert
from stockade.model.clock import SYSTEM, Clock
from stockade.model.timeutil import format_time_ns
from stockade.policy.compile import CompiledPolicy
from stockade.policy.dryrun import describe_operation, dry_run
from stockade.policy.generate import generate_policy
from stockade.policy.load import dump_policy, parse_policy
from stockade.policy.model import WorkloadPolicy
from stockade.runtime.anomalies import OnlineAnomaly
from stockade.runtime.deviations import denial_alert, deviation_alert
from stockade.runtime.enforcement import Enforcement
from stockade.runtime.peers import Peers, peer_refs
from stockade.runtime.workloads import Tracked, WorkloadState, trimmed
from stockade.sensor.containers.addresses import container_addresses
from stockade.sensor.containers.discover import RunningContainer, parent_dirs, running_containers
from stockade.sensor.containers.resolver import ContainerResolver
from stockade.sensor.interface import WATCH_LEARN, WATCH_SYSCALLS
from stockade.sensor.procfs import start_time_ns
from stockade.storage.behavior import (
    MODES,
    BehaviorStore,
    ModeChange,
    PolicyRecord,
    WorkloadRecord,
    check_mode,
)

__all__ = ["ModeRefused", "ZeroTrust"]

log = logging.getLogger("stockade.zerotrust")

AlertSink = Callable[[list[Alert]], object]
#: told of every mode and policy change: (kind, subject, data, actor) (the runtime's audit log)
AuditHook = Callable[[str, str, dict[str, Any], str], object]


class KernelLearning(Protocol):
    """The sensor's learning in the kernel (:class:`stockade.runtime.sensing.SensorRunner`)."""

    @property
    def learns_in_kernel(self) -> bool:
        """Whether a backend deduplicates watched cgroups' operations in the kernel."""
        ...

    def set_watched(self, cgroup_ids: Mapping[int, int]) -> None:
        """Watch exactly these cgroups (cgroup id -> WATCH_* flags)."""
        ...

    def set_watched_parents(self, cgroup_ids: Mapping[int, int]) -> None:
        """Watch every cgroup below these, from its first call."""
        ...

    def syscalls_used(self, cgroup_id: int) -> set[str]:
        """The syscalls a watched cgroup made."""
        ...

    def learned_repeats(self, cgroup_id: int) -> int:
        """A watched cgroup's repeats not handed on as new."""
        ...


class ModeRefused(StockadeError):
    """A mode change refused (the dry run found operations the policy would deny)."""

    exit_code = 1
    http_status = 409
    problem_type = "mode-refused"
    title = "Mode change refused"


def _describe(op: Operation) -> tuple[str, str]:
    """(operation, target) of an operation, as alerts and reports say them."""
    if isinstance(op, ProcessOp):
        return "exec", op.exe
    if isinstance(op, FileOp):
        return "open", f"{op.path} ({','.join(op.access)})"
    if isinstance(op, NetOp):
        return op.direction, f"{op.ip}:{op.port}/{op.protocol or '?'}"
    return "privileged", op.operation


#: operations the kernel enforcers deny in Protect (the rest is alerted from the sensor's events)
def _kernel_kind(op: Operation) -> str | None:
    if isinstance(op, ProcessOp):
        return "exec"
    if isinstance(op, FileOp):
        return "open"
    if isinstance(op, NetOp):
        return "connect" if op.direction == "egress" else ("bind" if op.direction == "listen" else None)
    if isinstance(op, PrivOp) and op.operation == "raw_socket":
        return "raw_socket"
    return None


class ZeroTrust:
    """Workloads, their profiles, modes, policies and enforcement on this node (module docstring)."""

    def __init__(
        self,
        cfg: StockadeConfig,
        store: BehaviorStore | None,
        emit: AlertSink,
        *,
        clock: Clock = SYSTEM,
        resolver: ContainerResolver | None = None,
        enforce: bool = True,
        discover: Callable[[], list[RunningContainer]] = running_containers,
        cgroup_root: str | None = None,
        peers: Peers | None = None,
        addresses_of: Callable[[int], frozenset[str]] = container_addresses,
    ) -> None:
        self.cfg = cfg
        self.zt = cfg.zero_trust
        self.store = store
        self.emit = emit
        self.clock = clock
        self.resolver = resolver or ContainerResolver()
        self._discover = discover
        #: who is at which address: workload and DNS peers of network rules
        self.peers = peers or Peers(clock=clock)
        self._addresses_of = addresses_of
        #: the cgroup2 hierarchy (None: its mount)
        self._cgroup_root = cgroup_root
        self._lock = threading.RLock()
        self.workloads: dict[str, WorkloadState] = {}
        #: container full id -> its workload (events find theirs in one lookup)
        self._by_container: dict[str, WorkloadState] = {}
        #: mode by workload id pattern (config, then `mode set` on a pattern)
        self._patterns: dict[str, Mode] = dict(self.zt.modes)
        self.stats: Counter[str] = Counter()
        #: the workloads' online anomaly models (learned in Discover, scoring in Monitor and Protect)
        self.anomaly: OnlineAnomaly | None = (
            OnlineAnomaly(cfg.anomaly, cfg.data_dir, cfg.hostname) if cfg.anomaly.enabled else None
        )
        self.enforcement: Enforcement | None = (
            Enforcement(self.zt.enforcement, self._on_denial) if enforce else None
        )
        self._last_save = 0.0
        #: the sensor's learning in the kernel (set by the runtime once the sensor exists)
        self.kernel: KernelLearning | None = None
        self._watched: dict[int, int] = {}
        self._parents: dict[int, int] = {}
        #: per watched cgroup, the kernel's repeat count already added to its learner
        self._repeats: dict[int, int] = {}
        #: enforcers' reports, raised as alerts by their own thread (module docstring)
        self._denials: queue.Queue[Denial | None] = queue.Queue(maxsize=65536)
        self._alerts = threading.Thread(target=self._alert_loop, name="stockade-zt-alerts", daemon=True)
        #: told of every mode change (promotions included) and policy applied (set by the runtime)
        self.on_audit: AuditHook | None = None

    def _now(self) -> int:
        return int(self.clock.time() * 1e9)

    # -- start and stop ----------------------------------------------------------------------------
    def start(self) -> None:
        """Load workloads, modes, profiles and policies from the store, start the enforcers, and
        apply the enforcement of the workloads in Protect to their running containers."""
        if self.store is not None:
            self._load()
        if self.anomaly is not None:
            self.anomaly.load()
        self._alerts.start()
        if self.enforcement is not None:
            restored = self.enforcement.start()
            if restored:
                log.info("network enforcement still in place for %d containers", len(restored))
        self.refresh()

    def close(self) -> None:
        """Save the profiles and stop the enforcers (network ones stay pinned when failing closed)."""
        with self._lock:
            self._save(force=True)
        if self.anomaly is not None:
            self.anomaly.save()
        if self.enforcement is not None:
            self.enforcement.close()
        if self._alerts.is_alive():
            self._denials.put(None)
            self._alerts.join(timeout=10)

    def _load(self) -> None:
        assert self.store is not None
        for change in reversed(self.store.list_mode_changes(limit=10_000)):
            if not is_workload_id(change.workload):
                self._patterns[change.workload] = change.new
        policies = {p.workload: p for p in self.store.list_policies()}
        for w in self.store.list_workloads():
            kind = "host" if w.kind == "host" else ("k8s" if w.kind == "k8s" else "container")
            ref = WorkloadRef(w.id, kind, w.namespace, w.owner_kind, w.owner)  # type: ignore[arg-type]
            st = WorkloadState(ref, w.mode, w.mode_since_ns, w.created_ns, w.last_seen_ns)
            st.digest = w.image_digest or ""
            st.labels = dict(w.labels)
            for rec in self.store.list_profiles(w.id):
                st.learners.setdefault(rec.image_digest, self._learner(Profile.from_dict(rec.body)))
            pol = policies.get(w.id)
            if pol is not None:
                self._set_policy(st, parse_policy(pol.body, f"store:policy/{pol.name}"), pol.source)
            self.workloads[ref.id] = st

    # -- the event path ----------------------------------------------------------------------------
    def observe(self, data: dict[str, Any]) -> list[Alert]:
        """One syscall event (after the engine): learn it, or check it against the policy."""
        if data.get("_novel") is False:
            # the kernel saw this operation of this container before: learned or checked then
            return []
        if is_runtime(data):  # the runtime setting the container up (or entering it): not the workload
            return []
        cid = data.get("container.full_id") or data.get("container.id")
        if cid == HOST and not self.zt.learn_host:
            return []
        st = self._by_container.get(cid) if isinstance(cid, str) else None
        if st is None:
            st = self._admit(data)
            if st is None:
                return []
        if st.mode == "discover":
            self._learn(st, data)
            if self.anomaly is not None:
                self.anomaly.learn(st.id, str(cid or HOST), data, self.peers.workload_at)
            return []
        op = operation_of(data)
        if op is None:
            return []
        alerts = self._check(st, data, op)
        if self.anomaly is not None:
            t = data.get("evt.time")
            when = t if isinstance(t, int) else self._now()
            alerts += self.anomaly.score(st.id, str(cid or HOST), data, op, self.peers.workload_at, when)
        return alerts

    def _admit(self, data: dict[str, Any]) -> WorkloadState | None:
        cid = data.get("container.id")
        if cid and cid != HOST and not (data.get("container.image.repository") or data.get("k8s.ns.name")):
            # the container's runtime has not described it yet: its workload is not known
            self.stats["unattributed"] += 1
            return None
        ref = workload_of_event(data)
        if ref.id == HOST and not self.zt.learn_host:
            self.stats["host_events"] += 1
            return None
        with self._lock:
            st = self._state(ref, data.get("container.labels"))
            full = data.get("container.full_id") or data.get("container.id")
            if isinstance(full, str):
                self._by_container[full] = st
            digest = data.get("container.image.digest")
            if isinstance(digest, str) and digest and digest != st.digest:
                self._new_digest(st, digest)
            return st

    def _learn(self, st: WorkloadState, data: dict[str, Any]) -> None:
        # under the lock: the housekeeping thread saves and extends the same profiles (with the
        # kernel deduplicating, this runs once per new operation, not per event)
        with self._lock:
            self._learn_locked(st, data)

    def _learn_locked(self, st: WorkloadState, data: dict[str, Any]) -> None:
        digest = data.get("container.image.digest") or st.digest
        learner = st.learners.get(digest) if isinstance(digest, str) else None
        if learner is None:
            learner = self._learner_for(st, str(digest or ""))
        new = learner.observe(data)
        self.stats["learned_events"] += 1
        if new:
            now = self._now()
            st.last_seen_ns = now
            st.dirty.add(learner.profile.image_digest)
            if learner.profile.version > 1:
                _note_new(st, learner.profile.image_digest, new)
            self._remember(st, data)

    def _remember(self, st: WorkloadState, data: dict[str, Any]) -> None:
        if self.zt.recent_events:
            st.recent.append(trimmed(data))
            while len(st.recent) > self.zt.recent_events:
                st.recent.popleft()

    def _check(self, st: WorkloadState, data: dict[str, Any], op: Operation) -> list[Alert]:
        compiled = st.compiled
        if compiled is None:
            return []
        self._remember(st, data)
        verdict = compiled.decide(op)
        if verdict.action == "allow":
            return []
        if st.mode == "protect" and self._kernel_decides(data, op):
            return []
        operation, target = _describe(op)
        learner = st.learner()
        if learner is not None and learner.profile.version > 1:
            # what a new image version does beyond its base: reported for that version
            _note_new(st, st.digest, [f"{operation} {target}"])
        self.stats["deviations"] += 1
        t = data.get("evt.time")
        return [
            deviation_alert(
                data,
                st.id,
                verdict,
                operation,
                target,
                self.cfg.hostname,
                t if isinstance(t, int) else self._now(),
            )
        ]

    def _kernel_decides(self, data: dict[str, Any], op: Operation) -> bool:
        """Whether an enforcer already decided (and reported) this operation of this container."""
        if self.enforcement is None:
            return False
        kind = _kernel_kind(op)
        cid = data.get("container.full_id")
        applied = self.enforcement.enforced(cid) if isinstance(cid, str) else None
        if kind is None or applied is None:
            return False
        return applied.decides(kind)

    def _on_denial(self, d: Denial) -> None:
        """An enforcer's report (its own thread, maybe holding a process in the kernel: never
        block here): queued for the alert thread."""
        try:
            self._denials.put_nowait(d)
        except queue.Full:
            self.stats["denials_dropped"] += 1

    def _alert_loop(self) -> None:
        while True:
            d = self._denials.get()
            if d is None:
                return
            try:
                self._raise(d)
            except Exception as e:  # an alert that fails must not stop the next ones: counted, logged
                self.stats["alert_errors"] += 1
                log.warning("zero trust: cannot raise the alert of a denial: %s", e)

    def _raise(self, d: Denial) -> None:
        st = self._by_container.get(d.container)
        if st is None:
            self.stats["denials_unattributed"] += 1
            return
        tr = st.containers.get(d.container)
        self.stats["denials" if d.blocked else "audits"] += 1
        self.emit([denial_alert(d, st.id, self.cfg.hostname, tr.info.name if tr else None)])

    # -- workloads ---------------------------------------------------------------------------------
    def _state(self, ref: WorkloadRef, labels: Any = None) -> WorkloadState:
        st = self.workloads.get(ref.id)
        if st is None:
            now = self._now()
            st = WorkloadState(ref, self._initial_mode(ref.id), now, now, now)
            if isinstance(labels, dict):
                st.labels = {str(k): str(v) for k, v in labels.items()}
            self.workloads[ref.id] = st
            self._persist_workload(st)
        return st

    def _initial_mode(self, wid: str) -> Mode:
        for pattern, mode in sorted(self._patterns.items(), key=lambda kv: -len(kv[0])):
            if fnmatch.fnmatchcase(wid, pattern):
                return mode
        return self.zt.default_mode

    def _learner(self, profile: Profile) -> Learner:
        return Learner(
            profile, max_entries=self.zt.profile_max_entries, clock=self.clock, peer_of=self.peers.workload_at
        )

    def _learner_for(self, st: WorkloadState, digest: str) -> Learner:
        learner = st.learners.get(digest)
        if learner is None:
            base = st.learner() or (
                max(st.learners.values(), key=lambda ln: ln.profile.version) if st.learners else None
            )
            if base is None:
                prof = Profile(workload=st.id, image_digest=digest, created_ns=self._now())
            else:
                prof = rebase(base.profile, digest, self._now())
            learner = st.learners[digest] = self._learner(prof)
            st.dirty.add(digest)
        return learner

    def _new_digest(self, st: WorkloadState, digest: str) -> None:
        """A container of the workload runs another image digest: the newest one becomes current."""
        self._learner_for(st, digest)
        if st.digest:
            log.info(
                "workload %s: new image digest %s (was %s); mode %s kept", st.id, digest, st.digest, st.mode
            )
        st.digest = digest
        self._persist_workload(st)

    # -- housekeeping ------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Find containers, apply enforcement, promote stable profiles, save (module docstring)."""
        found = self._discover()
        running = {c.full_id: c for c in found}
        with self._lock:
            names = {r[4:] for st in self.workloads.values() for r in st.peer_refs if r.startswith("dns:")}
        # DNS look-ups outside the lock: a slow resolver must not hold up the event path
        renamed = self.peers.refresh_names(names)
        with self._lock:
            self._watch_parents(found)
            self._forget_gone(running)
            new = [c for c in running.values() if self._track(c)]
            self._update_peers(renamed)  # before enforcing: the policies' workload peers resolved
            for c in new:
                self._apply(self._by_container[c.full_id], c)
            self._kernel_learning()
            self._promote()
            self._save()

    def _watch_parents(self, running: list[RunningContainer]) -> None:
        """Watch, in the kernel, every cgroup below the directories that hold containers: a new
        container is learned from its first call, before the next refresh finds it."""
        k = self.kernel
        if k is None or not k.learns_in_kernel:
            return
        want = {cg: WATCH_LEARN | WATCH_SYSCALLS for cg in parent_dirs(running, self._cgroup_root).values()}
        if want != self._parents:
            k.set_watched_parents(want)
            self._parents = want

    def _kernel_learning(self) -> None:
        """Watch every tracked container in the kernel (repeats deduplicated there; the syscall set
        recorded while learning), and take what the kernel counted into the learners."""
        k = self.kernel
        if k is None or not k.learns_in_kernel:
            return
        want: dict[int, int] = {}
        for st in self.workloads.values():
            learning = st.mode == "discover"
            learner = st.learner()
            for tr in st.containers.values():
                cg = tr.running.cgroup_id
                want[cg] = WATCH_LEARN | (WATCH_SYSCALLS if learning else 0)
                if learning and learner is not None:
                    self._take_kernel_counts(st, learner, cg, k)
        if want != self._watched:
            k.set_watched(want)
            self._watched = want
            self._repeats = {cg: n for cg, n in self._repeats.items() if cg in want}

    def _take_kernel_counts(self, st: WorkloadState, learner: Learner, cg: int, k: KernelLearning) -> None:
        total = k.learned_repeats(cg)
        added = total - self._repeats.get(cg, 0)
        if added > 0:
            learner.repeated(added)
            self._repeats[cg] = total
        now = self._now()
        new = [n for n in k.syscalls_used(cg) if n not in learner.profile.syscalls]
        for name in new:
            learner.profile.syscalls.setdefault(name, Seen()).add(now)
        if new:
            st.dirty.add(learner.profile.image_digest)

    def _forget_gone(self, running: dict[str, RunningContainer]) -> None:
        for st in self.workloads.values():
            for cid in [cid for cid in st.containers if cid not in running]:
                del st.containers[cid]
                self._by_container.pop(cid, None)
                if self.anomaly is not None:
                    self.anomaly.forget(cid)
                if self.enforcement is not None:
                    self.enforcement.release(cid)

    def _track(self, c: RunningContainer) -> bool:
        """Give a container found running to its workload; whether it is new."""
        known = self._by_container.get(c.full_id)
        if known is not None and c.full_id in known.containers:
            return False
        info = self.resolver.by_id(c.full_id, c.runtime)
        if not info.complete:
            self.stats["undescribed_containers"] += 1
            return False
        fields = info.fields()
        ref = workload_of_event(fields)
        st = self._state(ref, info.labels)
        st.containers[c.full_id] = Tracked(c, info, self._addresses_of(c.pid), start_time_ns(c.pid) or 0)
        self._by_container[c.full_id] = st
        st.last_seen_ns = self._now()
        if info.image_digest and info.image_digest != st.digest:
            self._new_digest(st, info.image_digest)
        return True

    def _update_peers(self, renamed: set[str]) -> None:
        """Give each workload its containers' addresses; name the peers learned as an address that
        now belongs to a workload; recompile and re-apply the policies whose workload peers changed
        or whose DNS names (`renamed`) resolve elsewhere now."""
        before = self.peers.snapshot()
        containers = {
            cid: (st.id, tr.addresses) for st in self.workloads.values() for cid, tr in st.containers.items()
        }
        changed = {f"workload:{w}" for w in self.peers.update(containers)}
        gained = self.peers.gained(before)
        if gained:
            self._name_peers(gained)
        changed |= {f"dns:{n}" for n in renamed}
        if not changed:
            return
        for st in self.workloads.values():
            if st.policy is not None and st.policy_source is not None and st.peer_refs & changed:
                self.stats["policies_recompiled"] += 1
                self._set_policy(st, st.policy, st.policy_source)
                self._enforce(st)

    def _name_peers(self, gained: dict[str, str]) -> None:
        starts = {
            a: tr.started_ns
            for st in self.workloads.values()
            for tr in st.containers.values()
            for a in tr.addresses
        }
        names = {a: (w, starts.get(a, 0)) for a, w in gained.items()}
        for st in self.workloads.values():
            for digest, learner in st.learners.items():
                said = learner.name_peers(names)
                if said:
                    st.dirty.add(digest)
                    log.info("workload %s: peers named: %s", st.id, "; ".join(said))

    def _apply(self, st: WorkloadState, c: RunningContainer) -> None:
        if self.enforcement is None or st.compiled is None or st.mode != "protect":
            return
        for p in self.enforcement.apply(c, st.compiled):
            self.stats["enforcement_problems"] += 1
            log.warning("workload %s: %s", st.id, p)

    def _promote(self) -> None:
        to = self.zt.promotion.to
        if to == "off":
            return
        now = self._now()
        for st in self.workloads.values():
            learner = st.learner()
            if st.mode != "discover" or learner is None:
                continue
            ok, why = is_stable(
                learner.profile,
                now,
                quiet_s=self.zt.promotion.quiet_s,
                min_observations=self.zt.promotion.min_observations,
            )
            if not ok:
                continue
            try:
                self._change_mode(st, to, who="stockade", why=f"profile stable: {why}", force=False)
            except ModeRefused as e:
                self.stats["promotions_refused"] += 1
                log.warning("workload %s: not promoted to %s: %s", st.id, to, e)

    def _save(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.store is None or (not force and now - self._last_save < self.zt.save_every_s):
            return
        self._last_save = now
        bodies = []
        for st in self.workloads.values():
            for digest in list(st.dirty):
                learner = st.learners.get(digest)
                if learner is not None:
                    bodies.append(learner.profile.to_dict())
            st.dirty.clear()
        if bodies:
            self.store.save_profiles(bodies, self._now())

    def _persist_workload(self, st: WorkloadState) -> None:
        if self.store is None:
            return
        r = st.ref
        self.store.upsert_workloads(
            [
                WorkloadRecord(
                    id=r.id,
                    kind=r.kind,
                    mode=st.mode,
                    mode_since_ns=st.mode_since_ns,
                    namespace=r.namespace,
                    owner_kind=r.owner_kind,
                    owner=r.owner,
                    image_digest=st.digest or None,
                    created_ns=st.created_ns,
                    last_seen_ns=st.last_seen_ns,
                    labels=st.labels,
                )
            ]
        )

    def _record(self, target: str, old: Mode | None, new: Mode, who: str, why: str, forced: bool) -> None:
        if self.store is not None:
            self.store.record_mode_change(ModeChange(target, old, new, who, why, self._now(), forced))
        if self.on_audit is not None:
            self.on_audit("mode", target, {"old": old, "new": new, "why": why, "forced": forced}, who)

    def _save_policy(self, st: WorkloadState, policy: WorkloadPolicy, source: str, who: str) -> None:
        body = dump_policy(policy)
        if self.store is not None:
            src = source if source in ("generated", "file", "api") else "file"
            self.store.save_policy(
                PolicyRecord(policy.metadata.name, st.id, body, src, self._now(), who)  # type: ignore[arg-type]
            )
        if self.on_audit is not None:
            digest = hashlib.sha256(body.encode()).hexdigest()
            self.on_audit(
                "policy", st.id, {"policy": policy.metadata.name, "source": source, "sha256": digest}, who
            )

    # -- modes and policies ------------------------------------------------------------------------
    def _get(self, wid: str) -> WorkloadState:
        st = self.workloads.get(wid)
        if st is None:
            raise NotFoundError(f"no workload {wid!r} (`stockade workloads list` shows them)")
        return st

    def _profile_for_policy(self, st: WorkloadState) -> Profile:
        learner = st.learner() or (next(iter(st.learners.values())) if st.learners else None)
        if learner is None:
            return Profile(workload=st.id, image_digest=st.digest, created_ns=self._now())
        return learner.profile

    def _policy_for(self, st: WorkloadState) -> tuple[WorkloadPolicy, str]:
        if st.policy is not None and st.policy_source is not None:
            return st.policy, st.policy_source
        return generate_policy(self._profile_for_policy(st)), "generated"

    def _set_policy(self, st: WorkloadState, policy: WorkloadPolicy, source: str) -> None:
        st.policy, st.policy_source = policy, source
        st.peer_refs = peer_refs(policy)
        st.compiled = CompiledPolicy(policy, resolve=self.peers.resolve)

    def set_mode(self, target: str, mode: str, *, who: str, why: str, force: bool = False) -> dict[str, Any]:
        """Change the mode of a workload (or of every workload matching a ``*`` pattern, now and
        later); ModeRefused when the dry run finds recent operations Protect would deny."""
        m = check_mode(mode)
        with self._lock:
            if "*" in target or target.startswith("namespace:"):
                return self._set_pattern(target, m, who, why, force)
            st = self._get(target)
            change = self._change_mode(st, m, who=who, why=why, force=force)
            return {"workload": self.describe(st), "change": change}

    def _set_pattern(self, target: str, mode: Mode, who: str, why: str, force: bool) -> dict[str, Any]:
        pattern = f"k8s/{target.split(':', 1)[1]}/*" if target.startswith("namespace:") else target
        changed, refused = [], []
        for st in [s for s in self.workloads.values() if fnmatch.fnmatchcase(s.id, pattern)]:
            try:
                changed.append(self._change_mode(st, mode, who=who, why=why, force=force))
            except ModeRefused as e:
                refused.append({"workload": st.id, "reason": str(e)})
        self._patterns[pattern] = mode
        self._record(pattern, None, mode, who, why, force)
        return {"pattern": pattern, "changed": changed, "refused": refused}

    def _change_mode(
        self, st: WorkloadState, mode: Mode, *, who: str, why: str, force: bool
    ) -> dict[str, Any]:
        old = st.mode
        if mode != "discover":
            policy, source = self._policy_for(st)
            if mode == "protect" and not force:
                self._gate(st, policy)
            if st.policy is None or source == "generated":
                self._set_policy(st, policy, source)
                self._save_policy(st, policy, source, who)
        now = self._now()
        st.mode, st.mode_since_ns = mode, now
        self._persist_workload(st)
        self._record(st.id, old, mode, who, why, force)
        self._enforce(st)
        if self.anomaly is not None:
            self.anomaly.mode_changed(st.id, old, mode)
        log.info("workload %s: %s -> %s by %s: %s", st.id, old, mode, who, why)
        return {
            "workload": st.id,
            "old": old,
            "new": mode,
            "who": who,
            "why": why,
            "forced": force,
            "time": format_time_ns(now),
            "warnings": self._warnings(st),
        }

    def _gate(self, st: WorkloadState, policy: WorkloadPolicy) -> None:
        report = dry_run(policy, list(st.recent), workload=st.id, resolve=self.peers.resolve)
        blocked = report.denied
        if blocked:
            lines = [f"{describe_operation(f.operation)} -> rule {f.verdict.rule}" for f in blocked[:5]]
            more = f" (and {len(blocked) - 5} more)" if len(blocked) > 5 else ""
            raise ModeRefused(
                f"workload {st.id}: {len(blocked)} recent operations would be denied by policy "
                f"{policy.metadata.name}: {'; '.join(lines)}{more}; fix the policy "
                "(`stockade policy generate|apply`) or use --force",
                details=lines,
            )

    def _enforce(self, st: WorkloadState) -> None:
        if self.enforcement is None:
            return
        for cid, tr in st.containers.items():
            if st.mode == "protect" and st.compiled is not None:
                self._apply(st, tr.running)
            else:
                self.enforcement.release(cid)

    def _warnings(self, st: WorkloadState) -> list[str]:
        """What this node cannot enforce of the workload's policy (never claimed as Block)."""
        if st.mode != "protect":
            return []
        if self.enforcement is None:
            return ["no enforcement in this process: Protect only alerts"]
        out = []
        for kind in ("exec", "open", "connect", "bind", "raw_socket", "privileged", "ingress"):
            if self.enforcement.kind_support(kind) != "block":
                reason = self.enforcement.support.get(kind, {}).get("reason", "")
                out.append(f"{kind}: this node can only audit ({reason})")
        return out

    def apply_policy(self, text: str, origin: str, *, who: str) -> dict[str, Any]:
        """Apply a WorkloadPolicy (YAML): stored, compiled, enforced at once if its workload is in
        Protect. The workload need not be running yet."""
        policy = parse_policy(text, origin)
        with self._lock:
            wid = policy.spec.workload
            st = self.workloads.get(wid)
            if st is None:
                st = self._state(parse_workload_id(wid) or WorkloadRef(wid, "container"))
            self._set_policy(st, policy, "file")
            self._save_policy(st, policy, "file", who)
            self._enforce(st)
            return {
                "policy": policy.metadata.name,
                "workload": wid,
                "mode": st.mode,
                "warnings": self._warnings(st),
            }

    def generate(self, wid: str) -> str:
        """A WorkloadPolicy (YAML) generated from the workload's profile now."""
        with self._lock:
            st = self._get(wid)
            return dump_policy(generate_policy(self._profile_for_policy(st)))

    def policy_text(self, wid: str) -> str:
        """The policy in force for a workload (YAML); NotFoundError when it has none yet."""
        with self._lock:
            st = self._get(wid)
            if st.policy is None:
                raise NotFoundError(
                    f"workload {wid} has no policy yet (it is learning: `stockade policy generate`)"
                )
            return dump_policy(st.policy)

    # -- views -------------------------------------------------------------------------------------
    def list(self) -> list[dict[str, Any]]:
        """Every workload (module docstring), sorted by id."""
        with self._lock:
            return [self.describe(st) for st in sorted(self.workloads.values(), key=lambda s: s.id)]

    def show(self, wid: str) -> dict[str, Any]:
        """One workload with its profile summary and mode history."""
        with self._lock:
            st = self._get(wid)
            out = self.describe(st)
            changes = self.store.list_mode_changes(wid) if self.store is not None else []
            out["history"] = [
                {
                    "time": format_time_ns(c.time_ns),
                    "old": c.old,
                    "new": c.new,
                    "who": c.who,
                    "why": c.why,
                    "forced": c.forced,
                }
                for c in changes
            ]
            return out

    def describe(self, st: WorkloadState) -> dict[str, Any]:
        """A workload as the CLI and API show it."""
        r = st.ref
        learner = st.learner()
        now = self._now()
        prof = learner.profile if learner is not None else None
        return {
            "id": r.id,
            "kind": r.kind,
            "namespace": r.namespace,
            "owner_kind": r.owner_kind,
            "owner": r.owner,
            "image_repository": r.image_repository or _repo_of(st),
            "mode": st.mode,
            "mode_since": format_time_ns(st.mode_since_ns),
            "containers": sorted(st.containers),
            "container_names": sorted(
                tr.info.name or tr.running.full_id[:12] for tr in st.containers.values()
            ),
            "image_digest": st.digest or None,
            "policy": st.policy.metadata.name if st.policy is not None else None,
            "policy_source": st.policy_source,
            "anomaly_model": self.anomaly.describe(r.id) if self.anomaly is not None else None,
            "profile": None
            if prof is None
            else {
                "version": prof.version,
                "entries": prof.size(),
                "observations": prof.observations,
                "confidence": round(confidence(prof, now), 3),
                "under_observed": under_observed(
                    prof, now, min_observations=self.zt.promotion.min_observations
                ),
                "new_in_version": new_since_base(prof) if prof.version > 1 else [],
            },
            "new_by_digest": {d: items[-50:] for d, items in st.new_by_digest.items()},
            "enforcement": (
                self.enforcement.status()["containers"].get(next(iter(st.containers), ""), None)
                if self.enforcement is not None and st.containers
                else None
            ),
            "warnings": self._warnings(st),
        }

    def profile(self, wid: str) -> dict[str, Any]:
        """The workload's profile of its newest image digest (Profile.to_dict)."""
        with self._lock:
            st = self._get(wid)
            return self._profile_for_policy(st).to_dict()

    def status(self) -> dict[str, Any]:
        """What `stockade status` shows of zero trust."""
        with self._lock:
            modes = Counter(st.mode for st in self.workloads.values())
            return {
                "workloads": len(self.workloads),
                "modes": {m: modes.get(m, 0) for m in MODES},
                "counters": dict(self.stats),
                "enforcement": self.enforcement.status() if self.enforcement is not None else None,
                "anomaly": self.anomaly.status() if self.anomaly is not None else None,
            }


#: what a new image version did beyond its base, kept per digest (the first ones: a report, not a log)
MAX_NEW_PER_DIGEST = 200


def _note_new(st: WorkloadState, digest: str, items: list[str]) -> None:
    noted = st.new_by_digest.setdefault(digest, [])
    for item in items:
        if len(noted) >= MAX_NEW_PER_DIGEST:
            return
        if item not in noted:
            noted.append(item)


def _repo_of(st: WorkloadState) -> str | None:
    for tr in st.containers.values():
        return tr.info.image_repository
    return None
