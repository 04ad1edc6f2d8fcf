"""`stockade workloads list|show`, `stockade profiles show`, `stockade mode set`: zero trust on the
running Stockade, through its API (found as `stockade status` finds it: stockade.cli.locate).

`stockade workloads list --output json` prints one JSON object per line with at least ``id``,
``mode`` and ``containers`` (the full ids of the workload's running containers): a contract.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stockade.cli import common, locate
from stockade.cli.locate import DataDirOpt, PortOpt
from stockade.model import apipaths

workloads_app = typer.Typer(help="The workloads zero trust learns and protects.", no_args_is_help=True)
profiles_app = typer.Typer(help="Learned behaviour profiles.", no_args_is_help=True)
mode_app = typer.Typer(help="A workload's mode: discover, monitor or protect.", no_args_is_help=True)

WorkloadArg = Annotated[
    str, typer.Argument(metavar="WORKLOAD", help="A workload id as `stockade workloads list` shows it.")
]


def _get(route: str, port: int | None, data_dir: str | None, **params: str) -> Any:
    with locate.api_client(port, data_dir) as c:
        return locate.check(c.get(apipaths.api_path(route, **params)))


def _line(w: dict[str, Any]) -> list[str]:
    prof = w.get("profile") or {}
    conf = prof.get("confidence")
    return [
        w["id"],
        w["mode"],
        ", ".join(w.get("container_names") or []) or "-",
        f"{prof.get('entries', 0)} ({conf:.0%})" if conf is not None else "-",
        w.get("policy") or "-",
    ]


@workloads_app.command("list")
def list_workloads(
    port: PortOpt = None, data_dir: DataDirOpt = None, output: str | None = common.OutputOpt
) -> None:
    """Every workload: id, mode, running containers, profile size and confidence, policy."""
    fmt = common.output_format(output)
    items = _get(apipaths.WORKLOADS, port, data_dir)["items"]
    if fmt == "json":
        for w in items:
            common.json_line(w)
        return
    if not items:
        common.console.print("no workloads seen yet", markup=False)
        return
    table = common.listing_table()
    for col in ("WORKLOAD", "MODE", "CONTAINERS", "PROFILE", "POLICY"):
        table.add_column(col)
    for w in items:
        table.add_row(*_line(w))
    common.print_table(table)


def _show_text(w: dict[str, Any]) -> str:
    lines = [f"workload:   {w['id']}", f"mode:       {w['mode']} since {w['mode_since']}"]
    lines.append(f"containers: {', '.join(w.get('container_names') or []) or '-'}")
    lines.append(f"image:      {w.get('image_repository') or '-'} {w.get('image_digest') or ''}".rstrip())
    lines.append(f"policy:     {w.get('policy') or '-'} ({w.get('policy_source') or 'none'})")
    prof = w.get("profile")
    if prof:
        lines.append(
            f"profile:    version {prof['version']}, {prof['entries']} entries, {prof['observations']} "
            f"operations, confidence {prof['confidence']:.0%}"
        )
        lines += [f"  under-observed: {u}" for u in prof.get("under_observed") or []]
        lines += [f"  new in this version: {n}" for n in prof.get("new_in_version") or []]
    for digest, items in (w.get("new_by_digest") or {}).items():
        lines += [f"  new in {digest[:19]}: {n}" for n in items]
    lines += _anomaly_lines(w.get("anomaly_model"))
    lines += [f"warning:    {x}" for x in w.get("warnings") or []]
    for h in w.get("history") or []:
        lines.append(
            f"  {h.get('time', '')} {h.get('old') or '-'} -> {h['new']} by {h.get('who')}: {h.get('why')}"
        )
    return "\n".join(lines)


def _anomaly_lines(m: dict[str, Any] | None) -> list[str]:
    if not m:
        return []
    t = m.get("threshold_bits")
    when = f"threshold {t:.2f} bits per token" if t is not None else "learning (no threshold yet)"
    if m.get("ready") is False:
        when += f"; scores nothing until {m.get('min_tokens')} tokens trained ({m.get('tokens_trained', 0)} so far)"
    return [
        f"anomaly:    {m.get('model')}: {m.get('tokens_learned', 0)} tokens learned, "
        f"{m.get('vocabulary', 0)} distinct, {when}"
    ]


@workloads_app.command("show")
def show_workload(
    workload: WorkloadArg,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """One workload: mode and its history, containers, profile summary, what looks under-observed."""
    w = _get(apipaths.WORKLOAD, port, data_dir, workload_id=workload)
    common.emit(w, _show_text(w), common.output_format(output))


#: how many leading items of an entry of each section are its key (the rest: count, first, last...)
_KEY_LEN = {"processes": 3, "files": 2, "network": 4, "privileged": 1, "syscalls": 1}


def _profile_text(p: dict[str, Any]) -> str:
    lines = [f"profile of {p['workload']} (image {p.get('image_digest') or '-'}, version {p.get('version')})"]
    for section, n in _KEY_LEN.items():
        entries = p.get(section) or []
        lines.append(f"{section} ({len(entries)}):")
        for e in entries:
            key, count = e[:n], e[n] if len(e) > n else "?"
            lines.append(f"  {' '.join(str(k) for k in key if k not in ('', None))}  x{count}")
    return "\n".join(lines)


@profiles_app.command("show")
def show_profile(
    workload: WorkloadArg,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """The behaviour learned for a workload: processes, files, network, privileged operations, syscalls."""
    p = _get(apipaths.PROFILE, port, data_dir, workload_id=workload)
    common.emit(p, _profile_text(p), common.output_format(output))


@mode_app.command("set")
def set_mode(
    workload: Annotated[
        str,
        typer.Argument(
            metavar="WORKLOAD",
            help="A workload id, a pattern (k8s/shop/*) or namespace:NS (every workload there, now and later).",
        ),
    ],
    mode: Annotated[str, typer.Argument(metavar="MODE", help="discover, monitor or protect.")],
    force: Annotated[
        bool, typer.Option("--force", help="Protect without the dry run on the workload's recent operations.")
    ] = False,
    why: Annotated[str, typer.Option("--why", help="Why (recorded with the change).")] = "",
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Set a workload's mode at once. Protect first replays its recent operations against its policy
    and refuses (exit 1, saying why) if any would be denied; --force skips that."""
    common.check_choice(mode, "MODE", ("discover", "monitor", "protect"))
    body = {"mode": mode, "force": force, "why": why or f"stockade mode set {mode}", "who": common.who()}
    with locate.api_client(port, data_dir) as c:
        r = locate.check(c.put(apipaths.api_path(apipaths.MODE, workload_id=workload), json=body))
    change = r.get("change") or {}
    text = f"{workload}: {change.get('old', '?')} -> {change.get('new', mode)}"
    if "pattern" in r:
        text = f"{r['pattern']}: {len(r['changed'])} workloads set to {mode}, {len(r['refused'])} refused"
    warnings = change.get("warnings") or []
    common.emit(r, "\n".join([text, *(f"warning: {x}" for x in warnings)]), common.output_format(output))
    if r.get("refused"):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `workloads`, `profiles` and `mode` to the command line."""
    app.add_typer(workloads_app, name="workloads")
    app.add_typer(profiles_app, name="profiles")
    app.add_typer(mode_app, name="mode")
