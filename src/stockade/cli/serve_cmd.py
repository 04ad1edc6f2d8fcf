"""`stockade up`, `stockade server`, `stockade agent` and `stockade status`."""

from __future__ import annotations

import signal
from typing import Annotated, Any

import typer

from stockade.cli import common, locate
from stockade.cli.top_cmd import status_line
from stockade.config import DEFAULT_DATA_DIR
from stockade.model import apipaths

PortOpt = typer.Option("--port", "-p", help="API port (default 8720, or api.port).")
DataDirOpt = typer.Option(
    "--data-dir", help=f"Where the database and spools live (default {DEFAULT_DATA_DIR}, or data_dir)."
)
RulesOpt = typer.Option(
    "--rules", "-r", help="Rules file or directory (repeatable; default: the default rules)."
)


def _apply(port: int | None, data_dir: str | None) -> None:
    if port is not None:
        common.STATE.override("api.port", port, "--port")
    if data_dir is not None:
        common.STATE.override("data_dir", data_dir, "--data-dir")


def _say(line: str) -> None:
    common.err_console.print(line, markup=False)


def _reload_config() -> Any:
    """The configuration read again as at start (file, environment, the same flags): for reloads."""
    from stockade.config import load_config

    st = common.STATE
    return load_config(st.config_path, st.overrides or None, override_origins=st.origins)


def _run(role: str, rules: list[str] | None, sensor: bool = False) -> None:
    from stockade.api.server import serve
    from stockade.runtime.preflight import preflight
    from stockade.runtime.service import Runtime

    # until the server handles it, a SIGHUP (logrotate) must not kill a starting instance
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    cfg = common.STATE.config()
    preflight(cfg)  # a busy port or an unusable data directory fails before anything starts
    rt = Runtime(
        cfg,
        rules=rules or None,
        extra_sinks=common.console_sinks(cfg),
        role=role,
        sensor=sensor,
        config_loader=_reload_config,
        say=_say,
    )
    for n in rt.notes:
        common.err_console.print(n, markup=False)
    if rt.sensor is not None:
        p = rt.sensor.plan.describe()
        common.err_console.print(f"sensor backend: {p['backend'] or 'none available'}", markup=False)
        for name, c in p["probed"].items():
            if not c["available"]:
                common.err_console.print(f"  {name}: unavailable: {c['reason']}", markup=False)
        if p["missing_evttypes"]:
            common.err_console.print(
                "  event types the rules need that this node cannot see: " + ", ".join(p["missing_evttypes"]),
                markup=False,
            )
        if p["missing_fields"]:
            common.err_console.print(
                "  fields the backend cannot fill: " + ", ".join(p["missing_fields"]), markup=False
            )
    common.err_console.print(
        f"stockade {role}: {rt.engine.active_rules} rules active; API on http://{cfg.api.host}:{cfg.api.port}; "
        f"data in {cfg.data_dir}; Ctrl-C to stop",
        markup=False,
    )
    serve(rt)
    common.err_console.print(f"stockade {role}: stopped ({rt.pipeline.stats.alerts} alerts)", markup=False)


def up(
    port: Annotated[int | None, PortOpt] = None,
    data_dir: Annotated[str | None, DataDirOpt] = None,
    rules: Annotated[list[str] | None, RulesOpt] = None,
) -> None:
    """Run Stockade on this host: manager, API on 127.0.0.1:8720, default rules; alerts stored and printed."""
    _apply(port, data_dir)
    _run("up", rules, sensor=True)


def server(
    port: Annotated[int | None, PortOpt] = None,
    data_dir: Annotated[str | None, DataDirOpt] = None,
    rules: Annotated[list[str] | None, RulesOpt] = None,
) -> None:
    """Run the manager alone: the API, rules, storage and sinks (agents and Falco ship events to it)."""
    _apply(port, data_dir)
    _run("server", rules)


def agent(
    manager: Annotated[
        str, typer.Option("--manager", "-m", help="The manager's URL (its API).")
    ] = "http://127.0.0.1:8720",
    data_dir: Annotated[str | None, DataDirOpt] = None,
    rules: Annotated[list[str] | None, RulesOpt] = None,
) -> None:
    """Run the sensor and the engine on this node, shipping alerts and evidence to a manager
    (buffered on disk while it is unreachable)."""
    from stockade.runtime.agent import Agent
    from stockade.runtime.preflight import preflight
    from stockade.sinks.stdout import StdoutSink

    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _apply(None, data_dir)
    cfg = common.STATE.config()
    preflight(cfg, api=False)
    ag = Agent(
        cfg,
        manager,
        rules=rules or None,
        sinks=[StdoutSink(format=common.STATE.output, name="console")],
        config_loader=_reload_config,
        say=_say,
    )
    p = ag.sensor.plan.describe()
    common.err_console.print(
        f"stockade agent: {ag.engine.active_rules} rules active; sensor backend: {p['backend'] or 'none available'}; "
        f"shipping to {manager}; Ctrl-C to stop",
        markup=False,
    )
    ag.run()
    st = ag.shipper.stats
    common.err_console.print(
        f"stockade agent: stopped ({ag.pipeline.stats.alerts} alerts; shipped {st.sent['alerts']} alerts, "
        f"{st.sent['events']} events; {ag.shipper.backlog} batches left in the spool)",
        markup=False,
    )


