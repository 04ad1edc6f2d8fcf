"""`stockade events`: query the stored event log by field and time, and show one event."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.text import Text

from stockade.cli import common, locate
from stockade.cli.common import DataDirOpt, DbOpt, LimitOpt, SinceOpt, SourceOpt, UntilOpt
from stockade.errors import UsageError
from stockade.model.event import Event
from stockade.model.timeutil import format_time_ns

events_app = typer.Typer(help="Query the stored event log by field and time.", no_args_is_help=True)


def parse_where(items: list[str] | None) -> dict[str, str]:
    """['proc.name=bash', 'fd.name=/etc/shadow'] -> {field: value}."""
    out: dict[str, str] = {}
    for item in items or []:
        field, sep, value = item.partition("=")
        field = field.strip()
        if not sep or not field:
            raise UsageError(f"--where: expected FIELD=VALUE, not '{item}'")
        out[field] = value
    return out


def event_json(e: Event) -> dict[str, Any]:
    """The JSON form of a stored event (one line per event with --output json)."""
    t = e.time_ns
    return {
        "id": e.id,
        "time": format_time_ns(t) if t is not None else None,
        "source": e.source,
        "origin": e.origin,
        "data": e.data,
        "meta": e.meta,
    }


def _get(d: dict[str, Any], *path: str) -> Any:
    v: Any = d
    for p in path:
        v = v.get(p) if isinstance(v, dict) else None
    return v


def _summary(e: Event) -> tuple[str, str]:
    """(type, one-line summary) of an event for the table."""
    d = e.data
    if e.source == "k8s_audit":
        verb = d.get("ka.verb") or d.get("verb") or ""
        user = d.get("ka.user.name") or _get(d, "user", "username") or ""
        obj = d.get("objectRef")
        ref: dict[str, Any] = obj if isinstance(obj, dict) else {}
        target = "/".join(
            str(x)
            for x in (ref.get("namespace"), ref.get("resource"), ref.get("name"), ref.get("subresource"))
            if x
        ) or str(d.get("requestURI") or "")
        return str(verb), f"{user} {verb} {target}".strip()
    parts = [str(d.get("proc.name") or "")]
    for k in ("proc.cmdline", "fd.name"):
        if d.get(k):
            parts.append(f"{k}={d[k]}")
    return str(d.get("evt.type") or ""), " ".join(p for p in parts if p)


@events_app.command("list")
def list_events(
    since: SinceOpt = None,
    until: UntilOpt = None,
    source: SourceOpt = None,
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where",
            "-w",
            help="FIELD=VALUE, exact match (repeatable; all must hold), e.g. proc.name=bash, ka.verb=create.",
        ),
    ] = None,
    limit: LimitOpt = 50,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """List stored events, newest first. With --output json: one event object per line."""
    fmt = common.output_format(output)
    common.check_source(source)
    conds = parse_where(where)
    since_ns, until_ns = common.parse_when(since, "--since"), common.parse_when(until, "--until")
    with locate.open_store(db, data_dir) as store:
        events = store.query_events(
            since_ns=since_ns, until_ns=until_ns, source=source, where=conds, limit=limit
        )
    if fmt == "text":
        _note_what_is_stored()
    if common.print_items(events, fmt, event_json, "no events"):
        return
    table = common.listing_table()
    table.add_column("TIME (UTC)", no_wrap=True)
    table.add_column("SOURCE", no_wrap=True)
    table.add_column("TYPE", no_wrap=True)
    table.add_column("CONTAINER", no_wrap=True, max_width=14, overflow="ellipsis")
    table.add_column("SUMMARY", no_wrap=True, overflow="ellipsis")
    table.add_column("ID", no_wrap=True)
    for e in events:
        kind, summary = _summary(e)
        t = e.time_ns
        table.add_row(
            common.short_time(t) if t is not None else "",
            e.source,
            Text(kind),
            Text(str(e.data.get("container.id") or "")),
            Text(common.truncate(summary, 120)),
            Text((e.id or "")[:12]),
        )
    common.print_table(table)
    if len(events) == limit:
        common.console.print(f"showing the newest {limit} events (use --limit to see more)", markup=False)


def _note_what_is_stored() -> None:
    """Unless every event is stored, say so on standard error, and which key stores more."""
    mode = common.STATE.config().storage.record_events
    if mode == "all":
        return
    what = {
        "alerts": "only events that raised an alert are stored",
        "none": "no events are stored",
    }[mode]
    common.err_console.print(
        f"note: {what} (storage.record_events: {mode}); set storage.record_events: all in the "
        "configuration to store every event the rules read",
        markup=False,
    )


def event_text(e: Event) -> str:
    """A readable, complete rendering of one event."""
    t = e.time_ns
    lines = [
        f"Event {e.id}",
        f"  time:    {format_time_ns(t) if t is not None else '<unknown>'}",
        f"  source:  {e.source}",
    ]
    if e.origin:
        lines.append(f"  origin:  {e.origin}")
    for k, v in sorted((e.meta or {}).items()):
        lines.append(f"  {k}: {v}")
    lines.append("  data:")
    if e.data and all(not isinstance(v, (dict, list)) for v in e.data.values()):
        width = max(len(k) for k in e.data)
        for k in sorted(e.data):
            v = e.data[k]
            lines.append(f"    {k.ljust(width)}  {'<NA>' if v is None else v}")
    else:
        body = orjson.dumps(e.data, option=orjson.OPT_INDENT_2, default=str).decode()
        lines.extend("    " + line for line in body.splitlines())
    return "\n".join(lines)


@events_app.command("show")
def show_event(
    event_id: Annotated[str, common.id_arg("Event")],
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Show one event in full (with --output json: its JSON object)."""
    fmt = common.output_format(output)
    with locate.open_store(db, data_dir) as store:
        e = store.get_event(event_id)
    common.emit(event_json(e), event_text(e), fmt)


def register(app: typer.Typer) -> None:
    """Add `stockade events` to the command line."""
    if not any(g.typer_instance is events_app for g in app.registered_groups):  # main() may run many times
        app.add_typer(events_app, name="events")
