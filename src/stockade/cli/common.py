"""What every command shares: the output format, the configuration, printing; and what the commands
that read the store (`stockade alerts`, `stockade events`) share: opening it (--db, --data-dir),
times (--since / --until), --source, --limit and their tables."""

from __future__ import annotations

import getpass
import math
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, assert_never

import orjson
import typer
from rich.console import Console
from rich.table import Table

from stockade.errors import StockadeError, UsageError
from stockade.model.alert import PRIORITIES, normalize_priority
from stockade.model.choices import OutputFormat, check_output_format
from stockade.model.event import ALERT_SOURCES, SOURCES
from stockade.model.timeutil import format_time_ns, now_ns, parse_duration_s, parse_time_ns

if TYPE_CHECKING:
    from stockade.config import StockadeConfig
    from stockade.sinks.interface import Sink

T = TypeVar("T")


@dataclass
class CliState:
    """The global options of one command line, and the configuration they lead to (read once)."""

    output: OutputFormat = "text"
    config_path: str | None = None
    _config: StockadeConfig | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    #: the flag behind each dotted key of `overrides` ("api.port" -> "--port 8721"), for errors
    origins: dict[str, str] = field(default_factory=dict)

    def reset(self, output: OutputFormat, config_path: str | None) -> None:
        """Start a command line: its global options, nothing overridden, nothing read yet."""
        self.output = output
        self.config_path = config_path
        self._config = None
        self.overrides = {}
        self.origins = {}

    def config(self) -> StockadeConfig:
        """The configuration: file, environment, then the flags' overrides (read on first use)."""
        if self._config is None:
            # imported here: its pydantic models cost a tenth of a second, and commands that read
            # no configuration (`stockade k8s scan`, `sbom`) never pay it
            from stockade.config import load_config

            self._config = load_config(
                self.config_path, self.overrides or None, override_origins=self.origins
            )
        return self._config

    def override(self, key: str, value: Any, flag: str) -> None:
        """Set the dotted config `key` from a command-line `flag` (named in errors about it)."""
        d = self.overrides
        *parents, last = key.split(".")
        for p in parents:
            d = d.setdefault(p, {})
        d[last] = value
        self.origins[key] = f"{flag} {value}"
        self._config = None


STATE = CliState()
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

#: what starts every error line the CLI prints (argparse's `prog: error: message`)
ERROR_PREFIX = "stockade: error: "


def error_lines(e: StockadeError) -> list[str]:
    """How the CLI says a Stockade error: one line, then its details indented below it."""
    return [ERROR_PREFIX + str(e), *(f"  {d}" for d in e.details)]


def print_error(message: str) -> None:
    """Say one error on standard error, in the CLI's error format (the command goes on)."""
    err_console.print(ERROR_PREFIX + message, markup=False)


def json_line(obj: Any) -> None:
    """Print `obj` as one line of JSON on standard output."""
    sys.stdout.buffer.write(orjson.dumps(obj, default=str) + b"\n")
    sys.stdout.flush()


def emit(obj: Any, text: str | None = None, output: OutputFormat | None = None) -> None:
    """Print `obj` as JSON with --output json (`output`, else the global one), else `text` (or a
    readable rendering of obj)."""
    fmt = output or STATE.output
    match fmt:
        case "json":
            json_line(obj)
        case "text":
            console.print(text if text is not None else obj, markup=False)
        case _:
            assert_never(fmt)


OutputOpt = typer.Option(
    None, "--output", "-o", help="Output format: text or json (overrides the global option)."
)


def output_format(local: str | None) -> OutputFormat:
    """The subcommand's --output if given, else the global one."""
    return STATE.output if local is None else check_output_format(local)


# -- flags checked before anything runs: a bad value is a one-line usage error (exit 2) ------------


def check_choice(value: str | None, option: str, choices: Sequence[str]) -> None:
    """`value` (None: not given) must be one of `choices`."""
    if value is not None and value not in choices:
        raise UsageError(f"{option} must be one of {', '.join(choices)}, not '{value}'")


