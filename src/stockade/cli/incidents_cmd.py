"""`stockade incidents list|show|update|report`: the running Stockade's incidents, through its API
(found as `stockade status` finds it: stockade.cli.locate).

`stockade incidents list --output json` prints one incident per line, worst first, with at least
``id``, ``status``, ``score``, ``workload``, ``containers`` and ``alerts`` (ids): a contract.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from stockade.cli import common, locate
from stockade.cli.locate import DataDirOpt, PortOpt
from stockade.errors import StockadeError
from stockade.model import apipaths
from stockade.model.incident import STATUSES

incidents_app = typer.Typer(
    help="Incidents: alerts grouped per workload and attack chain.", no_args_is_help=True
)

IncidentArg = Annotated[
    str, typer.Argument(metavar="INCIDENT", help="An incident id, id prefix or its last 8 hex digits.")
]


def _get(
    route: str, port: int | None, data_dir: str | None, params: dict[str, Any] | None = None, **ids: str
) -> Any:
    with locate.api_client(port, data_dir) as c:
        return locate.check(c.get(apipaths.api_path(route, **ids), params=params or {}))


@incidents_app.command("list")
def list_incidents(
    status: Annotated[
        list[str] | None,
        typer.Option("--status", help=f"Only these statuses ({', '.join(STATUSES)}); repeatable."),
    ] = None,
    workload: Annotated[str | None, typer.Option("--workload", help="Only this workload's.")] = None,
    min_score: Annotated[
        float | None, typer.Option("--min-score", help="Only scores at least this (0-100).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many.")] = 100,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Incidents, worst first: active before resolved, then by risk score."""
    fmt = common.output_format(output)
    for s in status or ():
        common.check_choice(s, "--status", STATUSES)
    params: dict[str, Any] = {"limit": limit}
    if status:
        params["status"] = status
    if workload:
        params["workload"] = workload
    if min_score is not None:
        params["min_score"] = min_score
    items = _get(apipaths.INCIDENTS, port, data_dir, params)["items"]
    if fmt == "json":
        for i in items:
            common.json_line(i)
        return
    if not items:
        common.console.print("no incidents", markup=False)
        return
    table = common.listing_table()
    for col in ("INCIDENT", "STATUS", "SCORE", "ALERTS", "WORKLOAD", "TACTICS", "LAST", "OWNER"):
        table.add_column(col)
    for i in items:
        table.add_row(
            i["id"],
            i["status"],
            f"{i['score']:.0f} {i['severity']}",
            str(i["alert_count"]),
            common.truncate(i.get("workload") or i.get("key") or "-", 48),
            common.truncate(", ".join(i.get("tactics") or []) or "-", 40),
            i["last"][:19],
            i.get("owner") or "-",
        )
    common.print_table(table)


def _show_text(d: dict[str, Any]) -> str:
    lines = [
        f"incident:  {d['id']}  {d['title']}",
        f"status:    {d['status']}   score {d['score']} ({d['severity']}), worst priority {d['priority']}",
        f"owner:     {d.get('owner') or 'unassigned'}",
        f"workload:  {d.get('workload') or '-'}   host {d['hostname']}",
        f"containers: {', '.join(d.get('containers') or []) or '-'}",
        f"tactics:   {', '.join(d.get('tactics') or []) or '-'}",
        f"alerts:    {d['alert_count']}  ({d['first'][:19]} .. {d['last'][:19]})",
    ]
    if d.get("notify_by"):
        left = d.get("notify_in_s")
        lines.append(
            f"notify by: {d['notify_by'][:19]}" + (f" ({left / 3600:.1f} h left)" if left is not None else "")
        )
    for p in d.get("pending_actions") or []:
        lines.append(f"pending:   {p.get('id')} {p.get('action')} {p.get('container', '')} (needs approval)")
    lines.append("timeline:")
    for e in d.get("timeline") or []:
        lines.append(f"  {e['time'][:23]}  {e['kind']:<8} {e['actor']:<16} {e['summary']}")
    return "\n".join(lines)


@incidents_app.command("show")
def show_incident(
    incident: IncidentArg,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """One incident: its facts and timeline (alerts, actions, evidence, state changes, notes)."""
    d = _get(apipaths.INCIDENT, port, data_dir, incident_id=incident)
    common.emit(d, _show_text(d), common.output_format(output))


@incidents_app.command("update")
def update_incident(
    incident: IncidentArg,
    status: Annotated[str | None, typer.Option("--status", help=", ".join(STATUSES))] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Who owns it ('' to unassign).")] = None,
    note: Annotated[str | None, typer.Option("--note", help="A note for the timeline.")] = None,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Change an incident's status or owner, or add a note (recorded on its timeline)."""
    common.check_choice(status, "--status", STATUSES)
    body = {"status": status, "owner": owner, "note": note, "who": common.who()}
    with locate.api_client(port, data_dir) as c:
        d = locate.check(c.patch(apipaths.api_path(apipaths.INCIDENT, incident_id=incident), json=body))
    common.emit(d, f"{d['id']}: {d['status']}, owner {d.get('owner') or '-'}", common.output_format(output))


@incidents_app.command("report")
def incident_report(
    incident: IncidentArg,
    fmt: Annotated[str, typer.Option("--format", help="markdown or html.")] = "markdown",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write it to this file (else stdout).")
    ] = None,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """The incident report: timeline, affected assets, actions, evidence with hashes, notification clock."""
    common.check_choice(fmt, "--format", ("markdown", "html"))
    with locate.api_client(port, data_dir) as c:
        r = c.get(apipaths.api_path(apipaths.INCIDENT_REPORT, incident_id=incident), params={"format": fmt})
        if r.status_code >= 400:
            locate.check(r)
        text = r.text
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as e:
        raise StockadeError(f"cannot write the report to {out}: {e.strerror or e}") from e
    common.console.print(f"report written to {out}", markup=False)


def register(app: typer.Typer) -> None:
    """Add `incidents` to the command line."""
    app.add_typer(incidents_app, name="incidents")
