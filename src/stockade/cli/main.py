"""The `stockade` command line."""

from __future__ import annotations

import sys
from typing import Annotated

import click
import typer

from stockade import __version__
from stockade.cli import common
from stockade.errors import StockadeError

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


def _version(value: bool) -> None:
    if value:
        print(f"stockade {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    output: Annotated[str, typer.Option("--output", "-o", help="Output format: text or json.")] = "text",
    config: Annotated[
        str | None, typer.Option("--config", "-c", help="Config file (YAML).", envvar="STOCKADE_CONFIG")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", callback=_version, is_eager=True)
    ] = False,
) -> None:
    """Stockade: zero-trust runtime security for Linux containers and Kubernetes."""
    if output not in ("text", "json"):
        raise StockadeError(f"--output must be 'text' or 'json', not '{output}'")
    common.STATE.output = output
    common.STATE.config_path = config
    common.STATE._config = None
    common.STATE.overrides = {}
    common.STATE.origins = {}


_registered = False


def _register() -> None:
    global _registered
    if _registered:
        return
    _registered = True
    from stockade.cli import commands

    commands.register(app)


def main(argv: list[str] | None = None) -> int:
    _register()
    try:
        rc = app(args=argv, standalone_mode=False, prog_name="stockade")
        if isinstance(rc, int):
            return rc
    except StockadeError as e:
        common.err_console.print(f"stockade: error: {e}", markup=False)
        return e.exit_code
    except _EXIT as e:
        return int(getattr(e, "exit_code", 0))
    except _ABORT:
        common.err_console.print("stockade: aborted", markup=False)
        return 130
    except _CLICK_ERROR as e:
        e.show()  # type: ignore[attr-defined]
        return int(getattr(e, "exit_code", 2))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return 0


def entry() -> None:
    sys.exit(main())
