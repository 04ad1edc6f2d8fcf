"""`stockade alerts`: list, filter and show the alerts in the store."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.text import Text

from stockade.cli import common, locate
from stockade.cli.common import DataDirOpt, DbOpt, LimitOpt, SinceOpt, SourceOpt, UntilOpt
from stockade.model.alert import Alert
from stockade.model.timeutil import format_time_ns

alerts_app = typer.Typer(help="List, filter and show stored alerts.", no_args_is_help=True)

PRIORITY_STYLE = {
    "Emergency": "bold red",
    "Alert": "bold red",
    "Critical": "red",
    "Error": "red",
    "Warning": "yellow",
    "Notice": "cyan",
    "Informational": "green",
    "Debug": "dim",
}


def _where(alert: Alert) -> str:
    if alert.workload:
        return alert.workload
    cid = alert.output_fields.get("container.id")
    return str(cid) if cid not in (None, "") else ""


@alerts_app.command("list")
def list_alerts(
    since: SinceOpt = None,
    until: UntilOpt = None,
    rule: Annotated[
        str | None,
        typer.Option("--rule", help="Only this rule (its exact name, in any case; --grep for a part)."),
    ] = None,
    priority: Annotated[
        str | None, typer.Option("--priority", "-p", help="This priority and more severe (e.g. Warning).")
    ] = None,
    source: SourceOpt = None,
    container: Annotated[
        str | None,
        typer.Option(
            "--container",
            help="Only this container: its name, id or id prefix, or the workload as listed (container:web).",
        ),
    ] = None,
    grep: Annotated[
        str | None, typer.Option("--grep", help="Only alerts whose output or rule contains TEXT (any case).")
    ] = None,
    limit: LimitOpt = 50,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """List stored alerts, newest first. With --output json: one Falco JSON alert per line."""
    fmt = common.output_format(output)
    common.check_source(source, alerts=True)
    priority = common.check_priority(priority, "--priority")
    from stockade.storage.filters import AlertFilter  # SQLAlchemy: imported by the commands that use it

    selected = AlertFilter(
        since_ns=common.parse_when(since, "--since"),
        until_ns=common.parse_when(until, "--until"),
        rule=rule,
        min_priority=priority,
        source=source,
        container_id=container,
        text=grep,
    )
    with locate.open_store(db, data_dir) as store:
        alerts = store.list_alerts(selected, limit=limit)
        total = store.count_alerts(selected) if fmt == "text" and len(alerts) >= limit else len(alerts)
    if common.print_items(alerts, fmt, Alert.to_falco_json, "no alerts"):
        return
    table = common.listing_table()
    table.add_column("TIME (UTC)", no_wrap=True)
    table.add_column("PRIORITY", no_wrap=True)
    table.add_column("RULE", no_wrap=True, max_width=40, overflow="ellipsis")
    table.add_column("CONTAINER/WORKLOAD", no_wrap=True, max_width=40, overflow="ellipsis")
    table.add_column("OUTPUT", no_wrap=True, overflow="ellipsis")
    table.add_column("ID", no_wrap=True)
    for a in alerts:
        count = f" ×{a.count}" if a.count > 1 else ""
        table.add_row(
            common.short_time(a.time_ns),
            Text(a.priority + count, style=PRIORITY_STYLE.get(a.priority, "")),
            Text(a.rule),
            Text(_where(a)),
            Text(common.truncate(a.output, 100)),
            Text(a.id[:12]),
        )
    common.print_table(table)
    if total > len(alerts):
        common.console.print(f"{len(alerts)} of {total} alerts (use --limit to see more)", markup=False)


def alert_text(a: Alert) -> str:
    """A readable, complete rendering of one alert."""
    lines = [
        f"Alert {a.id}",
        f"  time:      {format_time_ns(a.time_ns)}",
        f"  rule:      {a.rule}",
        f"  priority:  {a.priority}",
        f"  source:    {a.source}",
        f"  hostname:  {a.hostname}",
    ]
    if a.workload:
        lines.append(f"  workload:  {a.workload}")
    if a.count != 1:
        lines.append(f"  count:     {a.count}")
    if a.tags:
        lines.append(f"  tags:      {', '.join(a.tags)}")
    lines.append(f"  output:    {a.output}")
    if a.output_fields:
        lines.append("  fields:")
        width = max(len(k) for k in a.output_fields)
        for k in sorted(a.output_fields):
            lines.append(f"    {k.ljust(width)}  {_value(a.output_fields[k])}")
    if a.event_ids:
        lines.append(f"  events:    {', '.join(a.event_ids)}")
    for k, v in a.extra.items():
        lines.append(f"  {k}: {_value(v)}")
    return "\n".join(lines)


def _value(v: Any) -> str:
    if v is None:
        return "<NA>"
    if isinstance(v, str):
        return v
    return orjson.dumps(v, default=str).decode()


@alerts_app.command("show")
def show_alert(
    alert_id: Annotated[str, common.id_arg("Alert")],
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Show one alert in full (with --output json: its Falco JSON)."""
    fmt = common.output_format(output)
    with locate.open_store(db, data_dir) as store:
        a = store.get_alert(alert_id)
    common.emit(a.to_falco_json(), alert_text(a), fmt)


def register(app: typer.Typer) -> None:
    """Add `stockade alerts` to the command line."""
    if not any(g.typer_instance is alerts_app for g in app.registered_groups):  # main() may run many times
        app.add_typer(alerts_app, name="alerts")
