"""The network graph: observed flows aggregated into edges, and its JSON and Graphviz DOT forms.

Every ``connect`` and ``accept`` event of the sensor (after the engine: the pipeline's observer)
is one observation (:meth:`FlowGraph.observe`). Its node is the workload of the event
(:func:`stockade.behavior.workload.workload_of_event`, the identity zero trust learns by); the
other end is the workload of a tracked container at the peer's address (:meth:`FlowGraph.set_peers`,
kept current by the inventory's refresh), else the address itself (``external``). A connect is an
edge *from* its workload *to* the peer on the peer's port; an accept one *from* the peer *to* its
workload on its own port. The edge key is (source, destination, port, protocol); it counts
``connects`` (seen at the client) and ``accepts`` (seen at the server) apart, so a flow between
two workloads of this node, seen at both ends, counts once: ``count`` is the larger of the two.

Bytes are not measured: the sensor sees connections, not their traffic (``bytes`` is null).

An address seen before its container was tracked is renamed to the workload when the container's
address becomes known, for edges first seen after the container started (:meth:`set_peers`).
Edges are bounded (``max_edges``): beyond, the quietest are dropped and counted.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stockade.behavior.ops import NetOp, operation_of
from stockade.behavior.workload import HOST, workload_of_event
from stockade.model.timeutil import format_time_ns

__all__ = ["FLOW_EVTTYPES", "Edge", "EdgeKey", "FlowGraph", "graph_json", "to_dot"]

#: the events the graph is made of
FLOW_EVTTYPES = frozenset({"connect", "accept", "accept4"})
#: a non-blocking connect's result (-EINPROGRESS)
_EINPROGRESS = -115
#: (source, destination, port, protocol)
EdgeKey = tuple[str, str, int, str]

BYTES_NOTE = "bytes are not measured: the sensor observes connections, not their traffic"


@dataclass(slots=True)
class Edge:
    """One edge's totals."""

    source_kind: str
    destination_kind: str
    connects: int
    accepts: int
    first_ns: int
    last_ns: int
    bytes: int | None = None

    @property
    def count(self) -> int:
        """Connections observed (the larger of the two ends' counts)."""
        return max(self.connects, self.accepts)


def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


