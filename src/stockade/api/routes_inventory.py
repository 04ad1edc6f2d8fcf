"""The live inventory: ``GET /api/v1/inventory`` (a summary), ``.../hosts``, ``.../containers``,
``.../images``, ``.../ports`` and ``.../graph`` (``?format=json|dot``), read from the store the
nodes' inventory services write (docs/inventory.md). Served by any instance over that store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from stockade.api.deps import StoreDep
from stockade.api.params import STRICT_QUERY, parse_time_param
from stockade.api.problem import problem_responses
from stockade.inventory.graph import graph_json, to_dot
from stockade.model import apipaths as paths

if TYPE_CHECKING:
    from stockade.storage.inventory import InventoryStore
    from stockade.storage.store import Store

router = APIRouter(tags=["inventory"])

HostQ = Annotated[str | None, Query(description="Only this node (its hostname)")]


class Items(BaseModel):
    """A list of inventory records and how many."""

    items: list[dict[str, Any]]
    total: int


class Summary(BaseModel):
    """How much the inventory holds."""

    hosts: list[dict[str, Any]]
    containers: dict[str, int]
    images: int
    ports: int
    edges: int


class Graph(BaseModel):
    """The network graph: nodes (workloads and external addresses) and edges (source ->
    destination, port, protocol, count, connects, accepts, first and last seen; bytes null: not
    measured)."""

    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    bytes_note: str


def _inv(store: Store) -> InventoryStore:
    from stockade.storage.inventory import InventoryStore

    return InventoryStore(store)


def _items(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"items": items, "total": len(items)}


@router.get(
    paths.INVENTORY,
    response_model=Summary,
    summary="What the inventory holds, in numbers",
    dependencies=[STRICT_QUERY],
    responses=problem_responses(422),
)
def summary(store: StoreDep, host: HostQ = None) -> dict[str, Any]:
    """Per node its facts; containers running and gone; images, listening ports and graph edges."""
    inv = _inv(store)
    containers = inv.containers(hostname=host)
    hosts = [h for h in inv.hosts() if host is None or h["hostname"] == host]
    return {
        "hosts": hosts,
        "containers": {
            "running": sum(1 for c in containers if c["state"] == "running"),
            "gone": sum(1 for c in containers if c["state"] == "gone"),
        },
        "images": len(inv.images(hostname=host)),
        "ports": len(inv.ports(hostname=host)),
        "edges": len(inv.edges(hostname=host)),
    }


@router.get(
    paths.INVENTORY_HOSTS,
    response_model=Items,
    summary="The nodes: OS, kernel, runtimes, boot time",
    dependencies=[STRICT_QUERY],
    responses=problem_responses(422),
)
def hosts(store: StoreDep) -> dict[str, Any]:
    """Each node's facts as its inventory service found them last."""
    return _items(_inv(store).hosts())


@router.get(
    paths.INVENTORY_CONTAINERS,
    response_model=Items,
    summary="Containers running and gone, with image, workload, pod, owner, addresses and ports",
    dependencies=[STRICT_QUERY],
    responses=problem_responses(422),
)
def containers(
    store: StoreDep,
    host: HostQ = None,
    state: Annotated[Literal["running", "gone"] | None, Query(description="running or gone")] = None,
) -> dict[str, Any]:
    """Running containers first, then those gone (kept for ``inventory.retention_s``)."""
    return _items(_inv(store).containers(hostname=host, state=state))


@router.get(
    paths.INVENTORY_IMAGES,
    response_model=Items,
    summary="Images: digest, tags, layers, size, config, the containers using each",
    dependencies=[STRICT_QUERY],
    responses=problem_responses(422),
)
def images(store: StoreDep, host: HostQ = None) -> dict[str, Any]:
    """Every image of every node (environment variables by name only)."""
    return _items(_inv(store).images(hostname=host))


@router.get(
    paths.INVENTORY_PORTS,
    response_model=Items,
    summary="Listening sockets with their process, container and workload",
    dependencies=[STRICT_QUERY],
    responses=problem_responses(422),
)
def ports(store: StoreDep, host: HostQ = None) -> dict[str, Any]:
    """TCP sockets in LISTEN and bound UDP sockets, of each node and each container."""
    return _items(_inv(store).ports(hostname=host))


@router.get(
    paths.INVENTORY_GRAPH,
    response_model=Graph,
    summary="The network graph of observed flows, as JSON or Graphviz DOT",
    dependencies=[STRICT_QUERY],
    responses={
        **problem_responses(422),
        200: {"content": {"text/vnd.graphviz": {}}, "description": "JSON, or DOT with format=dot"},
    },
)
def graph(
    store: StoreDep,
    host: HostQ = None,
    format: Annotated[Literal["json", "dot"], Query(description="json or dot")] = "json",
    since: Annotated[
        str | None, Query(description="Edges seen since: a duration ago (15m), RFC 3339")
    ] = None,
) -> Any:
    """Edges source -> destination (workload ids, or addresses for peers outside the node's
    containers) per port and protocol, busiest first."""
    g = graph_json(_inv(store).edges(hostname=host, since_ns=parse_time_param("since", since)))
    if format == "dot":
        return PlainTextResponse(to_dot(g), media_type="text/vnd.graphviz")
    return g