def check_priority(value: str | None, option: str) -> str | None:
    """A priority flag: Falco's name in any case ('warning', 'WARNING', 'info') -> canonical name."""
    if value is None:
        return None
    p = normalize_priority(value)
    if p is None:
        names = ", ".join(x.lower() for x in PRIORITIES)
        raise UsageError(f"{option}: unknown priority '{value}' (one of {names})")
    return p


def check_seconds(value: float, option: str) -> float:
    """A duration flag in seconds: finite, 0 or more."""
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"{option} must be a number of seconds, 0 or more, not {value:g}")
    return value


def console_sinks(cfg: StockadeConfig) -> list[Sink]:
    """What `stockade up` / `server` add to the configured sinks to print alerts on standard output:
    a printer in the global --output format, unless a `stdout` sink is configured (it replaces the
    printer: one line per alert, in the format and at the priority it was given)."""
    from stockade.sinks.stdout import StdoutSink

    if any(s.type == "stdout" for s in cfg.sinks):
        return []
    return [StdoutSink(format=STATE.output, name="console")]


# -- the commands that read the store ------------------------------------------------------------

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db", help="Database URL (overrides storage.url), e.g. sqlite:///path or postgresql://...."
    ),
]
DataDirOpt = Annotated[
    str | None, typer.Option("--data-dir", help="Data directory holding stockade.db (overrides data_dir).")
]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="From this time: a duration ago (90s, 15m, 2h, 7d) or RFC 3339.")
]
UntilOpt = Annotated[
    str | None, typer.Option("--until", help="Up to this time: a duration ago (15m) or RFC 3339.")
]
SourceOpt = Annotated[
    str | None,
    typer.Option("--source", help=f"Only this source: {', '.join(SOURCES)} (alerts: also resources)."),
]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many, newest first.")]


def id_arg(kind: str) -> Any:
    """The ID argument of `stockade alerts show` / `stockade events show` (kind: "Alert", "Event")."""
    return typer.Argument(metavar="ID", help=f"{kind} id, or a unique prefix (6+ characters).")


def parse_when(value: str | None, option: str) -> int | None:
    """--since/--until: RFC 3339 time, or a duration meaning that long ago -> ns since the epoch."""
    if value is None:
        return None
    t = parse_time_ns(value)
    if t is not None:
        return t
    try:
        d = parse_duration_s(value)
    except ValueError:
        d = -1.0
    if d < 0:
        raise UsageError(
            f"{option}: expected a duration (90s, 15m, 2h, 7d) or an RFC 3339 time, not '{value}'"
        )
    now = now_ns()
    # longer ago than the epoch (or infinite): from the beginning
    return 0 if d * 1_000_000_000 >= now else now - int(d * 1_000_000_000)


def check_source(source: str | None, *, alerts: bool = False) -> None:
    """--source (None: not given) must name an event source (for alerts: or ``resources``)."""
    check_choice(source, "--source", ALERT_SOURCES if alerts else SOURCES)


def short_time(ns: int) -> str:
    """'2024-11-22 18:13:20' (UTC)."""
    return format_time_ns(ns)[:19].replace("T", " ")


def truncate(s: str, n: int) -> str:
    """`s` on one line, cut to `n` characters with an ellipsis."""
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "…"


def print_items(items: Sequence[T], fmt: OutputFormat, as_json: Callable[[T], Any], none: str) -> bool:
    """The whole output of a `list` command when it is JSON (`as_json(item)`, one line each) or
    there is nothing to list (the line `none`): True then; False when the table is still to print."""
    match fmt:
        case "json":
            for item in items:
                json_line(as_json(item))
            return True
        case "text":
            if not items:
                console.print(none, markup=False)
            return not items
        case _:
            assert_never(fmt)


def listing_table() -> Table:
    """The table of a `list` command: no box, bold headers (the caller adds the columns)."""
    return Table(box=None, pad_edge=False, header_style="bold")


def print_table(table: Table) -> None:
    """Print a table; piped output has no terminal width, so it is not squeezed into 80 columns."""
    if console.is_terminal:
        console.print(table)
    else:
        Console(highlight=False, width=250, color_system=None).print(table)


def who() -> str:
    """user@host: who made a change, recorded with it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
