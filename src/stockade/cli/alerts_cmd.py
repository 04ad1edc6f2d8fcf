"""`stockade alerts`: list, filter and show the alerts in the store.

Also holds what `stockade events` shares with it: opening the store (--db, --data-dir), times
(--since / --until) and the output format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from stockade.cli import common
from stockade.config import load_config
from stockade.errors import StorageError, UsageError
from stockade.model.alert import Alert, normalize_priority
from stockade.model.event import SOURCES
from stockade.model.timeutil import format_time_ns, now_ns, parse_duration_s, parse_time_ns
from stockade.storage.store import Store, normalize_url

alerts_app = typer.Typer(help="List, filter and show stored alerts.", no_args_is_help=True)

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db", help="Database URL (overrides storage.url), e.g. sqlite:///path or postgresql://...."
    ),
]
DataDirOpt = Annotated[
    str | None, typer.Option("--data-dir", help="Data directory holding stockade.db (overrides data_dir).")
]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="From this time: a duration ago (90s, 15m, 2h, 7d) or RFC 3339.")
]
UntilOpt = Annotated[
    str | None, typer.Option("--until", help="Up to this time: a duration ago (15m) or RFC 3339.")
]
SourceOpt = Annotated[str | None, typer.Option("--source", help=f"Only this source: {', '.join(SOURCES)}.")]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many, newest first.")]

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


# -- shared with events_cmd ----------------------------------------------------------------------


def output_format(local: str | None) -> str:
    """The subcommand's --output if given, else the global one."""
    fmt = local or common.STATE.output
    if fmt not in ("text", "json"):
        raise UsageError(f"--output must be 'text' or 'json', not '{fmt}'")
    return fmt


def open_store(db: str | None, data_dir: str | None) -> Store:
    """The store named by --db, else by the configuration (with --data-dir applied).

    Reading commands never create a database: a SQLite file that does not exist is an error.
    """
    if db:
        url = db
    elif data_dir:
        cfg = load_config(common.STATE.config_path, {**common.STATE.overrides, "data_dir": data_dir})
        url = cfg.db_url()
    else:
        url = common.STATE.config().db_url()
    try:
        u = normalize_url(url)
    except Exception:
        u = None
    if u is not None and u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        path = Path(u.database).expanduser()
        if not u.database.startswith("file:") and not path.exists():
            raise StorageError(
                f"no database at {path}: nothing has been stored there yet (give --db URL or --data-dir DIR)"
            )
    return Store(url)


def parse_when(value: str | None, option: str) -> int | None:
    """--since/--until: RFC 3339 time, or a duration meaning that long ago -> ns since the epoch."""
    if value is None:
        return None
    t = parse_time_ns(value)
    if t is not None:
        return t
    try:
        d = parse_duration_s(value)
    except ValueError:
        d = -1.0
    if d < 0:
        raise UsageError(
            f"{option}: expected a duration (90s, 15m, 2h, 7d) or an RFC 3339 time, not '{value}'"
        )
    return now_ns() - int(d * 1_000_000_000)


def check_source(source: str | None) -> None:
    if source is not None and source not in SOURCES:
        raise UsageError(f"--source must be one of {', '.join(SOURCES)}, not '{source}'")


def short_time(ns: int) -> str:
    """'2024-11-22 18:13:20' (UTC)."""
    return format_time_ns(ns)[:19].replace("T", " ")


def print_table(table: Table) -> None:
    """Print a table; piped output has no terminal width, so it is not squeezed into 80 columns."""
    if common.console.is_terminal:
        common.console.print(table)
    else:
        Console(highlight=False, width=250, color_system=None).print(table)


def truncate(s: str, n: int) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"


# -- alerts --------------------------------------------------------------------------------------


def _where(alert: Alert) -> str:
    if alert.workload:
        return alert.workload
    cid = alert.output_fields.get("container.id")
    return str(cid) if cid not in (None, "") else ""


@alerts_app.command("list")
def list_alerts(
    since: SinceOpt = None,
    until: UntilOpt = None,
    rule: Annotated[str | None, typer.Option("--rule", help="Only this rule (exact name).")] = None,
    priority: Annotated[
        str | None, typer.Option("--priority", "-p", help="This priority and more severe (e.g. Warning).")
    ] = None,
    source: SourceOpt = None,
    container: Annotated[
        str | None, typer.Option("--container", help="Only this container id (or prefix).")
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
    fmt = output_format(output)
    check_source(source)
    if priority is not None and normalize_priority(priority) is None:
        raise UsageError(f"--priority: unknown priority '{priority}'")
    filters: dict[str, Any] = {
        "since_ns": parse_when(since, "--since"),
        "until_ns": parse_when(until, "--until"),
        "rule": rule,
        "min_priority": priority,
        "source": source,
        "container_id": container,
        "text": grep,
    }
    with open_store(db, data_dir) as store:
        alerts = store.list_alerts(**filters, limit=limit)
        total = store.count_alerts(**filters) if fmt == "text" and len(alerts) >= limit else len(alerts)
    if fmt == "json":
        for a in alerts:
            common.json_line(a.to_falco_json())
        return
    if not alerts:
        common.console.print("no alerts", markup=False)
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("TIME (UTC)", no_wrap=True)
    table.add_column("PRIORITY", no_wrap=True)
    table.add_column("RULE", no_wrap=True, max_width=40, overflow="ellipsis")
    table.add_column("CONTAINER/WORKLOAD", no_wrap=True, max_width=40, overflow="ellipsis")
    table.add_column("OUTPUT", no_wrap=True, overflow="ellipsis")
    table.add_column("ID", no_wrap=True)
    for a in alerts:
        count = f" ×{a.count}" if a.count > 1 else ""
        table.add_row(
            short_time(a.time_ns),
            Text(a.priority + count, style=PRIORITY_STYLE.get(a.priority, "")),
            Text(a.rule),
            Text(_where(a)),
            Text(truncate(a.output, 100)),
            Text(a.id[:12]),
        )
    print_table(table)
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
    alert_id: Annotated[
        str, typer.Argument(metavar="ID", help="Alert id, or a unique prefix (6+ characters).")
    ],
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Show one alert in full (with --output json: its Falco JSON)."""
    fmt = output_format(output)
    with open_store(db, data_dir) as store:
        a = store.get_alert(alert_id)
    if fmt == "json":
        common.json_line(a.to_falco_json())
    else:
        common.console.print(alert_text(a), markup=False)


def register(app: typer.Typer) -> None:
    if not any(g.typer_instance is alerts_app for g in app.registered_groups):  # main() may run many times
        app.add_typer(alerts_app, name="alerts")
