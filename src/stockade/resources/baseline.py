"""The learned baseline of each workload's resource use: what is normal for its containers.

Per workload (:mod:`stockade.behavior.workload`: replicas share one) and per metric
(:data:`~stockade.resources.metrics.METRICS`), a workload is **learning** until it has been
sampled for ``resources.learn_s`` and has given at least ``resources.min_samples`` samples (of all
its containers together); the latest ``resources.baseline_samples`` values of each metric are kept
meanwhile, and nothing alerts. Then the baseline is **ready** and **frozen**: per metric, its
median, its "high" value (``resources.percentile`` of the learned values, the 99th by default) and
the number of values; nothing more is learned. A frozen baseline is stored
(:class:`~stockade.storage.resources.BaselineRecord`) and survives restarts; forgetting it
(:meth:`~stockade.storage.resources.ResourceStore.delete_baseline`, ``stockade resources relearn``)
makes the workload learn again.

Why frozen: a baseline that kept learning the values under its limit would follow a miner that
ramps up, or one that stays just under the limit, until it is normal; and after a restart it would
learn again from whatever the workload is doing then.

A metric's **limit** is ``max(high * factor, high + floor)``, with the metric's ``factor`` and
``floor`` (``resources.metrics``) as configured now (so changing them applies to learned baselines
too). The floor keeps an idle workload (a high of 0) from calling every blip a deviation.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from stockade.config import ResourceMetricConfig, ResourcesConfig
from stockade.model.timeutil import format_time_ns
from stockade.resources.metrics import METRICS, metric_value
from stockade.storage.resources import BaselineRecord, ResourceSample

__all__ = ["Baseline", "Limit", "percentile"]


def percentile(ordered: list[float], p: float) -> float:
    """The `p`-th percentile (0-100) of sorted values, linearly interpolated; 0.0 for none."""
    if not ordered:
        return 0.0
    k = (len(ordered) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass(frozen=True, slots=True)
class Limit:
    """One metric's baseline: median, high value, the limit above which a value deviates, and how
    many values it was learned from."""

    p50: float
    high: float
    limit: float
    samples: int

    def to_dict(self) -> dict[str, Any]:
        """As the API and alerts show it."""
        return {
            "p50": round(self.p50, 6),
            "high": round(self.high, 6),
            "limit": round(self.limit, 6),
            "samples": self.samples,
        }


class Baseline:
    """One workload's baseline (module docstring)."""

    def __init__(self, workload: str, cfg: ResourcesConfig, first_ns: int) -> None:
        self.workload = workload
        self.cfg = cfg
        #: when the workload was first sampled (learning began)
        self.first_ns = first_ns
        #: when learning ended (None: still learning)
        self.ready_ns: int | None = None
        #: samples learned (of every container of the workload)
        self.samples = 0
        self._values: dict[str, deque[float]] = {m: deque(maxlen=cfg.baseline_samples) for m in METRICS}
        #: per metric (p50, high, values), computed when learning ends (or on demand while learning)
        self._stats: dict[str, tuple[float, float, int]] = {}
        self._dirty = False

    @classmethod
    def from_record(cls, rec: BaselineRecord, cfg: ResourcesConfig) -> Baseline:
        """A frozen baseline as it was stored."""
        b = cls(rec.workload, cfg, rec.first_ns)
        b.ready_ns, b.samples = rec.ready_ns, rec.samples
        for m, st in rec.metrics.items():
            if m in METRICS:
                b._stats[m] = (float(st["p50"]), float(st["high"]), int(st["samples"]))
        b._values = {}
        return b

    def record(self) -> BaselineRecord:
        """The frozen baseline, to store (only once ready)."""
        assert self.ready_ns is not None, "a learning baseline is not stored"
        metrics = {m: {"p50": p50, "high": high, "samples": n} for m, (p50, high, n) in self._stats.items()}
        return BaselineRecord(self.workload, self.first_ns, self.ready_ns, self.samples, metrics)

    @property
    def frozen(self) -> bool:
        """Whether learning has ended."""
        return self.ready_ns is not None

    def advance(self, now_ns: int) -> bool:
        """Freeze the baseline when it has learned enough by `now_ns`; whether it froze just now."""
        if self.ready_ns is not None:
            return False
        learned_s = (now_ns - self.first_ns) / 1e9
        if learned_s < self.cfg.learn_s or self.samples < self.cfg.min_samples:
            return False
        self._compute()
        self.ready_ns = now_ns
        self._values = {}
        return True

    def learn(self, sample: ResourceSample) -> bool:
        """Take a sample's values into a learning baseline (a frozen one learns nothing); whether
        it was learned."""
        if self.ready_ns is not None:
            return False
        self.samples += 1
        for m, values in self._values.items():
            v = metric_value(sample, m)
            if v is not None:
                values.append(v)
                self._dirty = True
        return True

    def _compute(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        for m, values in self._values.items():
            ordered = sorted(values)
            if ordered:
                self._stats[m] = (
                    percentile(ordered, 50.0),
                    percentile(ordered, self.cfg.percentile),
                    len(ordered),
                )

    def limit(self, metric: str) -> Limit | None:
        """The metric's baseline (while learning: of the values so far); None before it has a value."""
        self._compute()
        st = self._stats.get(metric)
        if st is None:
            return None
        p50, high, n = st
        mc: ResourceMetricConfig = getattr(self.cfg.metrics, metric)
        return Limit(p50=p50, high=high, limit=max(high * mc.factor, high + mc.floor), samples=n)

    def limits(self) -> dict[str, Limit]:
        """Every metric's baseline that has a value."""
        out = {}
        for m in METRICS:
            lim = self.limit(m)
            if lim is not None:
                out[m] = lim
        return out

    def to_dict(self) -> dict[str, Any]:
        """As the API shows it: state, samples, since when, and every metric's baseline."""
        return {
            "state": "ready" if self.frozen else "learning",
            "samples": self.samples,
            "since": format_time_ns(self.first_ns),
            "ready": format_time_ns(self.ready_ns) if self.ready_ns is not None else None,
            "metrics": {m: lim.to_dict() for m, lim in self.limits().items()},
        }
