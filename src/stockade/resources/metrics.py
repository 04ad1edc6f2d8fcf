"""The metrics of a resource sample that have a baseline and may alert, their units, and how
values are written for people (alerts, `stockade top`)."""

from __future__ import annotations

from typing import Final

from stockade.storage.resources import ResourceSample

__all__ = ["METRICS", "UNITS", "human", "human_bytes", "metric_value"]

#: metric (a key of ``resources.metrics``, in its order) -> the sample's attribute that holds it
METRICS: Final[dict[str, str]] = {
    "cpu": "cpu_cores",
    "memory": "memory_bytes",
    "pids": "pids",
    "open_files": "open_files",
    "rx_bps": "rx_bps",
    "tx_bps": "tx_bps",
}
#: what a metric's values count
UNITS: Final[dict[str, str]] = {
    "cpu": "cores",
    "memory": "bytes",
    "pids": "tasks",
    "open_files": "descriptors",
    "rx_bps": "bytes/s",
    "tx_bps": "bytes/s",
}


def metric_value(sample: ResourceSample, metric: str) -> float | None:
    """The value of `metric` in `sample` (None: not measured)."""
    v = getattr(sample, METRICS[metric])
    return float(v) if v is not None else None


def human_bytes(n: float) -> str:
    """1536 -> '1.5KiB', 0 -> '0B'."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{size:.1f}TiB"  # pragma: no cover - the loop returns


def human(metric: str, value: float | None) -> str:
    """A metric's value with its unit, for people: '0.98 cores', '12.0MiB', '1.0MiB/s', '37'."""
    if value is None:
        return "-"
    unit = UNITS[metric]
    if unit == "cores":
        return f"{value:.2f} cores"
    if unit == "bytes":
        return human_bytes(value)
    if unit == "bytes/s":
        return human_bytes(value) + "/s"
    return f"{value:.0f}"
