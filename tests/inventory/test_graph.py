"""The network graph: sensor events (Falco fields, as the eBPF sensor delivers them) aggregated into
edges, renamed when a container's address becomes known, bounded; its DOT form rendered by `dot`."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

from helpers import need
from stockade.inventory.graph import FlowGraph, graph_json, to_dot

T0 = 1_796_600_000_000_000_000
WEB = "container/localhost/web/web"
DB = "container/localhost/db/db"


def _ev(
    etype: str, repo: str, name: str, cip: str, sip: str, sport: int, *, t: int = T0, res: int = 0
) -> dict[str, Any]:
    return {
        "evt.type": etype,
        "evt.time": t,
        "evt.rawres": res,
        "evt.res": "SUCCESS" if res >= 0 else "ERR",
        "evt.failed": res < 0 and res != -115,
        "container.id": name[:12].ljust(12, "0"),
        "container.full_id": name.ljust(64, "0"),
        "container.name": name,
        "container.image.repository": repo,
        "fd.l4proto": "tcp",
        "fd.cip": cip,
        "fd.cport": 40000,
        "fd.sip": sip,
        "fd.sport": sport,
    }


def test_a_connection_seen_at_both_ends_is_one_edge_counted_once() -> None:
    g = FlowGraph()
    g.set_peers({"10.0.0.2": (WEB, 0), "10.0.0.3": (DB, 0)})
    for i in range(3):
        g.observe(_ev("connect", "localhost/web", "web", "10.0.0.2", "10.0.0.3", 5432, t=T0 + i))
        g.observe(_ev("accept4", "localhost/db", "db", "10.0.0.2", "10.0.0.3", 5432, t=T0 + i))
    rows, _ = g.drain()
    graph = graph_json(rows)
    [e] = graph["edges"]
    assert (e["source"], e["destination"], e["port"], e["protocol"]) == (WEB, DB, 5432, "tcp")
    assert (e["count"], e["connects"], e["accepts"], e["bytes"]) == (3, 3, 3, None)
    assert e["source_kind"] == e["destination_kind"] == "workload"
    assert {n["id"] for n in graph["nodes"]} == {WEB, DB}


def test_peers_outside_the_containers_are_addresses_and_failures_do_not_count() -> None:
    g = FlowGraph()
    g.observe(_ev("connect", "localhost/web", "web", "10.0.0.2", "93.184.216.34", 443))
    g.observe(
        _ev("connect", "localhost/web", "web", "10.0.0.2", "93.184.216.34", 443, res=-115)
    )  # non-blocking
    g.observe(_ev("connect", "localhost/web", "web", "10.0.0.2", "93.184.216.34", 444, res=-111))  # refused
    g.observe({"evt.type": "openat", "fd.name": "/etc/passwd"})
    rows, _ = g.drain()
    [e] = rows
    assert (e["destination"], e["destination_kind"], e["port"], e["connects"]) == (
        "93.184.216.34",
        "external",
        443,
        2,
    )
    # a host process: the host workload
    g.observe({**_ev("connect", "", "", "192.0.2.2", "10.0.0.3", 80), "container.id": "host"})
    assert any(r["source"] == "host" for r in g.drain()[0])


def test_an_address_learned_late_is_renamed_for_edges_after_its_container_started() -> None:
    g = FlowGraph()
    g.observe(_ev("connect", "localhost/web", "web", "10.0.0.2", "10.0.0.3", 5432, t=T0 + 10))
    g.observe(_ev("connect", "localhost/web", "web", "10.0.0.2", "10.0.0.9", 80, t=T0 + 10))
    g.drain()
    # db started before the flow: renamed; the other address belonged to a container started later
    g.set_peers({"10.0.0.3": (DB, T0), "10.0.0.9": ("container/x/late", T0 + 20)})
    rows, deleted = g.drain()
    assert deleted == [(WEB, "10.0.0.3", 5432, "tcp")]
    assert [(r["destination"], r["destination_kind"]) for r in rows] == [(DB, "workload")]
    assert {k[1] for k in g.edges} == {DB, "10.0.0.9"}


def test_edges_are_bounded_the_quietest_dropped_and_counted() -> None:
    g = FlowGraph(max_edges=20)
    for port in range(30):
        g.observe(_ev("connect", "localhost/web", "web", "10.0.0.2", "10.0.0.3", 1000 + port, t=T0 + port))
    assert len(g.edges) <= 20 and g.stats["dropped_edges"] >= 10
    assert (WEB, "10.0.0.3", 1029, "tcp") in g.edges and (WEB, "10.0.0.3", 1000, "tcp") not in g.edges


def test_dot_output_is_valid_graphviz_with_quoted_ids() -> None:
    g = FlowGraph()
    g.set_peers({"10.0.0.3": (DB, 0)})
    g.observe(_ev("connect", 'localhost/we"b', "web", "10.0.0.2", "10.0.0.3", 5432))
    g.observe(_ev("connect", 'localhost/we"b', "web", "10.0.0.2", "2001:db8::1", 443))
    dot_text = to_dot(graph_json(g.drain()[0]))
    assert (
        '"container/localhost/we\\"b/web" -> "container/localhost/db/db" [label="5432/tcp x1"];' in dot_text
    )
    dot = need(shutil.which("dot"), "needs graphviz (scripts/install.sh)")
    r = subprocess.run([dot, "-Tsvg"], input=dot_text, capture_output=True, text=True, check=False)
    assert r.returncode == 0 and "<svg" in r.stdout, r.stderr
