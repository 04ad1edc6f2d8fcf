"""The learned baseline of each workload's resource use: what is normal for its containers.

Per workload (:mod:`stockade.behavior.workload`: replicas share one) and per metric
(:data:`METRICS`), the latest ``resources.baseline_samples`` normal values are kept. The baseline
says, per metric, its median, its "high" value (``resources.percentile`` of the kept values, the
99th by default) and its **limit**: ``max(high * factor, high + floor)`` with the metric's
``factor`` and ``floor`` (``resources.metrics``). A floor keeps an idle workload (a high of 0) from
calling every blip a deviation.

A workload is **learning** until it has been seen for ``resources.learn_s`` and has given at least
``resources.min_samples`` samples; until then every value is learned and nothing alerts. Once
**ready**, a value above its limit is not learned (a sustained deviation never becomes normal),
values at or under it are, so the baseline follows a workload's slow, legitimate changes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from stockade.config import ResourceMetricConfig, ResourcesConfig
from stockade.model.timeutil import format_time_ns
from stockade.resources.metrics import METRICS, metric_value
from stockade.storage.resources import ResourceSample

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
        #: when the workload was first sampled
        self.first_ns = first_ns
        #: samples learned (of every container of the workload)
        self.samples = 0
        self._values: dict[str, deque[float]] = {m: deque(maxlen=cfg.baseline_samples) for m in METRICS}
        self._limits: dict[str, Limit] = {}
        self._dirty: set[str] = set()

    def _metric_cfg(self, metric: str) -> ResourceMetricConfig:
        found: ResourceMetricConfig = getattr(self.cfg.metrics, metric)
        return found

    def ready(self, now_ns: int) -> bool:
        """Whether the workload has been learned long enough to alert (module docstring)."""
        learned_s = (now_ns - self.first_ns) / 1e9
        return learned_s >= self.cfg.learn_s and self.samples >= self.cfg.min_samples

    def limit(self, metric: str) -> Limit | None:
        """The metric's baseline now; None before it has a value."""
        if metric in self._dirty:
            self._dirty.discard(metric)
            values = sorted(self._values[metric])
            if values:
                mc = self._metric_cfg(metric)
                high = percentile(values, self.cfg.percentile)
                self._limits[metric] = Limit(
                    p50=percentile(values, 50.0),
                    high=high,
                    limit=max(high * mc.factor, high + mc.floor),
                    samples=len(values),
                )
        return self._limits.get(metric)

    def limits(self) -> dict[str, Limit]:
        """Every metric's baseline that has a value."""
        out = {}
        for m in METRICS:
            lim = self.limit(m)
            if lim is not None:
                out[m] = lim
        return out

    def learn(self, sample: ResourceSample, skip: Iterable[str] = ()) -> None:
        """Take a sample's values into the baseline, but those of the metrics in `skip` (deviating)."""
        self.samples += 1
        left_out = set(skip)
        for m in METRICS:
            if m in left_out:
                continue
            v = metric_value(sample, m)
            if v is not None:
                self._values[m].append(v)
                self._dirty.add(m)

    def to_dict(self, now_ns: int) -> dict[str, Any]:
        """As the API shows it: state, samples, since when, and every metric's baseline."""
        return {
            "state": "ready" if self.ready(now_ns) else "learning",
            "samples": self.samples,
            "since": format_time_ns(self.first_ns),
            "metrics": {m: lim.to_dict() for m, lim in self.limits().items()},
        }
