"""`stockade inventory find PACKAGE [--version RANGE]`: the emergency question ("which workloads
run log4j-core < 2.17, and is it loaded?"), answered by the running Stockade
(``GET /api/v1/inventory/find``) across images, running containers and the host: each match with
its version, path and, in a running container, the processes that use it.

Attached to the `inventory` command group (made by stockade.cli.inventory_cmd when it is
registered first; made here otherwise).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stockade.cli import common, locate
from stockade.cli.locate import DataDirOpt, PortOpt
from stockade.model import apipaths


def find(
    package: Annotated[
        str, typer.Argument(metavar="PACKAGE", help="A package name (any ecosystem) or a purl.")
    ],
    version: Annotated[
        str | None,
        typer.Option("--version", help="A range: '<2.17', '>=1.0,<2.0', 'introduced:2.0,fixed:2.17'."),
    ] = None,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Every image, running container and host holding PACKAGE (in the version range), where, and
    whether a running process has it loaded. Exit code 1 when nothing matches."""
    fmt = common.output_format(output)
    params = {"package": package, **({"version": version} if version else {})}
    with locate.api_client(port, data_dir) as c:
        doc = locate.check(c.get(apipaths.api_path(apipaths.INVENTORY_FIND), params=params))
    items: list[dict[str, Any]] = doc["items"]
    if fmt == "json":
        for r in items:
            common.json_line(r)
    elif not items:
        common.console.print(
            f"{package}{' ' + version if version else ''}: found nowhere "
            f"(after {doc.get('rounds', 0)} inventory rounds)",
            markup=False,
        )
    else:
        table = common.listing_table()
        for col in ("KIND", "WHERE", "PACKAGE", "VERSION", "PATH", "LOADED BY"):
            table.add_column(col)
        for r in items:
            if r["loaded"] is None:
                loaded = "-"
            else:
                loaded = ", ".join(sorted({f"{ld['comm']}[{ld['pid']}]" for ld in r["loaded_by"]})) or "no"
            table.add_row(r["kind"], r["name"], r["package"], r["version"], r["path"], loaded)
        common.print_table(table)
    if not items:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `find` to the `inventory` group (made here if no other module made it)."""
    group = next(
        (g.typer_instance for g in app.registered_groups if g.name == "inventory" and g.typer_instance),
        None,
    )
    if group is None:
        group = typer.Typer(help="The live inventory of this node.", no_args_is_help=True)
        app.add_typer(group, name="inventory")
    group.command("find")(find)
