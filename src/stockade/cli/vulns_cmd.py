"""`stockade vulns [--workload W]`: the ranked vulnerability findings of what runs here, from the
running Stockade's API (``GET /api/v1/vulnerabilities``): score, severity, loaded, exposed, and
with ``--why`` the score's parts. ``--output json`` prints one finding per line (the fields of
`stockade scan --output json`, plus ``asset``, ``workload``, ``loaded``, ``loaded_by``,
``exposed``, ``exposed_by``, ``score`` and ``score_parts``).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stockade.cli import common, locate
from stockade.cli.locate import DataDirOpt, PortOpt
from stockade.model import apipaths


def _row(r: dict[str, Any], why: bool) -> list[str]:
    loaded = ", ".join(sorted({f"{ld['comm']}[{ld['pid']}]" for ld in r["loaded_by"]})) or "no"
    row = [
        f"{r['score']:g}",
        r["severity"],
        r["id"],
        f"{r['package']} {r['version']}",
        r.get("name") or r["asset"],
        loaded if r["running"] else "-",
        ", ".join(r["exposed_by"]) or "no",
        ", ".join(r["fixed"] or []) or "-",
    ]
    if why:
        row.append(
            "; ".join(f"{p['factor']} {p['points']:g} ({p['why']})" for p in r["score_parts"] if p["points"])
        )
    return row


def vulns(
    workload: Annotated[
        str | None, typer.Option("--workload", "-w", help="Only this workload (id, container name or asset).")
    ] = None,
    why: Annotated[bool, typer.Option("--why", help="Show the parts of each score.")] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Show the top N (table).")] = 50,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Vulnerabilities of the running containers, images and the host, ranked beyond CVSS: is the
    package loaded by a running process, is the workload exposed, is a fix out, KEV, EPSS."""
    fmt = common.output_format(output)
    params = {"workload": workload} if workload else {}
    with locate.api_client(port, data_dir) as c:
        doc = locate.check(c.get(apipaths.api_path(apipaths.VULNERABILITIES), params=params))
    items: list[dict[str, Any]] = doc["items"]
    if fmt == "json":
        for r in items:
            common.json_line(r)
        return
    if not items:
        common.console.print(f"no findings (after {doc.get('rounds', 0)} inventory rounds)", markup=False)
        return
    table = common.listing_table()
    cols = ["SCORE", "SEVERITY", "ID", "PACKAGE", "WHERE", "LOADED BY", "EXPOSED", "FIXED"]
    for col in [*cols, *(["WHY"] if why else [])]:
        table.add_column(col)
    for r in items[:limit]:
        table.add_row(*_row(r, why))
    common.print_table(table)
    if len(items) > limit:
        common.console.print(f"... {len(items) - limit} more (--limit, --output json)", markup=False)


def register(app: typer.Typer) -> None:
    """Add `vulns` to the command line."""
    app.command("vulns")(vulns)
