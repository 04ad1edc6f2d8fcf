"""What protects the node where the sensor runs, in `stockade up` and `stockade agent` alike: zero
trust (with its anomaly models), the resource monitor, the certificate scanner, the drift check and
the live inventory (with its network graph), built, started, refreshed and stopped in one place.

:meth:`NodeGuard.build` makes them as the configuration says (``zero_trust.enabled``,
``resources.enabled``) over a store of the node's own (profiles, modes, policies, resource samples)
and a pipeline whose ``ingest_alerts`` takes their alerts; :meth:`NodeGuard.syscalls_needed` adds
the syscalls zero trust needs to what the rules need; :meth:`NodeGuard.attach` gives zero trust the
sensor (its learning in the kernel) once it exists. The caller's housekeeping calls
:meth:`NodeGuard.tick` about every second; it refreshes zero trust every 2 s (running containers,
enforcement, promotion, saving).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from stockade.audit.chain import AuditLog
from stockade.behavior.ops import OPERATION_SYSCALLS
from stockade.config import StockadeConfig
from stockade.errors import StockadeError
from stockade.inventory.graph import FLOW_EVTTYPES
from stockade.inventory.service import InventoryService
from stockade.model.alert import Alert
from stockade.runtime.auditing import zero_trust_hook
from stockade.runtime.certwatch import CertMonitor
from stockade.runtime.driftwatch import DriftMonitor
from stockade.runtime.resources import ResourceMonitor
from stockade.runtime.zerotrust import KernelLearning, ZeroTrust
from stockade.storage.store import Store

__all__ = ["REFRESH_S", "NodeGuard", "chain_observers", "learns_in_kernel"]

log = logging.getLogger("stockade.runtime")

#: how often zero trust looks for containers, applies enforcement, promotes and saves
REFRESH_S = 2.0


class AlertIngest(Protocol):
    """Where the node's own alerts go (the pipeline: mutes, aggregation, sinks, store)."""

    def ingest_alerts(self, alerts: list[Alert], *, external: bool = ...) -> int:
        """Pass alerts raised on this node through the pipeline."""
        ...


def learns_in_kernel(cfg: StockadeConfig) -> bool:
    """Whether the sensor this configuration picks first learns in the kernel (eBPF)."""
    from stockade.sensor.registry import BACKENDS

    if cfg.sensor.backend not in ("auto", "ebpf"):
        return False
    try:
        return bool(BACKENDS.load("ebpf").learns_in_kernel)
    except StockadeError:
        return False


