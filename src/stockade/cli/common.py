"""What every command shares: the output format, the configuration, printing."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

import orjson
import typer
from rich.console import Console

from stockade.config import StockadeConfig, load_config


@dataclass
class CliState:
    output: str = "text"
    config_path: str | None = None
    _config: StockadeConfig | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    def config(self) -> StockadeConfig:
        if self._config is None:
            self._config = load_config(self.config_path, self.overrides or None)
        return self._config


STATE = CliState()
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def state(ctx: typer.Context | None = None) -> CliState:
    return STATE


def json_line(obj: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(obj, default=str) + b"\n")
    sys.stdout.flush()


def emit(obj: Any, text: str | None = None) -> None:
    """Print `obj` as JSON with --output json, else `text` (or a readable rendering of obj)."""
    if STATE.output == "json":
        json_line(obj)
    else:
        console.print(text if text is not None else obj, markup=False)


OutputOpt = typer.Option(
    None, "--output", "-o", help="Output format: text or json (overrides the global option)."
)
