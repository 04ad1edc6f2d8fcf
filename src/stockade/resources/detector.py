"""Sustained deviations: a container's metric above its workload's limit for a whole window.

Per container and metric, the samples of the last ``resources.window_s`` seconds are kept (time,
value, above the limit or not). A deviation **starts** (one :class:`Finding`, hence one alert) when

* the container has been sampled for at least the window,
* at least ``resources.min_fraction`` of the samples in the window are above the limit, and
* the latest one is,

so a spike shorter than the window never alerts, and one sample under the limit (a burner
descheduled on a busy node) does not hide a deviation. It **ends** when no sample in the window is
above the limit; the next deviation of the same metric alerts again. While it lasts, nothing more
is raised.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from stockade.config import ResourcesConfig
from stockade.resources.baseline import Limit
from stockade.resources.metrics import METRICS, metric_value
from stockade.storage.resources import ResourceSample

__all__ = ["MAX_EVIDENCE", "Detector", "Finding"]

#: at most this many samples are kept as a finding's evidence (the latest)
MAX_EVIDENCE = 60


@dataclass(frozen=True, slots=True)
class Finding:
    """A sustained deviation that started: the container, its workload, the metric, the latest
    value, the baseline it deviates from and the samples of the window (time ns, value)."""

    container_id: str
    workload: str
    metric: str
    time_ns: int
    value: float
    baseline: Limit
    evidence: tuple[tuple[int, float], ...]
    #: samples in the window above the limit, of all samples in it
    above: int
    total: int
    window_s: float


@dataclass(slots=True)
class _Track:
    first_ns: int
    window: deque[tuple[int, float, bool]] = field(default_factory=deque)
    #: samples in the window above the limit
    over: int = 0
    active: bool = False


class Detector:
    """Sustained deviations of every container and metric (module docstring)."""

    def __init__(self, cfg: ResourcesConfig) -> None:
        self.cfg = cfg
        self._window_ns = int(cfg.window_s * 1e9)
        self._tracks: dict[tuple[str, str], _Track] = {}
        #: the metrics whose deviations are raised (the others are only shown as deviating)
        self.alerting = frozenset(m for m in METRICS if getattr(cfg.metrics, m).alert)

    def observe(self, sample: ResourceSample, workload: str, limits: Mapping[str, Limit]) -> list[Finding]:
        """One sample of a container whose workload's limits (once its baseline is ready) are
        `limits`: the deviations of alerting metrics that start with it."""
        found: list[Finding] = []
        t = sample.time_ns
        for metric in METRICS:
            value = metric_value(sample, metric)
            if value is None:
                continue
            lim = limits.get(metric)
            over = lim is not None and value > lim.limit
            track = self._tracks.get((sample.container_id, metric))
            if track is None:
                track = self._tracks[sample.container_id, metric] = _Track(first_ns=t)
            finding = self._step(track, t, value, over)
            if finding and lim is not None and metric in self.alerting:
                found.append(self._finding(sample, workload, metric, value, lim, track))
        return found

    def _step(self, track: _Track, t: int, value: float, over: bool) -> bool:
        """Add a sample to a track; whether a deviation starts with it."""
        w = track.window
        w.append((t, value, over))
        track.over += over
        while w[0][0] < t - self._window_ns:
            track.over -= w.popleft()[2]
        n_over = track.over
        if track.active:
            if n_over == 0:
                track.active = False  # ended: the next one alerts again
            return False
        if over and t - track.first_ns >= self._window_ns and n_over >= self.cfg.min_fraction * len(w):
            track.active = True
            return True
        return False

    def _finding(
        self, sample: ResourceSample, workload: str, metric: str, value: float, lim: Limit, track: _Track
    ) -> Finding:
        w = list(track.window)[-MAX_EVIDENCE:]
        return Finding(
            container_id=sample.container_id,
            workload=workload,
            metric=metric,
            time_ns=sample.time_ns,
            value=value,
            baseline=lim,
            evidence=tuple((t, v) for t, v, _ in w),
            above=track.over,
            total=len(track.window),
            window_s=self.cfg.window_s,
        )

    def deviating(self, container_id: str) -> list[str]:
        """The metrics of a container in a sustained deviation now."""
        return [m for m in METRICS if (t := self._tracks.get((container_id, m))) is not None and t.active]

    def keep_only(self, container_ids: Iterable[str]) -> None:
        """Forget every container but these (those no longer running)."""
        keep = set(container_ids)
        for key in [k for k in self._tracks if k[0] not in keep]:
            del self._tracks[key]