@dataclass
class NodeGuard:
    """Zero trust and the resource monitor of this node (module docstring)."""

    zt: ZeroTrust | None = None
    res: ResourceMonitor | None = None
    #: certificates on disk and served (certs.enabled), container drift (drift.enabled)
    certs: CertMonitor | None = None
    drift: DriftMonitor | None = None
    #: the live inventory and network graph (stockade.inventory.service), with inventory.enabled
    inv: InventoryService | None = None
    _last_refresh: float = 0.0

    @classmethod
    def build(
        cls, cfg: StockadeConfig, store: Store, pipeline: AlertIngest, audit: AuditLog | None = None
    ) -> NodeGuard:
        """The node's guard as configured, its state in `store`, its alerts to `pipeline`, its mode
        and policy changes to `audit`."""

        def emit(alerts: list[Alert]) -> int:
            # how many passed the mutes: the resource monitor counts the rest as muted
            return pipeline.ingest_alerts(alerts, external=False)

        g = cls()
        if cfg.zero_trust.enabled and cfg.sensor.backend != "none":
            from stockade.storage.behavior import BehaviorStore

            g.zt = ZeroTrust(cfg, BehaviorStore(store), emit)
            if audit is not None:
                g.zt.on_audit = zero_trust_hook(audit)
        if cfg.resources.enabled:
            from stockade.storage.resources import ResourceStore

            g.res = ResourceMonitor(cfg, ResourceStore(store), emit)
        if cfg.certs.enabled:
            g.certs = CertMonitor(cfg, emit)
        if cfg.drift.enabled:
            g.drift = DriftMonitor(cfg, emit)
        if cfg.inventory.enabled:
            from stockade.storage.inventory import InventoryStore

            resolver = g.zt.resolver if g.zt is not None else None
            g.inv = InventoryService(cfg, InventoryStore(store), resolver=resolver)
        return g

    def observer(self) -> Callable[[dict[str, Any]], list[Alert]] | None:
        """What sees every syscall event after the engine (the pipeline's observer): zero trust,
        and the inventory's network graph; None when neither runs."""
        return chain_observers(
            self.zt.observe if self.zt is not None else None,
            *([self.inv.observe] if self.inv is not None else []),
        )

    def syscalls_needed(self, cfg: StockadeConfig, rules_need: set[str] | None) -> set[str] | None:
        """What the sensor must deliver: what the rules need, the connections the inventory's graph
        is made of, and (unless the sensor learns in the kernel, following the operations itself)
        the syscalls of zero trust's operations."""
        if rules_need is None:
            return None
        need = rules_need | (FLOW_EVTTYPES if self.inv is not None else set())
        if self.zt is None or learns_in_kernel(cfg):
            return need
        return need | OPERATION_SYSCALLS

    def attach(self, kernel: KernelLearning) -> None:
        """Give zero trust the sensor (its learning in the kernel)."""
        if self.zt is not None:
            self.zt.kernel = kernel

    def start(self) -> None:
        """Load state, start the enforcers and the sampler."""
        if self.zt is not None:
            self.zt.start()
        if self.res is not None:
            self.res.start()
        if self.certs is not None:
            self.certs.start()
        if self.drift is not None:
            self.drift.start()
        if self.inv is not None:
            self.inv.start()

    def refresh(self) -> None:
        """Refresh zero trust now (after the sensor started: the kernel's watches)."""
        if self.zt is not None:
            self._last_refresh = time.monotonic()
            self.zt.refresh()

    def tick(self, errors: Any = None) -> None:
        """Housekeeping: zero trust's refresh every :data:`REFRESH_S`; a failure is logged and
        given to `errors` (a ``PipelineStats``: its ``error(text)``), never raised."""
        if self.zt is None or time.monotonic() - self._last_refresh < REFRESH_S:
            return
        try:
            self.refresh()
        except Exception as e:  # housekeeping goes on: reported
            if errors is not None:
                errors.error(f"zero trust: {type(e).__name__}: {e}")
            log.warning("zero trust refresh failed: %s: %s", type(e).__name__, e)

    def status(self) -> dict[str, Any]:
        """What `stockade status` shows of them."""
        return {
            "zero_trust": self.zt.status() if self.zt is not None else None,
            "resources": self.res.status() if self.res is not None else None,
            "certs": self.certs.status() if self.certs is not None else None,
            "drift": self.drift.status() if self.drift is not None else None,
            "inventory": self.inv.status() if self.inv is not None else None,
        }

    def close(self) -> None:
        """Save and stop (network enforcement stays pinned when failing closed)."""
        if self.zt is not None:
            self.zt.close()
        if self.res is not None:
            self.res.close()
        if self.certs is not None:
            self.certs.close()
        if self.drift is not None:
            self.drift.close()
        if self.inv is not None:
            self.inv.close()


def chain_observers(
    alerting: Callable[[dict[str, Any]], list[Alert]] | None,
    *watchers: Callable[[dict[str, Any]], object],
) -> Callable[[dict[str, Any]], list[Alert]] | None:
    """One pipeline observer: each of `watchers` sees the event first (what they return is
    dropped), then `alerting` (zero trust's), whose alerts are returned; None when there is none."""
    if not watchers:
        return alerting

    def chained(data: dict[str, Any]) -> list[Alert]:
        for w in watchers:
            w(data)
        return alerting(data) if alerting is not None else []

    return chained
