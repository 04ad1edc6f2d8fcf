"""Certificates at runtime: every ``certs.interval_s`` the node's certificates are scanned (files
under the known locations of the host's root and of each running container's
``/proc/<pid>/root``; the certificates served on the listening ports of the host's network
namespace and of each container's, over loopback only: :mod:`stockade.certs`), kept for the API
(``GET /api/v1/certs``), and those within ``certs.warn_days`` of their expiry or past it raise an
alert (:mod:`stockade.certs.alerts`), passed to the pipeline like the other builtin alerts.

One alert per certificate (its SHA-256) per place (the host or one container) per UTC day, listing
every location it was found at there. The certificates of trust stores (the OS's CA bundle, Java's
cacerts, certifi, ...) are listed and counted (``summary.trust_store``, ``summary.trust_store_expired``)
but never alerted one by one.

A round runs in the monitor's own thread (``stockade-certs``); :meth:`CertMonitor.tick` is one
round (tests call it directly). A failing round is counted and logged, and the next one runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from stockade.behavior.workload import workload_of_event
from stockade.certs.alerts import expiry_alert, expiry_rule
from stockade.certs.discover import Limits, scan_root
from stockade.certs.record import CertRecord
from stockade.certs.served import netns_id, scan_served
from stockade.config import CertsConfig, StockadeConfig
from stockade.errors import StockadeError
from stockade.model.alert import Alert
from stockade.model.clock import SYSTEM, Clock
from stockade.model.errorlog import ErrorLog
from stockade.runtime.rounds import Rounds
from stockade.sensor.containers.discover import RunningContainer, running_containers
from stockade.sensor.containers.info import ContainerInfo
from stockade.sensor.containers.resolver import ContainerResolver

__all__ = ["CertMonitor", "NoCerts", "limits_of"]

log = logging.getLogger("stockade.certs")

Emit = Callable[[list[Alert]], object]
#: problems kept for the API (the latest round's)
_MAX_PROBLEMS = 500


class NoCerts(StockadeError):
    """A certificates request to an instance that scans none (not on a node, or disabled)."""

    http_status = 409
    problem_type = "no-certs"
    title = "Certificates are not scanned here"


def limits_of(cc: CertsConfig) -> Limits:
    """The disk scan's bounds from the ``certs`` section."""
    return Limits(tuple(cc.locations), cc.max_depth, cc.max_entries, cc.max_file_bytes, tuple(cc.exclude))


