"""`stockade k8s checks`: the table and a bad --standard (a one-line usage error) as a user sees
them (subprocesses of the installed command, side by side), JSON lines and --standard filtering
through main(), and docs/k8s-checks.md holding exactly the catalogue's table."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import in_parallel
from stockade.cli import common
from stockade.cli.main import main
from stockade.k8s.catalogue import all_checks, select

STOCKADE = str(Path(sys.executable).parent / "stockade")
DOC = Path(__file__).resolve().parents[2] / "docs" / "k8s-checks.md"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """`stockade k8s checks ARGS`."""
    return subprocess.run(
        [STOCKADE, "k8s", "checks", *args], capture_output=True, text=True, timeout=60, check=False
    )


@functools.cache
def runs() -> dict[str, subprocess.CompletedProcess[str]]:
    """The subprocess invocations, run once and side by side."""
    argv = {"table": (), "bad": ("--standard", "pss-strict")}
    done = in_parallel([functools.partial(run, *a) for a in argv.values()])
    return dict(zip(argv, done, strict=True))


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[..., str]]:
    """`stockade k8s checks ARGS` through main(): its standard output (exit code 0 asserted)."""

    def call(*args: str) -> str:
        common.STATE = common.CliState()
        assert main(["k8s", "checks", *args]) == 0
        return str(capsys.readouterr().out)

    yield call
    common.STATE = common.CliState()


def objects(out: str) -> list[dict[str, Any]]:
    """The JSON lines of `out`."""
    return [json.loads(line) for line in out.splitlines()]


def test_json_lists_every_check_with_its_metadata(cli: Callable[..., str]) -> None:
    got = objects(cli("--output", "json"))
    assert [o["id"] for o in got] == [c.id for c in all_checks()]
    priv = next(o for o in got if o["id"] == "privileged-container")
    assert priv["controls"] == ["pss:baseline:privileged"] and priv["severity"] == "CRITICAL"
    assert priv["nsa"] is True and priv["cis"] == ["5.2.2"] and "Deployment" in priv["kinds"]
    assert all(o["description"] and o["remediation"] and o["fix"] for o in got)


def test_standard_filters(cli: Callable[..., str]) -> None:
    base = {o["id"] for o in objects(cli("--standard", "pss-baseline", "-o", "json"))}
    restricted = {o["id"] for o in objects(cli("--standard", "pss-restricted", "-o", "json"))}
    assert base == {c.id for c in select("pss-baseline")}
    assert {"host-pid", "privileged-container", "unsafe-sysctls"} <= base
    assert "run-as-non-root" not in base and "run-as-non-root" in restricted
    assert base < restricted and "liveness-probe" not in restricted


def test_table_and_bad_standard() -> None:
    table = runs()["table"]
    assert table.returncode == 0
    head, *rows = table.stdout.splitlines()
    assert head.split() == ["ID", "SEVERITY", "CONTROLS", "NSA", "CIS", "TITLE"]
    assert len(rows) == len(all_checks())
    bad = runs()["bad"]
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("stockade: error: --standard 'pss-strict'") and "Traceback" not in bad.stderr


def test_the_doc_holds_the_catalogue_table(cli: Callable[..., str]) -> None:
    text = DOC.read_text()
    start, end = "<!-- catalogue:start -->\n", "<!-- catalogue:end -->"
    table = text[text.index(start) + len(start) : text.index(end)]
    assert table == cli("--markdown"), "docs/k8s-checks.md: regenerate with `stockade k8s checks --markdown`"
    assert table.count("\n| `") == len(all_checks())
