"""Time helpers: Falco times are nanoseconds since the epoch, printed as RFC 3339 with ns.

:func:`event_time_ns` is the one definition of an event's time (the engine's alerts, the stored
events, the ``evt.time`` / ``evt.rawtime`` / ``jevt.time`` fields all read it).
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

#: RFC 3339 / ISO 8601 at the start of a text; the fraction takes any number of digits (only the
#: strict parser limits it to nine)
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|z|[+-]\d{2}:?\d{2})?"
)


#: where a Kubernetes audit event keeps its time, in the order read (as Falco's k8saudit plugin):
#: v1's stageTimestamp, then the older fields
K8S_AUDIT_TIME_KEYS = ("stageTimestamp", "requestReceivedTimestamp", "timestamp")


def now_ns() -> int:
    """The wall clock in ns since the epoch."""
    return time.time_ns()


def event_time_ns(data: Mapping[str, Any], source: str = "syscall") -> int | None:
    """An event's time in ns since the epoch; None when it carries none.

    A syscall event's is ``evt.time``, else ``evt.rawtime`` (integer ns). A Kubernetes audit
    event's (``source="k8s_audit"``) is the first of :data:`K8S_AUDIT_TIME_KEYS` that holds an
    RFC 3339 time, else an integer ``evt.time`` (a flat event of ``ka.*`` keys)."""
    if source == "k8s_audit":
        for k in K8S_AUDIT_TIME_KEYS:
            v = data.get(k)
            if isinstance(v, str) and (ns := parse_time_ns(v)) is not None:
                return ns
        t = data.get("evt.time")
        return t if type(t) is int else None
    t = data.get("evt.time")
    if type(t) is int:
        return t
    t = data.get("evt.rawtime")
    return t if type(t) is int else None


def parse_time_ns(value: str) -> int | None:
    """RFC 3339 / ISO 8601 with up to nanoseconds -> ns since epoch; None if not a time.

    Strict: the whole text is the time, with at most nine fraction digits (what users type and
    what the event formats carry)."""
    m = _RFC3339.fullmatch(value.strip())
    if m is None or (m[7] is not None and len(m[7]) > 9):
        return None
    return _match_ns(m)


def parse_runtime_time_ns(value: object) -> int | None:
    """A time in container runtime metadata (podman, runc, CRI annotations, Docker) -> ns since epoch.

    Lenient, as Go writes times: nanoseconds or more fraction digits (cut to nine), any timezone
    offset, text after the time ignored. Go's zero time (year 1) means unknown: None, as is
    anything that is not a string holding a time."""
    if not isinstance(value, str):
        return None
    m = _RFC3339.match(value.strip())
    if m is None or int(m.group(1)) <= 1:
        return None
    return _match_ns(m)


def _match_ns(m: re.Match[str]) -> int | None:
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=UTC)
    except ValueError:
        return None
    ns = int(dt.timestamp()) * 1_000_000_000
    if frac:
        ns += int(frac[:9].ljust(9, "0"))
    if tz and tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        hh, mm = int(tz[1:3]), int(tz[-2:])
        ns -= sign * (hh * 3600 + mm * 60) * 1_000_000_000
    return ns


def format_time_ns(ns: int) -> str:
    """ns since epoch -> '2024-11-22T18:13:20.123456789Z' (Falco's JSON time)."""
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def parse_duration_s(value: str) -> float:
    """'90s', '15m', '2h', '7d', or a number of seconds -> seconds."""
    v = value.strip().lower()
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    for u in ("ms", "s", "m", "h", "d", "w"):
        if v.endswith(u) and v[: -len(u)].replace(".", "", 1).isdigit():
            return float(v[: -len(u)]) * units[u]
    return float(v)
