"""`stockade top`: the running containers' resource use, live, with risk columns (like `podman
stats`), from the running Stockade's API (found as `stockade status` finds it: stockade.cli.locate).

`stockade top --once --output json` prints one JSON object per running container (the items of
``GET /api/v1/resources``) and exits: a contract for scripts. Without ``--once`` it refreshes every
``--interval`` seconds until interrupted (with ``--output json``: one object per container per
refresh).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from stockade.cli import common, locate
from stockade.cli.locate import DataDirOpt, PortOpt
from stockade.model import apipaths
from stockade.resources.metrics import human_bytes

COLUMNS = (
    "CONTAINER",
    "WORKLOAD",
    "CPU",
    "CPU RISK",
    "MEM",
    "PIDS",
    "PIDS RISK",
    "FILES",
    "NET RX / TX",
    "EGRESS",
    "ALERTS",
    "BASELINE",
)


def _risk(row: dict[str, Any], metric: str) -> str:
    """The metric's value over its limit, in percent ('!' while it deviates); '-' while learning."""
    r = (row.get("risk") or {}).get(metric)
    if r is None:
        return "-"
    return f"{r * 100:.0f}%" + ("!" if metric in (row.get("deviating") or []) else "")


def _bytes(v: Any) -> str:
    return human_bytes(v) if isinstance(v, (int, float)) else "-"


def _line(row: dict[str, Any]) -> list[str]:
    cpu = row.get("cpu_cores")
    mem = _bytes(row.get("memory_bytes"))
    if row.get("memory_limit_bytes"):
        mem += " / " + _bytes(row["memory_limit_bytes"])
    tx = row.get("tx_bps")
    baseline = row.get("baseline") or {}
    return [
        row.get("container_name") or row["container_id"][:12],
        row.get("workload") or "-",
        f"{cpu * 100:.1f}%" if isinstance(cpu, (int, float)) else "-",
        _risk(row, "cpu"),
        mem,
        str(row["pids"]) if row.get("pids") is not None else "-",
        _risk(row, "pids"),
        str(row["open_files"]) if row.get("open_files") is not None else "-",
        f"{_bytes(row.get('rx_bytes'))} / {_bytes(row.get('tx_bytes'))}",
        (_bytes(tx) + "/s") if isinstance(tx, (int, float)) else "-",
        str(row.get("alerts", 0)),
        baseline.get("state") or "-",
    ]


def _table(items: list[dict[str, Any]]) -> Table:
    table = common.listing_table()
    for col in COLUMNS:
        table.add_column(col, no_wrap=col != "WORKLOAD")
    for row in items:
        table.add_row(*_line(row))
    return table


def _fetch(port: int | None, data_dir: str | None) -> list[dict[str, Any]]:
    with locate.api_client(port, data_dir) as c:
        items: list[dict[str, Any]] = locate.check(c.get(apipaths.api_path(apipaths.RESOURCES)))["items"]
    return items


def _print(items: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        for row in items:
            common.json_line(row)
    elif not items:
        common.console.print("no running containers sampled yet", markup=False)
    else:
        common.print_table(_table(items))


def top(
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    once: Annotated[bool, typer.Option("--once", help="Print the latest samples once and exit.")] = False,
    interval: Annotated[
        float, typer.Option("--interval", "-i", min=0.2, help="Seconds between refreshes.")
    ] = 2.0,
    output: str | None = common.OutputOpt,
) -> None:
    """The running containers' CPU, memory, pids, open files and network, with risk columns: each
    metric over its workload's baseline limit (100%: the limit; '!' while it deviates), the egress
    rate and the resource alerts raised. Refreshes until Ctrl-C; --once for scripts."""
    fmt = common.output_format(output)
    common.check_seconds(interval, "--interval")
    if once or fmt == "json" or not common.console.is_terminal:
        _repeat(port, data_dir, once, interval, fmt)
        return
    try:
        with Live(_table(_fetch(port, data_dir)), console=common.console, auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                live.update(_table(_fetch(port, data_dir)), refresh=True)
    except KeyboardInterrupt:
        return


def _repeat(port: int | None, data_dir: str | None, once: bool, interval: float, fmt: str) -> None:
    """Print the samples (once, or every `interval` until interrupted) without redrawing."""
    try:
        while True:
            _print(_fetch(port, data_dir), fmt)
            if once:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        return


def status_line(res: dict[str, Any] | None) -> str:
    """What `stockade status` says of resource monitoring (its part of the runtime status)."""
    if not res:
        return "resources: not sampled here (no sensor in this process, or resources.enabled false)"
    c = res.get("counters") or {}
    return (
        f"resources: {res.get('containers', 0)} containers every {res.get('interval_s')}s, "
        f"{res.get('baselines_ready', 0)} of {res.get('workloads', 0)} workload baselines ready, "
        f"{c.get('alerts', 0)} alerts (`stockade top`)"
    )


resources_app = typer.Typer(help="Resource behaviour: learned baselines.", no_args_is_help=True)


@resources_app.command("relearn")
def relearn(
    workload: Annotated[
        str, typer.Argument(metavar="WORKLOAD", help="A workload id as `stockade top` shows it.")
    ],
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Forget a workload's learned resource baseline: it learns again (resources.learn_s), and its
    resource alerts wait until then. For a legitimate change of its resource use."""
    with locate.api_client(port, data_dir) as c:
        r = locate.check(c.delete(apipaths.api_path(apipaths.RESOURCE_BASELINE, workload_id=workload)))
    common.emit(
        r, f"{r['workload']}: resource baseline forgotten, learning again", common.output_format(output)
    )


def register(app: typer.Typer) -> None:
    """Add `top` and `resources` to the command line."""
    app.command("top")(top)
    app.add_typer(resources_app, name="resources")