class CertMonitor:
    """Scans, keeps and alerts on the node's certificates (module docstring)."""

    def __init__(
        self,
        cfg: StockadeConfig,
        emit: Emit,
        *,
        clock: Clock = SYSTEM,
        resolver: ContainerResolver | None = None,
        discover: Callable[[], list[RunningContainer]] = running_containers,
        host_root: str = "/",
    ) -> None:
        self.cc = cfg.certs
        self.hostname = cfg.hostname
        self.emit = emit
        self.clock = clock
        self.resolver = resolver or ContainerResolver()
        self._discover = discover
        self.host_root = host_root
        self._lock = threading.Lock()
        self._records: list[CertRecord] = []
        self._problems: list[str] = []
        self._counts: Counter[str] = Counter()
        self._scanned_at: float | None = None
        #: (sha256, container id or "") -> the UTC day number it was last alerted on
        self._alerted: dict[tuple[str, str], int] = {}
        self.stats: Counter[str] = Counter()
        self.errors = ErrorLog("certs", logger="stockade.certs", clock=clock)
        self._rounds = Rounds(
            "stockade-certs", self.tick, lambda: self.cc.interval_s, self.stats, self.errors
        )
        self.last_round_s = 0.0

    # -- start and stop ----------------------------------------------------------------------------
    def start(self) -> None:
        """Scan in the monitor's thread, now and every ``certs.interval_s``."""
        self._rounds.start()

    def close(self) -> None:
        """Stop (the round under way finishes)."""
        self._rounds.close(timeout_s=60)

    # -- one round ---------------------------------------------------------------------------------
    def tick(self) -> list[Alert]:
        """Scan the host and every running container, keep what was found, raise the alerts due."""
        t0 = time.monotonic()
        records: list[CertRecord] = []
        problems: list[str] = []
        counts: Counter[str] = Counter()
        fields: dict[str, dict[str, Any]] = {}
        host_ns = netns_id(None)
        if self.cc.host:
            self._scan(None, ("", None), records, problems, counts, host_served=True)
        seen_ns: set[int | None] = {host_ns}
        for c in self._discover():
            info = self._info(c)
            fields[c.full_id] = info.fields()
            ns = netns_id(c.pid)
            served = ns is not None and ns not in seen_ns
            seen_ns.add(ns)
            self._scan(c.pid, (c.full_id, info.name), records, problems, counts, host_served=served)
            counts["containers"] += 1
        now = self.clock.time()
        with self._lock:
            self._records, self._problems = records, problems[:_MAX_PROBLEMS]
            self._counts, self._scanned_at = counts, now
        alerts = self._alerts(records, now, fields)
        self.stats["rounds"] += 1
        self.last_round_s = time.monotonic() - t0
        return alerts

    def rescan(self) -> None:
        """Start a round now (in the monitor's thread) instead of at the next interval."""
        self._rounds.wake()

    def _info(self, c: RunningContainer) -> ContainerInfo:
        return self.resolver.by_id(c.full_id, c.runtime)

    def _scan(
        self,
        pid: int | None,
        container: tuple[str, str | None],
        records: list[CertRecord],
        problems: list[str],
        counts: Counter[str],
        *,
        host_served: bool,
    ) -> None:
        where = f"container {container[1] or container[0][:12]}" if container[0] else "host"
        if self.cc.disk:
            root = self.host_root if pid is None else f"/proc/{pid}/root"
            disk = scan_root(root, limits_of(self.cc), container=container)
            records.extend(disk.certs)
            problems.extend(f"{where}: {p}" for p in disk.problems)
            counts.update(disk.counts)
        if self.cc.served and host_served:
            served = scan_served(pid, timeout=self.cc.handshake_timeout_s, container=container)
            records.extend(served.certs)
            problems.extend(f"{where}: {p}" for p in served.problems)
            counts.update({f"served_{k}": v for k, v in served.counts.items()})

    def _alerts(
        self, records: list[CertRecord], now: float, fields: dict[str, dict[str, Any]]
    ) -> list[Alert]:
        day = int(now // 86400)
        groups: dict[tuple[str, str], list[CertRecord]] = {}
        for r in records:
            if not r.place.trust_store:
                groups.setdefault((r.sha256, r.place.container_id), []).append(r)
        alerts: list[Alert] = []
        for key, recs in groups.items():
            rule = expiry_rule(recs[0], now, self.cc.warn_days)
            if rule is None or self._alerted.get(key) == day:
                continue
            cf = fields.get(key[1], {})
            a = expiry_alert(
                recs[0],
                rule,
                now,
                self.hostname,
                locations=sorted({r.place.location for r in recs}),
                container_fields=cf,
                workload=workload_of_event(cf).id if cf else None,
            )
            passed = self.emit([a])
            self._alerted[key] = day
            self.stats["alerts"] += 1
            if isinstance(passed, int) and passed == 0:
                self.stats["muted"] += 1
            alerts.append(a)
            log.info("%s", a.output)
        for k in [k for k, d in self._alerted.items() if d != day]:
            del self._alerted[k]
        return alerts

    # -- views (the API's) -------------------------------------------------------------------------
    def latest(self, expiring_days: float | None = None) -> dict[str, Any]:
        """The latest round's certificates (those expiring within `expiring_days`, expired ones
        included, when given), a summary and the problems."""
        with self._lock:
            records, problems, counts, at = self._records, self._problems, self._counts, self._scanned_at
        now = self.clock.time()
        items = [
            r.to_dict(now) for r in records if expiring_days is None or r.days_left(now) <= expiring_days
        ]
        trust = [r for r in records if r.place.trust_store]
        return {
            "scanned_at": at,
            "items": items,
            "total": len(items),
            "summary": {
                "certificates": len(records),
                "trust_store": len(trust),
                "trust_store_expired": sum(1 for r in trust if r.not_after_ts <= now),
                "expired": sum(1 for r in records if not r.place.trust_store and r.not_after_ts <= now),
                "expiring": sum(
                    1
                    for r in records
                    if not r.place.trust_store and 0 < r.days_left(now) <= self.cc.warn_days
                ),
                "warn_days": self.cc.warn_days,
                "counts": dict(counts),
            },
            "problems": list(problems),
        }

    def status(self) -> dict[str, Any]:
        """What `stockade status` shows of certificate scanning."""
        with self._lock:
            n = len(self._records)
        return {
            "interval_s": self.cc.interval_s,
            "certificates": n,
            "last_round_s": round(self.last_round_s, 3),
            "counters": dict(self.stats),
            "errors": self.errors.errors,
        }
