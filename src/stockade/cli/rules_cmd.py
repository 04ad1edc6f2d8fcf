"""`stockade rules`: lint, list and inspect rules files."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from stockade.cli import common
from stockade.model.event import SOURCES as RULE_SOURCES
from stockade.model.fields import all_fields
from stockade.rules.defaults import default_rule_paths, expand_rule_paths
from stockade.rules.loader import check_rules

rules_app = typer.Typer(help="Lint, list and inspect rules (Falco's rules language).", no_args_is_help=True)


def _paths(files: list[str] | None) -> list[str]:
    if files:
        return expand_rule_paths(files)
    paths, notes = default_rule_paths(common.STATE.config())
    for n in notes:
        common.err_console.print(n, markup=False)
    return paths


@rules_app.command("lint")
def lint(
    files: Annotated[list[str], typer.Argument(help="Rules files, loaded in order as one ruleset.")],
    output: str | None = common.OutputOpt,
    no_warnings: Annotated[bool, typer.Option("--no-warnings", help="Report errors only.")] = False,
) -> None:
    """Report every error and warning of the rules files at once; exit 1 if there is an error."""
    fmt = common.output_format(output)
    rs = check_rules(expand_rule_paths(files))
    order = {f: i for i, f in enumerate(rs.files)}
    problems = sorted(
        (p for p in rs.problems if not (no_warnings and p.level == "warning")),
        key=lambda p: (order.get(p.location.file, -1), p.location.line or 0) if p.location else (-1, 0),
    )
    if fmt == "json":
        common.json_line(
            {
                "files": rs.files,
                "rules": len(rs.rules),
                "macros": len(rs.macros),
                "lists": len(rs.lists),
                "errors": len(rs.errors),
                "warnings": len(rs.warnings),
                "problems": [p.to_dict() for p in problems],
                "required_engine_versions": rs.required_engine_versions,
                "required_plugins": rs.required_plugins,
            }
        )
    else:
        for p in problems:
            common.console.print(str(p), markup=False)
        common.console.print(
            f"{len(rs.files)} files: {len(rs.rules)} rules, {len(rs.macros)} macros, {len(rs.lists)} lists; "
            f"{len(rs.errors)} errors, {len(rs.warnings)} warnings",
            markup=False,
        )
    if rs.errors:
        raise typer.Exit(1)


@rules_app.command("list")
def list_rules(
    rules: Annotated[
        list[str] | None, typer.Option("--rules", "-r", help="Rules files (default: the default rules).")
    ] = None,
    source: Annotated[str | None, typer.Option("--source", help="Only rules of this source.")] = None,
    output: str | None = common.OutputOpt,
) -> None:
    """List the rules of a ruleset: name, priority, source, enabled, tags."""
    from stockade.engine import Engine

    fmt = common.output_format(output)
    common.check_choice(source, "--source", RULE_SOURCES)
    engine = Engine.from_files(_paths(rules), rule_matching="all")
    info = [r for r in engine.rules_info() if source is None or r["source"] == source]
    if fmt == "json":
        for r in info:
            common.json_line(r)
        return
    table = Table("rule", "priority", "source", "enabled", "tags", box=None)
    for r in info:
        table.add_row(
            r["name"], r["priority"], r["source"], "yes" if r["enabled"] else "no", ",".join(r["tags"])
        )
    common.console.print(table)


@rules_app.command("fields")
def fields(
    source: Annotated[str | None, typer.Option("--source", help="syscall or k8s_audit.")] = None,
    output: str | None = common.OutputOpt,
) -> None:
    """List the fields conditions and outputs may use."""
    fmt = common.output_format(output)
    common.check_choice(source, "--source", RULE_SOURCES)
    specs = [f for f in all_fields() if source is None or f.source == source]
    if fmt == "json":
        for f in specs:
            common.json_line(
                {
                    "name": f.name,
                    "type": f.type.value,
                    "source": f.source,
                    "arg": f.arg.value,
                    "list": f.is_list,
                }
            )
        return
    for f in specs:
        arg = "[...]" if f.arg.value != "none" else ""
        common.console.print(f"{f.name}{arg}\t{f.type.value}\t{f.source}", markup=False)


def register(app: typer.Typer) -> None:
    """Add `stockade rules` to the command line."""
    app.add_typer(rules_app, name="rules")