def status(
    port: locate.PortOpt = None,
    data_dir: locate.DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Show what the running Stockade is doing: backend, rules, events/s, drops, mutes, recent alerts.

    Without --port or --data-dir it finds the running instance itself (docs/operations.md)."""
    fmt = common.output_format(output)
    with locate.api_client(port, data_dir) as c:
        data: dict[str, Any] = locate.check(c.get(apipaths.api_path(apipaths.STATUS)))
        recent = c.get(apipaths.api_path(apipaths.ALERTS), params={"limit": 5})
        alerts = locate.check(recent).get("items", [])
    if fmt == "json":
        common.json_line({"status": data, "recent_alerts": alerts})
        return
    rt = data.get("runtime") or {}
    sensor = rt.get("sensor", {})
    rules = rt.get("rules", {})
    last = rules.get("last_reload")
    lines = [
        f"stockade {rt.get('version')} ({rt.get('role')}) on {rt.get('hostname')}, up {rt.get('uptime_s')}s",
        f"sensor backend: {sensor.get('backend') or 'none'}"
        + (f" ({sensor['note']})" if sensor.get("note") else "")
        + (
            f"; {sensor['events']} events, {sensor.get('lost_total', 0)} lost, "
            f"{sensor.get('filtered_total', 0)} filtered in the kernel"
            if "events" in sensor
            else ""
        ),
        f"rules: {rules.get('active')} active of {rules.get('loaded')}"
        + (
            ""
            if not last
            else f"; last reload {last['time']}: "
            + ("ok" if last["ok"] else f"FAILED, the previous rules kept: {last.get('error')}")
        ),
        f"events: {rt.get('events', {}).get('total')} ({rt.get('events', {}).get('per_second')}/s)",
        f"alerts: {rt.get('alerts', {}).get('total')}"
        + (f"; {rt['alerts']['muted']} muted" if rt.get("alerts", {}).get("muted") else ""),
        f"mutes: {rt.get('mutes', {}).get('active', 0)} active (`stockade rules mutes`)",
        f"drops: {rt.get('drops')}",
        *_zero_trust_lines(rt.get("zero_trust")),
        status_line(rt.get("resources")),
        *_incident_lines(rt.get("incidents"), rt.get("response")),
        _audit_line(rt.get("audit")),
        "recent alerts:",
    ]
    lines += [f"  {a.get('time')} {a.get('priority')} {a.get('rule')}" for a in alerts] or ["  none"]
    for line in lines:
        common.console.print(line, markup=False)


def _zero_trust_lines(zt: dict[str, Any] | None) -> list[str]:
    """Workloads per mode, and what this node can enforce per kind of operation."""
    if not zt:
        return ["zero trust: not running here (no sensor in this process)"]
    modes = ", ".join(f"{n} {m}" for m, n in zt.get("modes", {}).items())
    lines = [f"zero trust: {zt.get('workloads', 0)} workloads ({modes}) (`stockade workloads list`)"]
    enf = zt.get("enforcement") or {}
    support = enf.get("support") or {}
    if support:
        kinds = ", ".join(f"{k} {v.get('support')}" for k, v in support.items())
        lines.append(f"enforcement on this node: {kinds}")
    return lines


def _audit_line(audit: dict[str, Any] | None) -> str:
    """The audit log: records appended, signed, failed (`stockade audit verify` checks it)."""
    if not audit:
        return "audit log: off (audit.enabled: false)"
    line = (
        f"audit log: {audit.get('appended', 0)} records appended since start, signed up to record "
        f"{audit.get('signed_up_to', 0)} by key {audit.get('key_id')} (`stockade audit verify`)"
    )
    if audit.get("failed"):
        line += f"; {audit['failed']} FAILED to append: {audit.get('last_error')}"
    return line


def _incident_lines(inc: dict[str, Any] | None, resp: dict[str, Any] | None) -> list[str]:
    """Active incidents, and the playbooks and containment this node can do."""
    if not inc:
        return ["incidents: not grouped here (incidents.enabled: false)"]
    line = f"incidents: {inc.get('active', 0)} active, {inc.get('opened', 0)} opened since start (`stockade incidents list`)"
    if inc.get("dropped") or inc.get("errors"):
        line += f"; {inc.get('dropped', 0)} alerts dropped, {inc.get('errors', 0)} failed to group"
    lines = [line]
    if resp:
        lines.append(f"response: {len(resp.get('playbooks') or [])} playbooks (`stockade respond status`)")
    return lines


def register(app: typer.Typer) -> None:
    """Add `stockade up`, `server`, `status` and `agent` to the command line."""
    app.command("up")(up)
    app.command("server")(server)
    app.command("status")(status)
    app.command("agent")(agent)
