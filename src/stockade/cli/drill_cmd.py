"""`stockade drill list|run`: safe attack simulations in disposable containers, and whether the
running Stockade (found as `stockade status` finds it: stockade.cli.locate) detected, blocked,
grouped and contained each one (docs/drills.md).

`stockade drill run --output json` prints one result per scenario line with ``scenario``,
``detected``, ``blocked``, ``incident`` and ``contained`` (plus ``container``, ``rules``, ``alerts``,
``detail``): a contract. The exit status is 0 when every scenario ran, detected or not (the report
says which); non-zero when the drill could not run (no instance, no sensor, no podman) or a
scenario's container could not start.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Annotated

import typer

from stockade.cli import common, locate
from stockade.cli.locate import DataDirOpt, PortOpt
from stockade.drill.results import DrillResult
from stockade.drill.scenarios import SCENARIOS, select
from stockade.errors import StockadeError

drill_app = typer.Typer(
    help="Attack drills: simulated intrusions in disposable containers, and what Stockade made of them.",
    no_args_is_help=True,
)


@drill_app.command("list")
def list_scenarios(output: str | None = common.OutputOpt) -> None:
    """The scenarios: what each does and the rules that should see it."""
    fmt = common.output_format(output)
    as_json = lambda s: {  # noqa: E731
        "scenario": s.name,
        "description": s.description,
        "techniques": list(s.techniques),
        "rules": [list(alts) for alts in s.rules],
        "steps": [list(a) for a in s.steps],
    }
    if common.print_items(SCENARIOS, fmt, as_json, "no scenarios"):
        return
    table = common.listing_table()
    for col in ("SCENARIO", "ATT&CK", "EXPECTED RULES", "WHAT IT DOES"):
        table.add_column(col)
    for s in SCENARIOS:
        rules = "\n".join(alts[0] + "".join(f" (or {a})" for a in alts[1:]) for alts in s.rules)
        table.add_row(s.name, ", ".join(s.techniques), rules, s.description)
    common.print_table(table)


def _yes(b: bool) -> str:
    return "yes" if b else "no"


def _print_results(results: list[DrillResult], backend: str) -> None:
    table = common.listing_table()
    for col in ("SCENARIO", "DETECTED", "BLOCKED", "INCIDENT", "CONTAINED", "RULES FIRED", "DETAIL"):
        table.add_column(col)
    for r in results:
        table.add_row(
            r.scenario,
            "error"
            if r.error
            else _yes(r.detected) + ("" if r.expected_fired or not r.detected else " (partly)"),
            _yes(r.blocked),
            r.incident or "-",
            _yes(r.contained),
            "\n".join(r.rules) or "-",
            common.truncate(r.detail or "-", 80),
        )
    common.print_table(table)
    detected = sum(r.detected for r in results)
    common.console.print(
        f"{detected}/{len(results)} scenarios detected, {sum(r.blocked for r in results)} blocked, "
        f"{sum(r.incident is not None for r in results)} in incidents, "
        f"{sum(r.contained for r in results)} contained (sensor: {backend})",
        markup=False,
    )


@contextmanager
def _term_interrupts() -> Iterator[None]:
    """SIGTERM interrupts the drill as Ctrl-C does (its containers are still removed)."""

    def interrupt(_sig: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@drill_app.command("run")
def run(
    scenarios: Annotated[
        list[str] | None, typer.Argument(metavar="[SCENARIO]...", help="Scenarios to run (default: all).")
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the alerts and incidents.")
    ] = 20.0,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Run the scenarios, each in its own disposable container, and report for each whether it was
    detected, blocked, grouped into an incident and contained; the containers are removed."""
    from stockade.drill.runner import Drill

    fmt = common.output_format(output)
    chosen = select(scenarios or [])
    timeout = common.check_seconds(timeout, "--timeout")
    progress = None if fmt == "json" else (lambda m: common.err_console.print(f"drill: {m}", markup=False))
    with _term_interrupts(), locate.api_client(port, data_dir) as client:
        settle = common.STATE.config().engine.aggregate_window_s
        drill = Drill(
            client, chosen, check=locate.check, timeout_s=timeout, settle_s=settle, progress=progress
        )
        try:
            results = drill.run()
        except KeyboardInterrupt:
            common.print_error("drill interrupted; its containers were removed")
            raise
    if fmt == "json":
        for r in results:
            common.json_line(r.to_dict())
    else:
        _print_results(results, drill.backend)
    for problem in drill.cleanup_problems:
        common.print_error(problem)
    failed = [r for r in results if r.error]
    if failed or drill.cleanup_problems:
        raise StockadeError(
            f"{len(failed)} of {len(results)} scenarios could not run"
            + (f" ({'; '.join(f'{r.scenario}: {r.error}' for r in failed)})" if failed else "")
            + (f"; {len(drill.cleanup_problems)} containers not removed" if drill.cleanup_problems else "")
        )


def register(app: typer.Typer) -> None:
    """Add `drill` to the command line."""
    app.add_typer(drill_app, name="drill")
