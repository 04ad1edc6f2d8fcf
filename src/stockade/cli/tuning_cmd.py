"""`stockade rules mute|unmute|mutes|reload`: tuning the running Stockade without a restart, through
its API (found as `stockade status` finds it: stockade.cli.locate)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stockade.cli import common, locate
from stockade.cli.locate import DataDirOpt, PortOpt
from stockade.cli.rules_cmd import rules_app
from stockade.errors import StockadeError
from stockade.model import apipaths


def _when(iso: str) -> str:
    return iso[:19].replace("T", " ")


def _mute_line(m: dict[str, Any]) -> str:
    where = m.get("workload") or "everywhere"
    return f"{m['id'][:12]}  {m['rule']!r} muted for {where} until {_when(m['expires'])} UTC: {m['reason']}"


def mute(
    rule: Annotated[str, typer.Argument(help="The rule's name, exactly as `stockade rules list` shows it.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (who asked, a ticket); required.")],
    workload: Annotated[
        str | None,
        typer.Option(
            "--workload",
            "-w",
            help="Only here: container:NAME|ID, image:REPO[:TAG], k8s:NAMESPACE or k8s:NAMESPACE/NAME, host, or a "
            "workload as alerts show it (default: everywhere).",
        ),
    ] = None,
    for_: Annotated[str | None, typer.Option("--for", help="How long: 90s, 15m, 2h, 7d.")] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Until this time (RFC 3339), instead of --for.")
    ] = None,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Mute a rule for a workload (or everywhere) until an expiry; applies at once, survives restarts.

    Muted alerts are counted (`stockade status`, /metrics), not stored or sent."""
    fmt = common.output_format(output)
    body: dict[str, Any] = {"rule": rule, "reason": reason, "workload": workload, "created_by": common.who()}
    if for_ is not None:
        body["for"] = for_
    if until is not None:
        body["until"] = until
    with locate.api_client(port, data_dir) as c:
        m = locate.check(c.post(apipaths.api_path(apipaths.MUTES), json=body))
    common.emit(m, "muted: " + _mute_line(m), fmt)


def unmute(
    mute_id: Annotated[str, typer.Argument(metavar="ID", help="The mute's id (or a unique prefix, 6+).")],
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Delete a mute: the rule alerts again at once."""
    fmt = common.output_format(output)
    with locate.api_client(port, data_dir) as c:
        m = locate.check(c.delete(apipaths.api_path(apipaths.MUTE, mute_id=mute_id)))
    common.emit(m, f"unmuted: {m['id'][:12]} ({m['rule']!r} for {m.get('workload') or 'everywhere'})", fmt)


def mutes(
    all_: Annotated[bool, typer.Option("--all", help="Include expired mutes.")] = False,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """List the mutes in force: id, rule, workload, expiry, alerts silenced, reason."""
    fmt = common.output_format(output)
    with locate.api_client(port, data_dir) as c:
        resp = c.get(apipaths.api_path(apipaths.MUTES), params={"all": "true" if all_ else "false"})
        items = locate.check(resp)["items"]
    if common.print_items(items, fmt, lambda m: m, "no mutes"):
        return
    table = common.listing_table()
    for col in ("ID", "RULE", "WORKLOAD", "EXPIRES (UTC)", "SILENCED", "REASON"):
        table.add_column(col, no_wrap=col != "REASON")
    for m in items:
        expires = _when(m["expires"]) + ("" if m["active"] else " (expired)")
        table.add_row(m["id"][:12], m["rule"], m.get("workload") or "*", expires, str(m["hits"]), m["reason"])
    common.print_table(table)


def reload(
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Load the running instance's rules files again (and the config's engine section); if they
    fail, the running rules are kept and the error is printed (exit 1)."""
    fmt = common.output_format(output)
    with locate.api_client(port, data_dir) as c:
        resp = c.post(apipaths.api_path(apipaths.RULES_RELOAD))
    if resp.status_code == 422:
        # the first error in the message, the others below it (the JSON body with --output json)
        body = resp.json()
        if fmt == "json":
            common.json_line(body)
        errors = [str(e) for e in body.get("errors") or ()]
        raise StockadeError(f"rules reload failed, {locate.problem_detail(resp)}", details=errors[1:])
    r = locate.check(resp)
    text = f"rules reloaded: {r['rules_active']} rules active (before: {r['rules_active_before']})"
    common.emit(r, "\n".join([text, *(f"note: {n}" for n in r.get("notes", []))]), fmt)


def register(_app: typer.Typer) -> None:
    """Add the tuning commands to `stockade rules` (rules_cmd's group, not the top level)."""
    rules_app.command("mute")(mute)
    rules_app.command("unmute")(unmute)
    rules_app.command("mutes")(mutes)
    rules_app.command("reload")(reload)
