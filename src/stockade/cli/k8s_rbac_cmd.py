"""`stockade k8s rbac generate|analyze`: least-privilege roles from audit logs, and the granted,
unused and risky permissions of RBAC objects (docs/k8s-rbac.md). The RBAC modules are imported
when a command runs: the other `stockade k8s` commands register this group without them."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from stockade.cli import common, k8s_cmd
from stockade.errors import SourceError, UsageError

__all__ = ["register"]

AuditOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--audit",
        metavar="LOG",
        help="A Kubernetes audit log (JSON Lines or EventList; - for stdin). Repeatable.",
    ),
]


def _problems(problems: list[str]) -> None:
    for p in problems:
        common.print_error(p)


def generate(
    audit: AuditOpt = None,
    user: Annotated[str | None, typer.Option("--user", help="Only this user.")] = None,
    serviceaccount: Annotated[
        str | None, typer.Option("--serviceaccount", metavar="NS:NAME", help="Only this service account.")
    ] = None,
    name_prefix: Annotated[
        str | None,
        typer.Option("--name-prefix", help="Generated objects are named PREFIX:USER (default: stockade)."),
    ] = None,
    allowed_only: Annotated[
        bool, typer.Option("--allowed-only", help="Leave out requests that were denied (403).")
    ] = False,
    existing: Annotated[
        list[str] | None,
        typer.Option(
            "--existing",
            metavar="FILE",
            help="RBAC objects already granted: requests they allow are left out.",
        ),
    ] = None,
) -> None:
    """Print the minimal Roles, ClusterRoles and their bindings (YAML) covering every request of
    each subject of the audit logs (or only --user / --serviceaccount)."""
    import yaml

    from stockade.k8s.rbac.generate import DEFAULT_PREFIX
    from stockade.k8s.rbac.generate import generate as generate_roles
    from stockade.k8s.rbac.load import load_rbac
    from stockade.k8s.rbac.model import sa_username
    from stockade.k8s.rbac.requests import read_audit

    if not audit:
        raise UsageError("--audit LOG is required")
    if user and serviceaccount:
        raise UsageError("--user and --serviceaccount cannot be given together")
    if serviceaccount is not None:
        ns, sep, name = serviceaccount.partition(":")
        if not (sep and ns and name) or ":" in name:
            raise UsageError(f"--serviceaccount {serviceaccount!r}: expected NS:NAME")
        user = sa_username(ns, name)
    reqs = read_audit(audit)
    _problems(reqs.problems)
    authz = None
    if existing:
        objs = load_rbac(existing)
        _problems(objs.problems)
        authz = objs.authorizer()
    by_user = reqs.by_user()
    if user and user not in by_user:
        raise UsageError(f"no request of {user} in the audit logs")
    docs = []
    for u, mine in by_user.items():
        if not user or u == user:
            docs += generate_roles(
                mine, u, prefix=name_prefix or DEFAULT_PREFIX, allowed_only=allowed_only, existing=authz
            )
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: 3x faster on large outputs
    sys.stdout.write(yaml.dump_all(docs, Dumper=dumper, sort_keys=False))


def analyze(
    files: Annotated[
        list[str], typer.Argument(metavar="RBAC_FILE", help="YAML/JSON files of RBAC objects (- for stdin).")
    ],
    audit: AuditOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Per subject: the granted permissions, those never used in the audit logs (with --audit),
    and the risky grants with their severity. JSON Lines (one subject per line) with -o json."""
    from stockade.k8s.rbac.analyze import analyze as analyze_rbac
    from stockade.k8s.rbac.load import load_rbac
    from stockade.k8s.rbac.requests import read_audit

    fmt = common.output_format(output)
    objs = load_rbac(files)
    _problems(objs.problems)
    if not objs.roles and not objs.bindings:
        raise SourceError(f"no Role, ClusterRole or binding in {', '.join(files)}")
    reqs = read_audit(audit) if audit else None
    if reqs is not None:
        _problems(reqs.problems)
    for rep in analyze_rbac(objs.authorizer(), reqs.items if reqs is not None else None):
        if fmt == "json":
            common.json_line(rep.as_dict())
            continue
        unused = "" if rep.unused is None else f", {len(rep.unused)} unused"
        common.console.print(f"{rep.subject}: {len(rep.granted)} rules granted{unused}", markup=False)
        for r in rep.risky:
            common.console.print(
                f"  {r['severity']:8} {r['check']}: {r['message']} ({r['binding']})", markup=False
            )


def register(app: typer.Typer) -> None:
    """Add `stockade k8s rbac generate|analyze`."""
    rbac = typer.Typer(
        help="RBAC least privilege: roles from audit logs, unused and risky grants.", no_args_is_help=True
    )
    rbac.command("generate")(generate)
    rbac.command("analyze")(analyze)
    k8s_cmd.group(app).add_typer(rbac, name="rbac")
