"""`stockade inventory [hosts|containers|images|ports|graph]`: the live inventory of the running
Stockade, through its API (found as `stockade status` finds it: stockade.cli.locate).

With no subcommand, a short summary of all. ``--output json`` prints one JSON object per line for
the lists, the graph as one JSON object; ``graph --format dot`` prints Graphviz DOT.

:data:`inventory_app` is the group: another command module may add its own commands to it
(``@inventory_app.command("find")``) before :func:`register` runs.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stockade.cli import common, locate
from stockade.cli.locate import DataDirOpt, PortOpt
from stockade.model import apipaths

__all__ = ["get", "inventory_app", "register"]

inventory_app = typer.Typer(
    help="What runs here: hosts, containers, images, listening ports, the network graph.",
    invoke_without_command=True,
)

HostOpt = Annotated[str | None, typer.Option("--host", help="Only this node (its hostname).")]


def get(route: str, port: int | None, data_dir: str | None, **query: Any) -> Any:
    """GET an inventory route of the running instance (query parameters left out when None)."""
    with locate.api_client(port, data_dir) as c:
        params = {k: v for k, v in query.items() if v is not None}
        return locate.check(c.get(apipaths.api_path(route), params=params))


def _size(n: Any) -> str:
    if not isinstance(n, int):
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def _table(columns: tuple[str, ...], rows: list[list[str]]) -> None:
    table = common.listing_table()
    for col in columns:
        table.add_column(col)
    for r in rows:
        table.add_row(*r)
    common.print_table(table)


def _list(items: list[dict[str, Any]], output: str | None, none: str) -> bool:
    return common.print_items(items, common.output_format(output), lambda x: x, none)


@inventory_app.callback()
def summary(
    ctx: typer.Context,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    host: HostOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """A short summary of all: nodes, containers, images, listening ports, graph edges."""
    if ctx.invoked_subcommand is not None:
        return
    s = get(apipaths.INVENTORY, port, data_dir, host=host)
    lines = []
    for h in s["hosts"]:
        os_name = (h.get("os") or {}).get("pretty_name") or "-"
        rts = ", ".join(r["name"] for r in h.get("runtimes") or []) or "-"
        lines.append(
            f"host {h['hostname']}: {os_name}, kernel {h.get('kernel')} {h.get('architecture')}, "
            f"cgroup {h.get('cgroup_version')}, runtimes {rts}, booted {h.get('boot_time')}"
        )
    if not s["hosts"]:
        lines.append("no node has reported its inventory yet")
    c = s["containers"]
    lines.append(f"containers: {c['running']} running, {c['gone']} gone")
    lines.append(f"images: {s['images']}")
    lines.append(f"listening ports: {s['ports']}")
    lines.append(f"graph edges: {s['edges']}")
    common.emit(s, "\n".join(lines), common.output_format(output))


@inventory_app.command("hosts")
def hosts(port: PortOpt = None, data_dir: DataDirOpt = None, output: str | None = common.OutputOpt) -> None:
    """The nodes: OS release, kernel, architecture, cgroup version, runtimes, boot time."""
    items = get(apipaths.INVENTORY_HOSTS, port, data_dir)["items"]
    if _list(items, output, "no node has reported its inventory yet"):
        return
    _table(
        ("HOST", "OS", "KERNEL", "ARCH", "CGROUP", "RUNTIMES", "CONTAINERS", "BOOTED"),
        [
            [
                h["hostname"],
                (h.get("os") or {}).get("pretty_name") or "-",
                str(h.get("kernel") or "-"),
                str(h.get("architecture") or "-"),
                str(h.get("cgroup_version") or "-"),
                ", ".join(r["name"] for r in h.get("runtimes") or []) or "-",
                str(h.get("containers_running", "-")),
                str(h.get("boot_time") or "-"),
            ]
            for h in items
        ],
    )


@inventory_app.command("containers")
def containers(
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    host: HostOpt = None,
    state: Annotated[str | None, typer.Option("--state", help="running or gone.")] = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Containers running and gone: image, workload, pod and owner, addresses, listening ports."""
    common.check_choice(state, "--state", ("running", "gone"))
    items = get(apipaths.INVENTORY_CONTAINERS, port, data_dir, host=host, state=state)["items"]
    if _list(items, output, "no containers"):
        return
    _table(
        ("ID", "NAME", "STATE", "IMAGE", "WORKLOAD", "ADDRESSES", "PORTS", "STARTED"),
        [
            [
                c.get("short_id") or c["id"][:12],
                c.get("name") or "-",
                c["state"] + (f" {c['stopped']}" if c.get("stopped") else ""),
                common.truncate(c.get("image") or "-", 40),
                c.get("workload") or "-",
                ", ".join(c.get("addresses") or []) or "-",
                ", ".join(f"{p['port']}/{p['protocol']}" for p in c.get("ports") or []) or "-",
                c.get("started") or "-",
            ]
            for c in items
        ],
    )


