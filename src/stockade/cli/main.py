"""The `stockade` command line, and its one error boundary (:func:`translate`)."""

from __future__ import annotations

import gc
import sys
from typing import Annotated, Any

import click
import typer

from stockade import __version__
from stockade.cli import common
from stockade.errors import StockadeError
from stockade.model.choices import check_output_format

# typer >= 0.29 raises its own Exit/Abort and the usage errors of the click it vendors
_EXIT: tuple[type[BaseException], ...] = (
    click.exceptions.Exit,
    getattr(typer, "Exit", click.exceptions.Exit),
)
_ABORT: tuple[type[BaseException], ...] = (
    click.exceptions.Abort,
    getattr(typer, "Abort", click.exceptions.Abort),
)
_CLICK_ERROR: tuple[type[BaseException], ...] = (click.ClickException,)
try:
    from typer._click.exceptions import ClickException as _TyperClickException

    _CLICK_ERROR += (_TyperClickException,)
except ImportError:  # pragma: no cover - an older typer uses click itself
    pass

app = typer.Typer(
    name="stockade",
    help="Stockade: zero-trust runtime security for Linux containers and Kubernetes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        print(f"stockade {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    output: Annotated[str, typer.Option("--output", "-o", help="Output format: text or json.")] = "text",
    config: Annotated[
        str | None, typer.Option("--config", "-c", help="Config file (YAML).", envvar="STOCKADE_CONFIG")
    ] = None,
    _version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    """Stockade: zero-trust runtime security for Linux containers and Kubernetes."""
    common.STATE.reset(check_output_format(output), config)


#: the global options that take a value (the command's name is the first word after them)
_VALUED_OPTIONS = frozenset({"--output", "-o", "--config", "-c"})


def _command_name(argv: list[str]) -> str | None:
    """The command `argv` runs (its first word that is not a global option), or None."""
    words = iter(argv)
    for word in words:
        if word in _VALUED_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def _register(argv: list[str]) -> None:
    from stockade.cli import commands

    commands.register(app, _command_name(argv))


def _usage_lines(e: Any) -> list[str]:
    """A command-line usage error (click's): the usage, the help hint, then the error line."""
    lines: list[str] = []
    ctx = getattr(e, "ctx", None)
    if ctx is not None:
        lines.append(ctx.get_usage())
        if ctx.command.get_help_option(ctx) is not None:
            lines.append(f"Try '{ctx.command_path} {ctx.help_option_names[0]}' for help.")
    lines.append(common.ERROR_PREFIX + e.format_message())
    return lines


def translate(exc: BaseException) -> tuple[int, list[str]] | None:
    """The CLI's error boundary: the exit status for `exc` and the lines to print on standard
    error; None for an exception that is not the user's doing (a bug: it goes up with its traceback)."""
    if isinstance(exc, StockadeError):
        return exc.exit_code, common.error_lines(exc)
    if isinstance(exc, _EXIT):
        return int(getattr(exc, "exit_code", 0)), []
    if isinstance(exc, _ABORT):
        return 130, ["stockade: aborted"]
    if isinstance(exc, _CLICK_ERROR):
        return int(getattr(exc, "exit_code", 2)), _usage_lines(exc)
    if isinstance(exc, KeyboardInterrupt):
        return 130, []
    if isinstance(exc, BrokenPipeError):
        return 0, []
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the command line `argv` (default: the process's); its exit status."""
    _register(sys.argv[1:] if argv is None else argv)
    try:
        rc = app(args=argv, standalone_mode=False, prog_name="stockade")
    except (Exception, KeyboardInterrupt) as e:
        outcome = translate(e)
        if outcome is None:
            raise
        status, lines = outcome
        for line in lines:
            common.err_console.print(line, markup=False)
        return status
    return rc if isinstance(rc, int) else 0


def entry() -> None:
    """The `stockade` executable."""
    rc = main()
    # the interpreter's collections at exit would walk every object the run built (about a second
    # after `stockade up` stopped): leave them to the exit, which frees the whole process anyway
    gc.freeze()
    sys.exit(rc)
