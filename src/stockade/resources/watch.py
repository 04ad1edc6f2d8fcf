"""What the node knows of its containers' resource use: the latest sample of each, the baseline
of each workload, the deviations under way and the alerts raised. Pure state, no threads and no
I/O: :mod:`stockade.runtime.resources` samples, stores and drives it under one lock.

Each round of samples (:meth:`ResourceWatch.observe`) is first checked against the baselines as
they were (:mod:`stockade.resources.detector`), then learned into them
(:mod:`stockade.resources.baseline`: deviating values left out), so replicas sampled in the same
round are judged alike. :meth:`ResourceWatch.seed` learns stored samples again after a restart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stockade.config import ResourcesConfig
from stockade.model.alert import Alert
from stockade.resources.alerts import resource_alert
from stockade.resources.baseline import Baseline, Limit
from stockade.resources.detector import Detector
from stockade.resources.metrics import METRICS, metric_value
from stockade.storage.resources import ResourceSample

__all__ = ["Owner", "ResourceWatch"]


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose a container is: its workload (None: not described by its runtime yet), its name and
    the ``container.*`` / ``k8s.*`` fields its alerts carry."""

    workload: str | None
    name: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)


def _above(sample: ResourceSample, limits: Mapping[str, Limit]) -> set[str]:
    out = set()
    for m, lim in limits.items():
        v = metric_value(sample, m)
        if v is not None and v > lim.limit:
            out.add(m)
    return out


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

    def _baseline(self, workload: str, time_ns: int) -> Baseline:
        b = self.baselines.get(workload)
        if b is None:
            b = self.baselines[workload] = Baseline(workload, self.cfg, time_ns)
        return b

    def _limits(self, b: Baseline, time_ns: int) -> dict[str, Limit]:
        return b.limits() if b.ready(time_ns) else {}

    def seed(self, samples: Iterable[ResourceSample]) -> int:
        """Learn stored samples (oldest first) as if they were being taken now; how many."""
        n = 0
        for s in samples:
            if s.workload is None:
                continue
            b = self._baseline(s.workload, s.time_ns)
            b.learn(s, skip=_above(s, self._limits(b, s.time_ns)))
            n += 1
        return n

    def observe(self, samples: list[ResourceSample], owners: Mapping[str, Owner]) -> list[Alert]:
        """One round of samples of the running containers (attributed to their workloads):
        the alerts for the deviations that start with it."""
        alerts: list[Alert] = []
        above: dict[str, set[str]] = {}
        for s in samples:
            if s.workload is None:
                continue
            b = self._baseline(s.workload, s.time_ns)
            found, above[s.container_id] = self.detector.observe(s, s.workload, self._limits(b, s.time_ns))
            owner = owners.get(s.container_id) or Owner(s.workload)
            alerts += [resource_alert(f, owner.fields, self.hostname) for f in found]
        for s in samples:
            if s.workload is not None:
                self.baselines[s.workload].learn(s, skip=above.get(s.container_id, ()))
        self.latest = {s.container_id: s for s in samples}
        self.owners = {cid: o for cid, o in owners.items() if cid in self.latest}
        self.detector.keep_only(self.latest)
        for cid in [cid for cid in self.alerts if cid not in self.latest]:
            del self.alerts[cid]
        return alerts

    def rows(self, now_ns: int) -> list[dict[str, Any]]:
        """The latest sample of every running container with its risk columns, by workload then
        name: ``baseline`` (its workload's, None before it has one), ``risk`` (per metric, the
        value over its limit: 1.0 is the limit; None while the baseline learns), ``deviating``
        (metrics in a sustained deviation) and ``alerts`` (resource alerts raised since start)."""
        out = []
        for cid, s in self.latest.items():
            row = s.to_dict()
            b = self.baselines.get(s.workload) if s.workload is not None else None
            limits = self._limits(b, now_ns) if b is not None else {}
            risk: dict[str, float | None] = {}
            for m in METRICS:
                v, lim = metric_value(s, m), limits.get(m)
                risk[m] = (
                    round(v / lim.limit, 3) if v is not None and lim is not None and lim.limit > 0 else None
                )
            row["baseline"] = b.to_dict(now_ns) if b is not None else None
            row["risk"] = risk
            row["deviating"] = self.detector.deviating(cid)
            row["alerts"] = self.alerts[cid]
            out.append(row)
        out.sort(key=lambda r: (r["workload"] or "~", r["container_name"] or "", r["container_id"]))
        return out