class FlowGraph:
    """Edges of the observed flows (module docstring). Thread-safe: the pipeline observes while
    the inventory's thread renames, drains and prunes."""

    def __init__(
        self,
        *,
        max_edges: int = 20_000,
        workload_of: Callable[[Mapping[str, Any]], str | None] | None = None,
    ) -> None:
        self.max_edges = max_edges
        #: a container's workload when the event lacks its description (full id -> workload)
        self.workload_of = workload_of
        self._lock = threading.Lock()
        self.edges: dict[EdgeKey, Edge] = {}
        self._dirty: set[EdgeKey] = set()
        self._deleted: set[EdgeKey] = set()
        #: address -> (workload, when its container started, ns)
        self._at: dict[str, tuple[str, int]] = {}
        self.stats: dict[str, int] = {"observed": 0, "unattributed": 0, "dropped_edges": 0, "renamed": 0}

    # -- the event path ----------------------------------------------------------------------------
    def observe(self, data: dict[str, Any]) -> None:
        """One sensor event; only connects (non-blocking ones under way included) and accepts
        that succeeded count."""
        t = data.get("evt.type")
        if t not in FLOW_EVTTYPES:
            return
        if t == "connect" and data.get("evt.rawres") == _EINPROGRESS:
            # a non-blocking connect: under way, a connection as much as a blocking one
            data = {**data, "evt.rawres": 0, "evt.failed": False, "evt.res": "SUCCESS"}
        op = operation_of(data)
        if not isinstance(op, NetOp):
            return
        me = self._workload(data)
        if me is None:
            self.stats["unattributed"] += 1
            return
        ts = data.get("evt.time")
        now = ts if isinstance(ts, int) else time.time_ns()
        peer, kind = self._peer(op.ip, me)
        proto = op.protocol or "tcp"
        if op.direction == "egress":
            key: EdgeKey = (me, peer, op.port, proto)
            kinds = ("workload", kind)
        else:
            key = (peer, me, op.port, proto)
            kinds = (kind, "workload")
        with self._lock:
            self.stats["observed"] += 1
            e = self.edges.get(key)
            if e is None:
                e = self.edges[key] = Edge(kinds[0], kinds[1], 0, 0, now, now)
                if len(self.edges) > self.max_edges:
                    self._drop_quietest()
            if op.direction == "egress":
                e.connects += 1
            else:
                e.accepts += 1
            e.first_ns = min(e.first_ns, now) if e.first_ns else now
            e.last_ns = max(e.last_ns, now)
            self._dirty.add(key)

    def _workload(self, data: Mapping[str, Any]) -> str | None:
        cid = data.get("container.id")
        if not cid or cid == HOST:
            return HOST
        if data.get("container.image.repository") or data.get("k8s.ns.name"):
            return workload_of_event(data).id
        return self.workload_of(data) if self.workload_of is not None else None

    def _peer(self, ip: str, me: str) -> tuple[str, str]:
        if _is_loopback(ip):
            return me, "workload"
        known = self._at.get(ip)
        return (known[0], "workload") if known is not None else (ip, "external")

    def _drop_quietest(self) -> None:
        n = max(1, len(self.edges) // 10)
        for key, _ in sorted(self.edges.items(), key=lambda kv: kv[1].last_ns)[:n]:
            del self.edges[key]
            self._dirty.discard(key)
            self._deleted.add(key)
            self.stats["dropped_edges"] += 1

    # -- the refresh -------------------------------------------------------------------------------
    def set_peers(self, at: Mapping[str, tuple[str, int]]) -> None:
        """The tracked containers' addresses now (address -> (workload, start ns)); edges to or
        from such an address first seen after that start are renamed to the workload."""
        with self._lock:
            self._at = dict(at)
            for key in [k for k in self.edges if k[0] in at or k[1] in at]:
                e = self.edges[key]
                src, dst = key[0], key[1]
                if e.source_kind == "external" and src in at and e.first_ns >= at[src][1]:
                    src = at[src][0]
                if e.destination_kind == "external" and dst in at and e.first_ns >= at[dst][1]:
                    dst = at[dst][0]
                if (src, dst) == key[:2]:
                    continue
                new_key: EdgeKey = (src, dst, key[2], key[3])
                del self.edges[key]
                self._dirty.discard(key)
                self._deleted.add(key)
                kinds = (
                    "workload" if src != key[0] else e.source_kind,
                    "workload" if dst != key[1] else e.destination_kind,
                )
                into = self.edges.get(new_key)
                if into is None:
                    self.edges[new_key] = Edge(
                        kinds[0], kinds[1], e.connects, e.accepts, e.first_ns, e.last_ns
                    )
                else:
                    into.connects += e.connects
                    into.accepts += e.accepts
                    into.first_ns = min(into.first_ns, e.first_ns)
                    into.last_ns = max(into.last_ns, e.last_ns)
                self._dirty.add(new_key)
                self.stats["renamed"] += 1

    def load(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Edges stored before a restart: their counts go on."""
        with self._lock:
            for r in rows:
                key: EdgeKey = (str(r["source"]), str(r["destination"]), int(r["port"]), str(r["protocol"]))
                self.edges[key] = Edge(
                    str(r["source_kind"]),
                    str(r["destination_kind"]),
                    int(r["connects"]),
                    int(r["accepts"]),
                    int(r["first_ns"]),
                    int(r["last_ns"]),
                    r.get("bytes"),
                )

    def drain(self) -> tuple[list[dict[str, Any]], list[EdgeKey]]:
        """The edges changed since the last drain (rows with their totals) and those deleted."""
        with self._lock:
            rows = [edge_row(k, self.edges[k]) for k in self._dirty if k in self.edges]
            deleted = list(self._deleted)
            self._dirty.clear()
            self._deleted.clear()
        return rows, deleted

    def prune(self, before_ns: int) -> int:
        """Forget edges quiet since before `before_ns` (the store prunes its own); how many."""
        with self._lock:
            old = [k for k, e in self.edges.items() if e.last_ns < before_ns]
            for k in old:
                del self.edges[k]
                self._dirty.discard(k)
        return len(old)


def edge_row(key: EdgeKey, e: Edge) -> dict[str, Any]:
    """An edge as the store keeps it."""
    return {
        "source": key[0],
        "destination": key[1],
        "port": key[2],
        "protocol": key[3],
        "source_kind": e.source_kind,
        "destination_kind": e.destination_kind,
        "connects": e.connects,
        "accepts": e.accepts,
        "bytes": e.bytes,
        "first_ns": e.first_ns,
        "last_ns": e.last_ns,
    }


def graph_json(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The graph as the API serves it: nodes (workloads and external addresses) and edges."""
    nodes: dict[str, str] = {}
    edges = []
    for r in rows:
        nodes.setdefault(str(r["source"]), str(r["source_kind"]))
        nodes.setdefault(str(r["destination"]), str(r["destination_kind"]))
        edges.append(
            {
                "source": r["source"],
                "destination": r["destination"],
                "port": r["port"],
                "protocol": r["protocol"],
                "source_kind": r["source_kind"],
                "destination_kind": r["destination_kind"],
                "count": max(int(r["connects"]), int(r["accepts"])),
                "connects": r["connects"],
                "accepts": r["accepts"],
                "bytes": r.get("bytes"),
                "first_seen": format_time_ns(int(r["first_ns"])),
                "last_seen": format_time_ns(int(r["last_ns"])),
                **({"hostname": r["hostname"]} if "hostname" in r else {}),
            }
        )
    return {
        "nodes": [{"id": n, "kind": k} for n, k in sorted(nodes.items())],
        "edges": edges,
        "bytes_note": BYTES_NOTE,
    }


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(graph: Mapping[str, Any], name: str = "stockade") -> str:
    """The graph (:func:`graph_json`) in Graphviz DOT: workloads as boxes, external addresses as
    ellipses, one edge per (source, destination, port, protocol) labelled ``port/proto xcount``."""
    lines = [f"digraph {_quote(name)} {{", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for n in graph["nodes"]:
        shape = "box" if n["kind"] == "workload" else "ellipse"
        lines.append(f"  {_quote(n['id'])} [shape={shape}];")
    for e in graph["edges"]:
        label = f"{e['port']}/{e['protocol']} x{e['count']}"
        lines.append(f"  {_quote(e['source'])} -> {_quote(e['destination'])} [label={_quote(label)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
