"""The audit log of a running node as its configuration says (``audit:``): its key, its
checkpoint file, and the records made of alerts."""

from __future__ import annotations

import hashlib
from pathlib import Path

from stockade.audit.chain import CHECKPOINT_FILE, AuditEntry, AuditLog, canonical_json
from stockade.audit.keys import NodeKey
from stockade.config import StockadeConfig
from stockade.model.alert import Alert
from stockade.storage.store import Store

__all__ = ["alert_entry", "checkpoint_file", "open_audit_log"]


def checkpoint_file(cfg: StockadeConfig, data_dir: str | Path | None = None) -> Path | None:
    """Where checkpoints are also written: ``audit.checkpoint_file``, else
    ``DATA_DIR/audit/checkpoints.jsonl`` (of `data_dir` if given); None when configured as ""."""
    configured = cfg.audit.checkpoint_file
    if configured == "":
        return None
    if configured:
        return Path(configured).expanduser()
    return Path(data_dir if data_dir is not None else cfg.data_dir) / CHECKPOINT_FILE


def open_audit_log(cfg: StockadeConfig, store: Store) -> AuditLog | None:
    """The node's audit log over `store`, signing with the key in the data directory (made on
    first use); None when ``audit.enabled`` is false."""
    a = cfg.audit
    if not a.enabled:
        return None
    return AuditLog(
        store,
        NodeKey.load_or_create(cfg.data_dir),
        checkpoint_every=a.checkpoint_every,
        checkpoint_interval_s=a.checkpoint_interval_s,
        checkpoint_file=checkpoint_file(cfg),
    )


def alert_entry(alert: Alert) -> AuditEntry:
    """The audit record of a stored alert: its rule, priority, workload, container and the SHA-256
    of its Falco JSON as stored (so the alert row itself can be checked against the chain)."""
    body = alert.to_falco_json()
    return AuditEntry(
        "alert",
        alert.id,
        {
            "rule": alert.rule,
            "priority": alert.priority,
            "workload": alert.workload,
            "container": (alert.output_fields or {}).get("container.id"),
            "sha256": hashlib.sha256(canonical_json(body).encode()).hexdigest(),
        },
    )