@inventory_app.command("images")
def images(
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    host: HostOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Images: id, tags, digest, layers, size, created, the containers using each."""
    items = get(apipaths.INVENTORY_IMAGES, port, data_dir, host=host)["items"]
    if _list(items, output, "no images"):
        return
    _table(
        ("ID", "TAGS", "DIGEST", "LAYERS", "SIZE", "CREATED", "CONTAINERS"),
        [
            [
                i["id"][:12],
                common.truncate(", ".join(i.get("repo_tags") or []) or "<none>", 50),
                (i.get("digest") or "-")[:19],
                str(len(i.get("layers") or [])),
                _size(i.get("size")),
                str(i.get("created") or "-")[:19],
                str(len(i.get("containers") or [])),
            ]
            for i in items
        ],
    )


@inventory_app.command("ports")
def ports(
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    host: HostOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Listening sockets: protocol, address, port, process, container and workload."""
    items = get(apipaths.INVENTORY_PORTS, port, data_dir, host=host)["items"]
    if _list(items, output, "no listening sockets"):
        return
    _table(
        ("HOST", "PROTO", "ADDRESS", "PORT", "PROCESS", "CONTAINER", "WORKLOAD"),
        [
            [
                p["hostname"],
                p["protocol"],
                p["address"],
                str(p["port"]),
                f"{p.get('process') or '?'} ({p['pid']})" if p.get("pid") else "-",
                (p.get("container_id") or "-")[:12],
                p.get("workload") or "-",
            ]
            for p in items
        ],
    )


@inventory_app.command("graph")
def graph(
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    host: HostOpt = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="json or dot (Graphviz).")] = "json",
    since: Annotated[str | None, typer.Option("--since", help="Edges seen since: 15m, 2h, RFC 3339.")] = None,
    output: str | None = common.OutputOpt,
) -> None:
    """The network graph of observed flows: workload -> workload or address, port, protocol, count.
    ``--format json`` is a table in text output and the graph's JSON with --output json;
    ``--format dot`` prints Graphviz DOT (`| dot -Tsvg > graph.svg`)."""
    common.check_choice(fmt, "--format", ("json", "dot"))
    if fmt == "dot":
        with locate.api_client(port, data_dir) as c:
            params = {k: v for k, v in {"format": "dot", "host": host, "since": since}.items() if v}
            r = c.get(apipaths.api_path(apipaths.INVENTORY_GRAPH), params=params)
            if r.status_code >= 400:
                locate.check(r)
            common.console.file.write(r.text)
        return
    g = get(apipaths.INVENTORY_GRAPH, port, data_dir, host=host, since=since)
    if common.output_format(output) == "json":
        common.json_line(g)
        return
    if not g["edges"]:
        common.console.print("no flows observed yet", markup=False)
        return
    _table(
        ("SOURCE", "DESTINATION", "PORT", "COUNT", "FIRST SEEN", "LAST SEEN"),
        [
            [
                e["source"],
                e["destination"] + (" (external)" if e["destination_kind"] == "external" else ""),
                f"{e['port']}/{e['protocol']}",
                str(e["count"]),
                e["first_seen"],
                e["last_seen"],
            ]
            for e in g["edges"]
        ],
    )


def register(app: typer.Typer) -> None:
    """Add `inventory` to the command line."""
    app.add_typer(inventory_app, name="inventory")
