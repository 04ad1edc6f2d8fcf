"""`stockade respond isolate|unisolate|freeze|thaw|capture|kill CONTAINER`, `respond approve|reject`
and `respond status`: response actions on the running Stockade, through its API (found as
`stockade status` finds it: stockade.cli.locate).

CONTAINER is a full id, a unique id prefix or a name. `capture` prints the bundle's path: a
contract. Exit 0 when the action worked, 1 when it failed (recorded, and the reason printed).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stockade.cli import common, locate
from stockade.cli.locate import DataDirOpt, PortOpt
from stockade.model import apipaths

respond_app = typer.Typer(help="Contain a container and keep the evidence.", no_args_is_help=True)

ContainerArg = Annotated[
    str, typer.Argument(metavar="CONTAINER", help="A container id, unique id prefix or name.")
]
IncidentOpt = Annotated[
    str | None, typer.Option("--incident", help="Record it on this incident (default: the container's).")
]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (recorded).")]


def _act(
    action: str, body: dict[str, Any], port: int | None, data_dir: str | None, output: str | None
) -> None:
    fmt = common.output_format(output)
    body = {k: v for k, v in body.items() if v not in (None, [], "")} | {"who": common.who()}
    with locate.api_client(port, data_dir, timeout_s=300.0) as c:
        r = c.post(apipaths.api_path(apipaths.RESPOND, action=action), json=body)
    if r.status_code == 409 and "action-failed" in r.headers.get("content-type", "") + r.text[:200]:
        detail = locate.problem_detail(r)
        if fmt == "json":
            common.json_line(
                {"action": action, "container": body["container"], "ok": False, "detail": detail}
            )
        common.print_error(detail)
        raise typer.Exit(1)
    d = locate.check(r)
    if action == "capture" and fmt != "json":
        typer.echo(d.get("path") or d.get("bundle"))
        return
    inc = f" (incident {d['incident']})" if d.get("incident") else ""
    common.emit(d, f"{action} {d.get('name') or d['container'][:12]}: {d['detail']}{inc}", fmt)


def _simple(action: str, doc: str) -> None:
    def command(
        container: ContainerArg,
        incident: IncidentOpt = None,
        reason: ReasonOpt = "",
        port: PortOpt = None,
        data_dir: DataDirOpt = None,
        output: str | None = common.OutputOpt,
    ) -> None:
        _act(action, {"container": container, "incident": incident, "reason": reason}, port, data_dir, output)

    command.__doc__ = doc
    respond_app.command(action)(command)


@respond_app.command("isolate")
def isolate(
    container: ContainerArg,
    allow: Annotated[
        list[str] | None, typer.Option("--allow", help="A CIDR it may still reach (forensics); repeatable.")
    ] = None,
    incident: IncidentOpt = None,
    reason: ReasonOpt = "",
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Cut the container off the network (new and established connections) but for the allow-list
    (default: response.forensics_allow). Undo with `unisolate`."""
    _act(
        "isolate",
        {"container": container, "allow": allow or [], "incident": incident, "reason": reason},
        port,
        data_dir,
        output,
    )


_simple("unisolate", "Lift a container's network isolation: it is connected as it was before.")
_simple(
    "freeze",
    "Freeze every process of the container (cgroup freezer): no CPU, nothing lost. Undo with `thaw`.",
)
_simple("thaw", "Let a frozen container run again.")


@respond_app.command("capture")
def capture(
    container: ContainerArg,
    memory: Annotated[
        list[str] | None,
        typer.Option("--memory", help="Dump the memory of this pid (host pid), or 'all'; repeatable."),
    ] = None,
    pid: Annotated[
        list[int] | None, typer.Option("--pid", help="Only this process (and its children); repeatable.")
    ] = None,
    incident: IncidentOpt = None,
    reason: ReasonOpt = "",
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Capture an evidence bundle of the container (frozen while memory is dumped); prints its path."""
    body = {
        "container": container,
        "memory": memory or [],
        "pids": pid or [],
        "incident": incident,
        "reason": reason,
    }
    _act("capture", body, port, data_dir, output)


_simple("kill", "Kill every process of the container; evidence is captured first if none was taken.")


@respond_app.command("approve")
def approve(
    incident: Annotated[str, typer.Argument(metavar="INCIDENT")],
    action_id: Annotated[str, typer.Argument(metavar="ACTION", help="The pending action's id (act-...).")],
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Run an action a playbook left waiting for approval."""
    with locate.api_client(port, data_dir, timeout_s=300.0) as c:
        path = apipaths.api_path(
            apipaths.INCIDENT_ACTION, incident_id=incident, action_id=action_id, decision="approve"
        )
        d = locate.check(c.post(path, json={"who": common.who()}))
    common.emit(
        d,
        f"{d['action']} {d.get('name') or d['container'][:12]}: {d['detail']}",
        common.output_format(output),
    )


@respond_app.command("reject")
def reject(
    incident: Annotated[str, typer.Argument(metavar="INCIDENT")],
    action_id: Annotated[str, typer.Argument(metavar="ACTION")],
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Drop an action a playbook left waiting for approval (recorded)."""
    with locate.api_client(port, data_dir) as c:
        path = apipaths.api_path(
            apipaths.INCIDENT_ACTION, incident_id=incident, action_id=action_id, decision="reject"
        )
        d = locate.check(c.post(path, json={"who": common.who()}))
    common.emit(d, f"rejected {action_id}", common.output_format(output))


@respond_app.command("status")
def status(port: PortOpt = None, data_dir: DataDirOpt = None, output: str | None = common.OutputOpt) -> None:
    """The playbooks loaded, queued work, and what this node can enforce (measured)."""
    with locate.api_client(port, data_dir) as c:
        d = locate.check(c.get(apipaths.api_path(apipaths.RESPONSE)))
    lines = [f"playbooks: {', '.join(d.get('playbooks') or []) or 'none'}"]
    for name, cap in (d.get("capabilities") or {}).items():
        ok = cap.get("ok") if isinstance(cap, dict) else cap
        detail = cap.get("detail", "") if isinstance(cap, dict) else ""
        lines.append(f"  {'yes' if ok else 'NO ':<4} {name}: {detail}")
    common.emit(d, "\n".join(lines), common.output_format(output))


def register(app: typer.Typer) -> None:
    """Add `respond` to the command line."""
    app.add_typer(respond_app, name="respond")
