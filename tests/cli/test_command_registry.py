"""A one-shot command registers only its own module (a faster start), and that module defines it."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import typer
from rich.errors import MarkupError
from rich.text import Text
from typer.testing import CliRunner

from stockade.cli import commands
from stockade.cli.main import _command_name, app, main


def _commands(cmd: Any, prefix: str = "") -> dict[str, Any]:
    """Every command under `cmd` by its path (``rules mute``, ``sbom``, ...)."""
    out: dict[str, Any] = {}
    for name, sub in getattr(cmd, "commands", {}).items():
        out[prefix + name] = sub
        out |= _commands(sub, f"{prefix}{name} ")
    return out


def _paths(cmd: Any) -> set[str]:
    """Every command path under `cmd`."""
    return set(_commands(cmd))


def test_every_command_is_defined_by_the_modules_its_name_selects() -> None:
    main(["--help"])  # every module
    every = _paths(typer.main.get_command(app))
    assert {"sbom", "certs", "drift", "alerts", "up", "rules reload"} <= every
    for name in {p.split()[0] for p in every}:
        alone = typer.Typer()
        alone.callback()(lambda: None)
        for mod in commands.modules_for(name):
            importlib.import_module(f"stockade.cli.{mod}").register(alone)
        mine = {p for p in every if p.split()[0] == name}
        assert mine <= _paths(typer.main.get_command(alone)), name


def test_a_module_adding_to_another_modules_group_is_selected_with_it() -> None:
    # groups are module-level objects, so the test above cannot see a missing extension once every
    # module has been imported: read which modules import another command module's group instead
    cli = Path(commands.__file__).parent
    for mod in commands.COMMAND_MODULES:
        source = (cli / f"{mod}.py").read_text()
        for owner, group in re.findall(r"from stockade\.cli\.(\w+)_cmd import (\w+)_app", source):
            assert mod in commands.modules_for(owner), (mod, f"{group}_app")


def test_the_command_name_skips_global_options() -> None:
    assert _command_name(["-o", "json", "sbom", "/x"]) == "sbom"
    assert _command_name(["--config", "c.yaml", "--output=json", "certs"]) == "certs"
    assert _command_name(["--help"]) is None
    assert commands.modules_for(None) == commands.COMMAND_MODULES
    assert commands.modules_for("no-such") == commands.COMMAND_MODULES


def test_every_commands_help_renders() -> None:
    # typer renders help texts as rich markup: a "[/X]" in a docstring or an option's help is a
    # MarkupError (a traceback) instead of a help page
    main(["--help"])
    broken = []
    for path, cmd in sorted(_commands(typer.main.get_command(app)).items()):
        texts = [cmd.help, cmd.short_help, *(getattr(p, "help", None) for p in cmd.params)]
        for text in filter(None, texts):
            try:
                Text.from_markup(text)
            except MarkupError as e:
                broken.append(f"stockade {path}: {e}")
    assert not broken, "\n".join(broken)


def test_a_help_page_renders() -> None:
    r = CliRunner().invoke(app, ["k8s", "admission", "serve", "--help"], prog_name="stockade")
    assert r.exit_code == 0 and "Usage" in r.output, r.exception
