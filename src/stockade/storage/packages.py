"""The package sets of assets in the store (``package_sets``): what the inventory last cataloged
of each running container, image and the host, kept across restarts and read by the emergency
question when the instance has not cataloged anything yet."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from stockade.storage import tables
from stockade.storage.store import Store

__all__ = ["PackageSetStore"]


class PackageSetStore:
    """Repository of ``package_sets`` over a :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def save(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert or replace asset rows (the columns of ``package_sets``)."""
        if not rows:
            return
        with self.store.writing("cannot store package sets") as conn:
            conn.execute(self.store.upsert(tables.package_sets, ("asset",)), list(rows))

    def mark_gone(self, running: set[str]) -> None:
        """Mark the container assets not in `running` as no longer running."""
        t = tables.package_sets
        with self.store.writing("cannot store package sets") as conn:
            q = sa.update(t).where(t.c.kind == "container", t.c.running.is_(True))
            if running:
                q = q.where(t.c.asset.not_in(sorted(running)))
            conn.execute(q.values(running=False))

    def load(self, kinds: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Every stored asset row (of `kinds`), by asset."""
        t = tables.package_sets
        q = sa.select(t).order_by(t.c.asset)
        if kinds:
            q = q.where(t.c.kind.in_(list(kinds)))
        with self.store.reading("cannot read package sets") as conn:
            return [dict(r._mapping) for r in conn.execute(q)]
