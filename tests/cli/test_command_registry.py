"""A one-shot command registers only its own module (a faster start), and that module defines it."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import typer

from stockade.cli import commands
from stockade.cli.main import _command_name, app, main


def _paths(cmd: Any, prefix: str = "") -> set[str]:
    """Every command path under `cmd` (``rules mute``, ``sbom``, ...)."""
    out: set[str] = set()
    for name, sub in getattr(cmd, "commands", {}).items():
        out.add(prefix + name)
        out |= _paths(sub, f"{prefix}{name} ")
    return out


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
