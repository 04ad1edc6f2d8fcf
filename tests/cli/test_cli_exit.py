"""The `stockade` executable's exit: what the run built is left to the process's end, not walked by
the interpreter's collections at exit (about a second after `stockade up` stops)."""

from __future__ import annotations

import subprocess
import sys

#: the executable's entry point, with a hook that reports at exit what the collector still tracks
PROGRAM = """
import atexit, gc, sys
atexit.register(lambda: print("frozen", gc.get_freeze_count() > 0, flush=True))
sys.argv = ["stockade", *sys.argv[1:]]
from stockade.cli.main import entry
entry()
"""


def _exit_of(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROGRAM, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_the_exit_leaves_the_objects_to_the_process_end() -> None:
    r = _exit_of("--version")
    lines = r.stdout.splitlines()
    assert r.returncode == 0 and lines[0].startswith("stockade ") and lines[1:] == ["frozen True"], r


def test_a_failing_command_keeps_its_status() -> None:
    r = _exit_of("alerts", "list", "--db", "sqlite:////nonexistent/stk.db")
    assert r.returncode != 0 and "stockade: error:" in r.stderr and "Traceback" not in r.stderr, r
    assert r.stdout.splitlines()[-1] == "frozen True"
