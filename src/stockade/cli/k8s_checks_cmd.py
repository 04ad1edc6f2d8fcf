"""`stockade k8s checks [--standard S] [--output json] [--markdown]`: the check catalogue, as a
table, one JSON object per check, or the Markdown table of docs/k8s-checks.md."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stockade.cli import common, k8s_cmd
from stockade.k8s.catalogue import STANDARDS, Check, select

__all__ = ["check_dict", "markdown", "register"]


def check_dict(c: Check) -> dict[str, Any]:
    """One check as `--output json` prints it."""
    return {
        "id": c.id,
        "severity": c.severity,
        "title": c.title,
        "controls": list(c.controls),
        "nsa": c.nsa,
        "cis": list(c.cis),
        "standards": sorted(c.standards),
        "kinds": sorted(c.kinds),
        "needs_all": c.needs_all,
        "description": c.description,
        "remediation": c.remediation,
        "fix": c.fix,
    }


def markdown(checks: list[Check]) -> str:
    """The catalogue as the Markdown table of docs/k8s-checks.md."""
    rows = ["| id | severity | PSS controls | NSA | CIS | title |", "|---|---|---|---|---|---|"]
    for c in checks:
        controls = "<br>".join(f"`{x}`" for x in c.controls) or "-"
        rows.append(
            f"| `{c.id}` | {c.severity} | {controls} | {'yes' if c.nsa else '-'} | "
            f"{', '.join(c.cis) or '-'} | {c.title} |"
        )
    return "\n".join(rows) + "\n"


def checks(
    standard: Annotated[
        str, typer.Option("--standard", help=f"Only the checks of: {', '.join(STANDARDS)}.")
    ] = "all",
    as_markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the Markdown table of docs/k8s-checks.md.")
    ] = False,
    output: str | None = common.OutputOpt,
) -> None:
    """The Kubernetes check catalogue: id, severity, Pod Security Standards controls, NSA/CISA and
    CIS Kubernetes coverage, title."""
    fmt = common.output_format(output)
    chosen = select(standard)
    if as_markdown:
        common.console.print(markdown(chosen), markup=False, end="")
        return
    if common.print_items(chosen, fmt, check_dict, f"no checks in standard {standard}"):
        return
    table = common.listing_table()
    for col in ("ID", "SEVERITY", "CONTROLS", "NSA", "CIS", "TITLE"):
        table.add_column(col)
    for c in chosen:
        table.add_row(
            c.id,
            c.severity,
            ", ".join(x.split(":", 1)[1] for x in c.controls) or "-",
            "yes" if c.nsa else "-",
            ", ".join(c.cis) or "-",
            c.title,
        )
    common.print_table(table)


def register(app: typer.Typer) -> None:
    """Add `checks` to the `k8s` group."""
    k8s_cmd.group(app).command("checks")(checks)
