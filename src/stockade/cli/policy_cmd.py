"""`stockade policy generate|apply|show|diff|test|export`: WorkloadPolicy documents (docs/policies.md).

``generate``, ``apply`` and ``show`` talk to the running Stockade (found as `stockade status` finds
it); ``diff``, ``test`` and ``export`` work on files, offline:

* ``stockade policy test POLICY --against RECORDING...`` replays recorded events (any format
  `stockade replay` reads) and lists, in order, every event the policy would deny or audit, with
  the rule that decides it, then the counts by rule. ``--exit-code``: exit 1 when anything would be
  denied (for CI).
* ``stockade policy diff A B``: rules added, removed and changed; exit 1 when they differ (as
  ``diff`` does).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from stockade.cli import common, locate
from stockade.cli.locate import DataDirOpt, PortOpt
from stockade.cli.workloads_cmd import WorkloadArg
from stockade.errors import UsageError
from stockade.model import apipaths
from stockade.policy.diff import diff_policies
from stockade.policy.dryrun import dry_run
from stockade.policy.export import EXPORTERS
from stockade.policy.load import LoadedPolicy, load_policies, parse_policies
from stockade.runtime.offline import recorded_events

policy_app = typer.Typer(
    help="WorkloadPolicy documents: generate, apply, diff, test, export.", no_args_is_help=True
)

PolicyFileArg = Annotated[
    str, typer.Argument(metavar="POLICY", help="A WorkloadPolicy YAML file ('-' for stdin).")
]


def _load(path: str) -> list[LoadedPolicy]:
    if path == "-":
        return parse_policies(sys.stdin.read(), "<stdin>")
    if not Path(path).exists():
        raise UsageError(f"{path}: no such file")
    found = load_policies([path])
    if not found:
        raise UsageError(f"{path}: holds no WorkloadPolicy document")
    return found


def _one(path: str) -> LoadedPolicy:
    found = _load(path)
    if len(found) > 1:
        names = ", ".join(lp.policy.metadata.name for lp in found)
        raise UsageError(f"{path}: holds {len(found)} policies ({names}); give one per file here")
    return found[0]


@policy_app.command("generate")
def generate(
    workload: WorkloadArg,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Print a WorkloadPolicy generated from the workload's learned profile (not applied: edit it,
    then `stockade policy apply`)."""
    with locate.api_client(port, data_dir) as c:
        r = locate.check(c.post(apipaths.api_path(apipaths.POLICY_GENERATE, workload_id=workload)))
    sys.stdout.write(r["policy"])


@policy_app.command("show")
def show(workload: WorkloadArg, port: PortOpt = None, data_dir: DataDirOpt = None) -> None:
    """Print the policy in force for a workload."""
    with locate.api_client(port, data_dir) as c:
        r = locate.check(c.get(apipaths.api_path(apipaths.POLICY, workload_id=workload)))
    sys.stdout.write(r["policy"])


@policy_app.command("apply")
def apply(
    files: Annotated[list[str], typer.Argument(metavar="POLICY...", help="WorkloadPolicy YAML files.")],
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Apply policies to the running Stockade: checked here first (every error with file, line and
    field), then in force at once; says what this node can only audit."""
    fmt = common.output_format(output)
    texts = []
    for f in files:
        _load(f)  # every problem of the file, located, before anything is sent
        texts.append((f, sys.stdin.read() if f == "-" else Path(f).read_text()))
    with locate.api_client(port, data_dir) as c:
        for f, text in texts:
            body = {"policy": text, "origin": f, "who": common.who()}
            r = locate.check(c.put(apipaths.api_path(apipaths.POLICIES), json=body))
            lines = [f"applied {r['policy']} to {r['workload']} ({r['mode']})"]
            lines += [f"warning: {w}" for w in r.get("warnings") or []]
            common.emit(r, "\n".join(lines), fmt)


@policy_app.command("diff")
def diff(
    a: Annotated[str, typer.Argument(metavar="A", help="A WorkloadPolicy file.")],
    b: Annotated[str, typer.Argument(metavar="B", help="Another WorkloadPolicy file.")],
    output: str | None = common.OutputOpt,
) -> None:
    """What changes from A to B: rules added, removed, changed (exit 1 when they differ)."""
    d = diff_policies(_one(a).policy, _one(b).policy)
    common.emit(d.to_dict(), d.render(a, b).rstrip("\n") or "no difference", common.output_format(output))
    if not d.empty:
        raise typer.Exit(1)


@policy_app.command("test")
def test(
    policy: PolicyFileArg,
    against: Annotated[
        list[str],
        typer.Option(
            "--against", help="A recording to replay (repeatable; JSON Lines as `stockade replay` reads)."
        ),
    ],
    workload: Annotated[
        str | None, typer.Option("--workload", help="Test on this workload's events (default: the policy's).")
    ] = None,
    all_workloads: Annotated[
        bool, typer.Option("--all-workloads", help="Test on every event, whatever its workload.")
    ] = False,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 1 when anything would be denied.")
    ] = False,
    output: str | None = common.OutputOpt,
) -> None:
    """List every recorded event the policy would deny (and audit), by rule, in order."""
    fmt = common.output_format(output)
    lp = _one(policy)
    problems: list[str] = []
    report = dry_run(
        lp.policy, recorded_events(against, problems), workload=workload, all_workloads=all_workloads
    )
    for p in problems:
        common.print_error(p)
    if fmt == "json":
        for f in report.findings:
            common.json_line(f.to_dict())
        common.err_console.print(report.render().splitlines()[0], markup=False)
    else:
        common.console.print(report.render().rstrip("\n"), markup=False)
    if problems or (exit_code and not report.passed):
        raise typer.Exit(1)


@policy_app.command("export")
def export(
    policy: PolicyFileArg,
    format_: Annotated[str, typer.Option("--format", "-f", help=f"One of: {', '.join(EXPORTERS)}.")],
) -> None:
    """Write the policy in a format users already run (KubeArmorPolicy, NetworkPolicy, seccomp,
    Falco rules); what the format cannot express is said on standard error."""
    common.check_choice(format_, "--format", tuple(EXPORTERS))
    lp = _one(policy)
    result = EXPORTERS[format_](lp.policy)
    sys.stdout.write(result.text)
    for w in result.warnings:
        common.err_console.print(f"stockade: warning: {w}", markup=False)


def register(app: typer.Typer) -> None:
    """Add `policy` to the command line."""
    app.add_typer(policy_app, name="policy")
