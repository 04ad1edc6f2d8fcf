"""What the node knows of its containers' resource use: the latest sample of each, the baseline
of each workload, the deviations under way and the alerts raised. Pure state, no threads and no
I/O: :mod:`stockade.runtime.resources` samples, stores and drives it under one lock.

Each sample (:meth:`ResourceWatch.observe`) is learned into its workload's baseline while that
learns (:mod:`stockade.resources.baseline`), and checked against it once it is frozen
(:mod:`stockade.resources.detector`). After a restart, the stored frozen baselines are loaded
(:meth:`ResourceWatch.load`) and those still learning learn the stored samples again
(:meth:`ResourceWatch.seed`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stockade.config import ResourcesConfig
from stockade.model.alert import Alert
from stockade.resources.alerts import resource_alert
from stockade.resources.baseline import Baseline
from stockade.resources.detector import Detector
from stockade.resources.metrics import METRICS, metric_value
from stockade.storage.resources import BaselineRecord, ResourceSample

__all__ = ["Owner", "ResourceWatch"]


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose a container is: its workload (None: not described by its runtime yet), its name and
    the ``container.*`` / ``k8s.*`` fields its alerts carry."""

    workload: str | None
    name: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


class ResourceWatch:
    """Latest samples, baselines, deviations and alert counts (module docstring)."""

    def __init__(self, cfg: ResourcesConfig, hostname: str) -> None:
        self.cfg = cfg
        self.hostname = hostname
        self.baselines: dict[str, Baseline] = {}
        self.detector = Detector(cfg)
        #: container full id -> its latest sample (running containers only)
        self.latest: dict[str, ResourceSample] = {}
        self.owners: dict[str, Owner] = {}
        #: resource alerts raised per container (not muted), since start
        self.alerts: Counter[str] = Counter()
        #: baselines that finished learning and are not stored yet (the caller stores and clears)
        self.frozen: list[Baseline] = []

    def _baseline(self, workload: str, time_ns: int) -> Baseline:
        b = self.baselines.get(workload)
        if b is None:
            b = self.baselines[workload] = Baseline(workload, self.cfg, time_ns)
        return b

    def _learn(self, s: ResourceSample, workload: str) -> tuple[Baseline, bool]:
        """The sample's workload baseline, having learned the sample if it still learns (whether
        it did)."""
        b = self._baseline(workload, s.time_ns)
        if b.advance(s.time_ns):
            self.frozen.append(b)
        return b, b.learn(s)

    def load(self, records: Iterable[BaselineRecord]) -> None:
        """Take stored (frozen) baselines."""
        for rec in records:
            self.baselines[rec.workload] = Baseline.from_record(rec, self.cfg)

    def seed(self, samples: Iterable[ResourceSample]) -> int:
        """Learn stored samples (oldest first) into the baselines still learning, as if they were
        taken now; how many were learned."""
        n = 0
        for s in samples:
            if s.workload is None:
                continue
            n += self._learn(s, s.workload)[1]
        return n

    def forget(self, workload: str) -> bool:
        """Drop a workload's baseline (it learns again from its next sample); whether it had one."""
        return self.baselines.pop(workload, None) is not None

    def observe(self, samples: list[ResourceSample], owners: Mapping[str, Owner]) -> list[Alert]:
        """One round of samples of the running containers (attributed to their workloads): the
        alerts for the deviations that start with it. Baselines that finished learning with it are
        added to :attr:`frozen` (for the caller to store)."""
        alerts: list[Alert] = []
        for s in samples:
            if s.workload is None:
                continue
            b, _ = self._learn(s, s.workload)
            limits = b.limits() if b.frozen else {}
            owner = owners.get(s.container_id) or Owner(s.workload)
            found = self.detector.observe(s, s.workload, limits)
            alerts += [resource_alert(f, owner.fields, self.hostname) for f in found]
        self.latest = {s.container_id: s for s in samples}
        self.owners = {cid: o for cid, o in owners.items() if cid in self.latest}
        self.detector.keep_only(self.latest)
        for cid in [cid for cid in self.alerts if cid not in self.latest]:
            del self.alerts[cid]
        return alerts

    def rows(self) -> list[dict[str, Any]]:
        """The latest sample of every running container with its risk columns, by workload then
        name: ``baseline`` (its workload's, None before it has one), ``risk`` (per metric, the
        value over its limit: 1.0 is the limit; None while the baseline learns), ``deviating``
        (metrics in a sustained deviation) and ``alerts`` (resource alerts raised since start)."""
        out = []
        for cid, s in self.latest.items():
            row = s.to_dict()
            b = self.baselines.get(s.workload) if s.workload is not None else None
            limits = b.limits() if b is not None and b.frozen else {}
            risk: dict[str, float | None] = {}
            for m in METRICS:
                v, lim = metric_value(s, m), limits.get(m)
                risk[m] = (
                    round(v / lim.limit, 3) if v is not None and lim is not None and lim.limit > 0 else None
                )
            row["baseline"] = b.to_dict() if b is not None else None
            row["risk"] = risk
            row["deviating"] = self.detector.deviating(cid)
            row["alerts"] = self.alerts[cid]
            out.append(row)
        out.sort(key=lambda r: (r["workload"] or "~", r["container_name"] or "", r["container_id"]))
        return out
