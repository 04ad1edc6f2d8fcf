"""`stockade k8s scan PATH... [--cluster]`: the check catalogue over manifests and live clusters
(docs/k8s-scan.md).

Exit status: 2 for a bad option or a PATH that does not exist; 1 when nothing could be scanned
(no object loaded, or the cluster could not be read); `--exit-code N` when findings remain after
the filters; 0 otherwise. Inputs that give no object are reported (with file, line and column)
in every format, and the scan goes on.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.text import Text

from stockade.cli import common, k8s_cmd
from stockade.errors import UsageError

__all__ = ["register", "scan"]

if TYPE_CHECKING:
    from stockade.k8s.catalogue import Check
    from stockade.k8s.load import Loaded
    from stockade.k8s.report import ScanResult

FORMATS = ("table", "json", "sarif", "junit")
SEVERITY_ORDER = {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3}


def _checks(
    standard: str, severity: str | None, ids: list[str] | None, skip: list[str] | None
) -> list[Check]:
    from stockade.k8s.catalogue import get_check, select
    from stockade.vulns.scan import parse_severities

    severities = parse_severities(severity) if severity else None
    for i in skip or ():
        get_check(i)  # an unknown id is a usage error
    chosen = select(standard, severities, ids or None)
    return [c for c in chosen if c.id not in set(skip or ())]


def _in_namespace(namespace: str | None, ns_of: str | None) -> bool:
    return namespace is None or ns_of is None or ns_of == namespace


def _load(
    paths: list[str], cluster: bool, kubeconfig: str | None, context: str | None, namespace: str | None
) -> Loaded:
    from stockade.k8s.load import load_paths

    loaded = load_paths(paths)
    if namespace:
        loaded.objects = [o for o in loaded.objects if _in_namespace(namespace, o.namespace)]
    if cluster:
        from stockade.k8s.cluster import load_cluster

        loaded.extend(load_cluster(kubeconfig, context, namespace))
    return loaded


def _scan(loaded: Loaded, checks: list[Check], registries: list[str] | None) -> ScanResult:
    from stockade.k8s.catalogue import Context, evaluate
    from stockade.k8s.report import Problem, ScanResult

    ctx = Context(loaded.objects)
    if registries:
        from stockade.k8s.checks.images import configure_registries

        configure_registries(ctx, registries)
    findings = evaluate(loaded.objects, checks, ctx)
    problems = [Problem.of_load(e) for e in loaded.errors]
    problems += [Problem.of_check(c, o, err) for c, o, err in ctx.errors]
    return ScanResult(
        findings, loaded.objects, problems, loaded.files, lambda f: loaded.template_at(f.file, f.line)
    )


def _table(result: ScanResult) -> str:
    from rich.console import Console
    from rich.table import Table

    table: Table = common.listing_table()
    for col in ("SEVERITY", "CHECK", "RESOURCE"):
        table.add_column(col, no_wrap=True, overflow="ellipsis", max_width=70)
    table.add_column("WHERE", no_wrap=True)
    table.add_column("MESSAGE", overflow="fold", max_width=100)
    for f in sorted(
        result.findings, key=lambda f: (SEVERITY_ORDER.get(f.severity, 9), f.file or "", f.line or 0)
    ):
        res = f"{f.kind}/{f.namespace + '/' if f.namespace else ''}{f.name}"
        where = f"{f.file}:{f.line}" if f.line else str(f.file or "-")
        template = result.template(f)
        table.add_row(
            f.severity,
            Text(f.check),
            Text(res),
            Text(where + (f" ({template})" if template else "")),
            Text(f.message),
        )
    with open(os.devnull, "w") as sink:
        console = Console(highlight=False, width=250, color_system=None, record=True, file=sink)
        console.print(table)
    return console.export_text()


def _summary(result: ScanResult, checks: int) -> str:
    counts = Counter(f.severity for f in result.findings)
    by_sev = ", ".join(f"{counts[s]} {s}" for s in SEVERITY_ORDER if counts[s])
    text = (
        f"{len(result.objects)} objects from {result.files} inputs, {checks} checks: "
        f"{len(result.findings)} findings" + (f" ({by_sev})" if by_sev else "")
    )
    if result.problems:
        text += f"; {len(result.problems)} problems (above)"
    return text


def _write(text: str, output_file: str | None) -> None:
    if output_file:
        with open(output_file, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()


def _render(result: ScanResult, fmt: str, target: str) -> str:
    from stockade.k8s import report

    if fmt == "json":
        return report.json_lines(result)
    if fmt == "sarif":
        return orjson.dumps(report.sarif(result, target), option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "junit":
        return report.junit(result, target)
    if not result.findings:
        return "no findings\n"
    return _table(result)


def scan(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Files, directories (*.yaml, *.yml, *.json, recursively) or - (standard input).",
            show_default=False,
        ),
    ] = None,
    cluster: Annotated[
        bool, typer.Option("--cluster", help="Scan the live cluster of the kubeconfig.")
    ] = False,
    kubeconfig: Annotated[
        str | None,
        typer.Option("--kubeconfig", help="The kubeconfig (default: $KUBECONFIG, ~/.kube/config)."),
    ] = None,
    context: Annotated[
        str | None, typer.Option("--context", help="The kubeconfig context (default: current).")
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", "-n", help="Only this namespace (files: objects naming it or none)."),
    ] = None,
    standard: Annotated[
        str, typer.Option("--standard", help="pss-baseline, pss-restricted, nsa, cis or all.")
    ] = "all",
    severity: Annotated[
        str | None,
        typer.Option("--severity", "-s", help="A list (CRITICAL,HIGH) or a threshold (HIGH+). Default: all."),
    ] = None,
    exit_code: Annotated[
        int, typer.Option("--exit-code", min=0, max=255, help="Exit with this code when findings remain.")
    ] = 0,
    fmt: Annotated[
        str | None,
        typer.Option("--format", "-f", help="table, json (one finding per line), sarif (2.1.0) or junit."),
    ] = None,
    check_ids: Annotated[
        list[str] | None, typer.Option("--check", help="Run only this check (repeatable).")
    ] = None,
    skip_ids: Annotated[
        list[str] | None, typer.Option("--skip-check", help="Leave out this check (repeatable).")
    ] = None,
    registries: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-registry", help="An allowed image registry (repeatable): enables allowed-registries."
        ),
    ] = None,
    output_file: Annotated[
        str | None, typer.Option("--output-file", help="Write the report to this file.")
    ] = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Check Kubernetes manifests (or a live cluster) against the catalogue: Pod Security
    Standards, NSA/CISA and CIS items, RBAC and the rest (`stockade k8s checks` lists them)."""
    common.check_choice(fmt, "--format", FORMATS)
    out_fmt = fmt or ("json" if common.output_format(output) == "json" else "table")
    paths = paths or []
    if not paths and not cluster:
        raise UsageError("give a PATH (a file, a directory or - for standard input) or --cluster")
    missing = [p for p in paths if p != "-" and not os.path.exists(p)]
    if missing:
        raise UsageError(f"{missing[0]}: no such file or directory")
    if paths.count("-") > 1:
        raise UsageError("- (standard input) can be given once")
    checks = _checks(standard, severity, check_ids, skip_ids)
    loaded = _load(paths, cluster, kubeconfig, context, namespace)
    result = _scan(loaded, checks, registries)
    target = " ".join(paths + ([f"cluster:{context or 'current'}"] if cluster else []))
    if out_fmt == "json":
        from stockade.k8s.report import problem_lines

        common.err_console.file.write(problem_lines(result))
    else:
        for p in result.problems:
            common.print_error(str(p))
    _write(_render(result, out_fmt, target), output_file)
    if out_fmt != "json":
        common.err_console.print(_summary(result, len(checks)), markup=False)
    if not result.objects:
        nothing = "nothing scanned: no Kubernetes object was loaded"
        if out_fmt == "json":
            common.err_console.file.write(
                orjson.dumps({"error": nothing, "file": None, "line": None}).decode() + "\n"
            )
        else:
            common.print_error(nothing)
        raise typer.Exit(1)
    if exit_code and result.findings:
        raise typer.Exit(exit_code)


def register(app: typer.Typer) -> None:
    """Add `k8s scan` to the `k8s` group."""
    k8s_cmd.group(app).command("scan")(scan)
