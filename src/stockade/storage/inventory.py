"""The inventory in the store: hosts, containers, images, listening ports and graph edges.

Rows are written by the inventory service of each node (:mod:`stockade.inventory.service`) and read
by the API (``/api/v1/inventory/...``). Containers and images are upserted by id (a container that
stops is kept, ``state: gone`` with its stop time, until retention); a node's listening ports are
replaced whole at each refresh; edges are upserted with their running totals. :meth:`prune` applies
the retention. Every record is a plain dict: what the API serves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from stockade.model.timeutil import format_time_ns
from stockade.storage import tables
from stockade.storage.store import Store

__all__ = ["InventoryStore"]

_T = tables


def _time(ns: int | None) -> str | None:
    return format_time_ns(ns) if ns else None


class InventoryStore:
    """The inventory tables of a Store's database (module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- writing ---------------------------------------------------------------------------------
    def put_host(self, hostname: str, body: dict[str, Any], now_ns: int) -> None:
        """Keep a node's facts."""
        with self.store.writing("cannot store the host's inventory") as conn:
            conn.execute(
                self.store.upsert(_T.inventory_hosts, ("hostname",)),
                [{"hostname": hostname, "updated_ns": now_ns, "body": body}],
            )

    def put_containers(self, hostname: str, records: Sequence[dict[str, Any]], now_ns: int) -> None:
        """Keep containers (dicts with at least ``id``, ``state``): upserted by id."""
        if not records:
            return
        rows = [
            {
                "id": r["id"],
                "hostname": hostname,
                "name": r.get("name"),
                "workload": r.get("workload"),
                "image_id": r.get("image_id"),
                "state": r["state"],
                "started_ns": r.get("started_ns"),
                "stopped_ns": r.get("stopped_ns"),
                "updated_ns": now_ns,
                "body": r,
            }
            for r in records
        ]
        with self.store.writing("cannot store containers") as conn:
            conn.execute(self.store.upsert(_T.inventory_containers, ("id",)), rows)

    def replace_images(self, hostname: str, records: Sequence[dict[str, Any]], now_ns: int) -> None:
        """A node's images now (dicts with at least ``id``; its previous ones deleted)."""
        t = _T.inventory_images
        rows = [{"hostname": hostname, "id": r["id"], "updated_ns": now_ns, "body": r} for r in records]
        with self.store.writing("cannot store images") as conn:
            conn.execute(t.delete().where(t.c.hostname == hostname))
            if rows:
                conn.execute(t.insert(), rows)

    def replace_ports(self, hostname: str, records: Sequence[dict[str, Any]], now_ns: int) -> None:
        """A node's listening sockets now (its previous ones deleted)."""
        t = _T.inventory_ports
        cols = ("protocol", "address", "port", "pid", "process", "container_id", "workload")
        rows = [{**{c: r.get(c) for c in cols}, "hostname": hostname, "updated_ns": now_ns} for r in records]
        with self.store.writing("cannot store listening ports") as conn:
            conn.execute(t.delete().where(t.c.hostname == hostname))
            if rows:
                conn.execute(t.insert(), rows)

    def put_edges(self, hostname: str, records: Sequence[dict[str, Any]]) -> None:
        """Keep graph edges with their totals (upserted by source, destination, port, protocol)."""
        if not records:
            return
        keys = ("hostname", "source", "destination", "port", "protocol")
        cols = ("source_kind", "destination_kind", "connects", "accepts", "bytes", "first_ns", "last_ns")
        rows = [{**{c: r[c] for c in keys[1:] + cols}, "hostname": hostname} for r in records]
        with self.store.writing("cannot store graph edges") as conn:
            conn.execute(self.store.upsert(_T.inventory_edges, keys), rows)

    def delete_edges(self, hostname: str, keys: Iterable[tuple[str, str, int, str]]) -> None:
        """Delete edges by (source, destination, port, protocol) (renamed or dropped by the graph)."""
        t = _T.inventory_edges
        with self.store.writing("cannot delete graph edges") as conn:
            for src, dst, port, proto in keys:
                conn.execute(
                    t.delete().where(
                        t.c.hostname == hostname,
                        t.c.source == src,
                        t.c.destination == dst,
                        t.c.port == port,
                        t.c.protocol == proto,
                    )
                )

    def prune(self, before_ns: int) -> dict[str, int]:
        """Delete what is older than `before_ns`: containers gone before it, images of nodes not
        heard from since, edges quiet since; how many of each."""
        c, i, e = _T.inventory_containers, _T.inventory_images, _T.inventory_edges
        with self.store.writing("cannot prune the inventory") as conn:
            gone = conn.execute(c.delete().where(c.c.state == "gone", c.c.stopped_ns < before_ns)).rowcount
            images = conn.execute(i.delete().where(i.c.updated_ns < before_ns)).rowcount
            edges = conn.execute(e.delete().where(e.c.last_ns < before_ns)).rowcount
        return {"containers": int(gone or 0), "images": int(images or 0), "edges": int(edges or 0)}

    # -- reading ---------------------------------------------------------------------------------
    def hosts(self) -> list[dict[str, Any]]:
        """Every node's facts, by hostname."""
        t = _T.inventory_hosts
        with self.store.reading("cannot read hosts") as conn:
            rows = conn.execute(sa.select(t).order_by(t.c.hostname)).all()
        return [{**r.body, "hostname": r.hostname, "updated": _time(r.updated_ns)} for r in rows]

    def containers(self, *, hostname: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        """Containers (running first, then gone, newest first within each)."""
        t = _T.inventory_containers
        q = sa.select(t)
        if hostname:
            q = q.where(t.c.hostname == hostname)
        if state:
            q = q.where(t.c.state == state)
        q = q.order_by(t.c.state.desc(), t.c.started_ns.desc())
        with self.store.reading("cannot read containers") as conn:
            rows = conn.execute(q).all()
        return [
            {
                **r.body,
                "hostname": r.hostname,
                "state": r.state,
                "started": _time(r.started_ns),
                "stopped": _time(r.stopped_ns),
                "updated": _time(r.updated_ns),
            }
            for r in rows
        ]

    def running(self, hostname: str) -> dict[str, dict[str, Any]]:
        """The containers of a node stored as running (id -> record)."""
        t = _T.inventory_containers
        with self.store.reading("cannot read containers") as conn:
            rows = conn.execute(
                sa.select(t.c.id, t.c.body).where(t.c.hostname == hostname, t.c.state == "running")
            )
            return {r.id: dict(r.body) for r in rows}

    def images(self, *, hostname: str | None = None) -> list[dict[str, Any]]:
        """Images, by first tag."""
        t = _T.inventory_images
        q = sa.select(t)
        if hostname:
            q = q.where(t.c.hostname == hostname)
        with self.store.reading("cannot read images") as conn:
            rows = conn.execute(q).all()
        out = [{**r.body, "hostname": r.hostname, "updated": _time(r.updated_ns)} for r in rows]
        return sorted(out, key=lambda r: ((r.get("repo_tags") or ["~"])[0], r["id"]))

    def ports(self, *, hostname: str | None = None) -> list[dict[str, Any]]:
        """Listening sockets, by host, protocol and port."""
        t = _T.inventory_ports
        q = sa.select(t)
        if hostname:
            q = q.where(t.c.hostname == hostname)
        q = q.order_by(t.c.hostname, t.c.protocol, t.c.port, t.c.address)
        with self.store.reading("cannot read listening ports") as conn:
            rows = conn.execute(q).all()
        return [
            {
                "hostname": r.hostname,
                "protocol": r.protocol,
                "address": r.address,
                "port": r.port,
                "pid": r.pid,
                "process": r.process,
                "container_id": r.container_id,
                "workload": r.workload,
                "updated": _time(r.updated_ns),
            }
            for r in rows
        ]

    def edges(self, *, hostname: str | None = None, since_ns: int | None = None) -> list[dict[str, Any]]:
        """Graph edges as stored (``first_ns``/``last_ns`` kept), busiest first."""
        t = _T.inventory_edges
        q = sa.select(t)
        if hostname:
            q = q.where(t.c.hostname == hostname)
        if since_ns:
            q = q.where(t.c.last_ns >= since_ns)
        with self.store.reading("cannot read graph edges") as conn:
            rows = conn.execute(q).all()
        out = [dict(r._mapping) for r in rows]
        return sorted(out, key=lambda r: (-max(r["connects"], r["accepts"]), r["source"], r["destination"]))
