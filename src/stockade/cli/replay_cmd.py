"""`stockade replay`: run the whole pipeline offline on recorded events and print the alerts."""

from __future__ import annotations

from typing import Annotated

import typer

from stockade.cli import common
from stockade.errors import SourceError
from stockade.model.choices import check_rule_matching
from stockade.runtime.offline import replay_files
from stockade.sources.detect import check_text
from stockade.sources.registry import SOURCE_NAMES


def replay(
    files: Annotated[list[str], typer.Argument(help="Recordings to replay, in order ('-' for stdin).")],
    source: Annotated[
        str | None,
        typer.Option(
            "--source", "-s", help=f"Input kind: {', '.join(SOURCE_NAMES)}. Detected when not given."
        ),
    ] = None,
    rules: Annotated[
        list[str] | None,
        typer.Option(
            "--rules", "-r", help="Rules file or directory (repeatable; default: the default rules)."
        ),
    ] = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="text or json (one alert per line).")
    ] = None,
    rule_matching: Annotated[
        str | None, typer.Option("--rule-matching", help="first (Falco's default) or all.")
    ] = None,
    min_priority: Annotated[
        str | None, typer.Option("--min-priority", help="Load only rules at or above.")
    ] = None,
    aggregate: Annotated[
        float,
        typer.Option("--aggregate", help="Aggregate identical alerts within this many seconds (0: off)."),
    ] = 0.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No summary on standard error.")] = False,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="Load and compile the rules without the compiled-rules cache (~/.cache/stockade/rules).",
        ),
    ] = False,
) -> None:
    """Replay recorded events (JSON Lines, Falco JSON alerts, Tetragon JSON, Kubernetes audit) through the
    rules and print the alerts. Needs no root."""
    fmt = common.output_format(output)
    common.check_choice(source, "--source", SOURCE_NAMES)
    matching = check_rule_matching(rule_matching) if rule_matching is not None else None
    min_priority = common.check_priority(min_priority, "--min-priority")
    common.check_seconds(aggregate, "--aggregate")
    failed: list[str] = []
    if source is not None:  # without --source, detection refuses binary files itself
        readable = []
        for f in files:
            try:
                if f != "-":
                    check_text(f)
                readable.append(f)
            except SourceError as e:
                failed.append(str(e))
        files = readable
    report = replay_files(
        common.STATE.config(),
        files,
        source=source,
        rules=rules or None,
        output_format=fmt,
        rule_matching=matching,
        min_priority=min_priority,
        aggregate_window_s=aggregate,
        rules_cache=not no_cache,
    )
    # an input none of whose records could be read is a failure, not "0 events"
    failed += [
        f"{f}: not one of its {bad} records could be read as {src} events"
        for f, src, n, bad, _ in report.inputs
        if n == 0 and bad > 0
    ]
    if not quiet:
        for line in report.summary_lines():
            common.err_console.print(line, markup=False)
    # --quiet leaves out the summary, not the errors
    failed = report.failed_inputs + failed
    for msg in failed:
        common.print_error(msg)
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `stockade replay` to the command line."""
    app.command("replay")(replay)
