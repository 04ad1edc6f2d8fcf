"""Where the compiled eBPF program is, and how to build it (scripts/build-bpf.sh does the work).

The object is built at install time from ``probe.bpf.c`` against this kernel's BTF: it is never
committed. Search order: ``$STOCKADE_BPF_OBJECT``, then ``build/probe.bpf.o`` beside this module.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from stockade.sensor.interface import SensorError

__all__ = ["SOURCE", "build", "find_object", "up_to_date"]

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "probe.bpf.c"
DEFAULT_OBJECT = HERE / "build" / "probe.bpf.o"
#: the repository's build script, when running from a checkout
SCRIPT = HERE.parents[3] / "scripts" / "build-bpf.sh"


def find_object() -> Path | None:
    """The built eBPF object ($STOCKADE_BPF_OBJECT, else the installed one), or None."""
    env = os.environ.get("STOCKADE_BPF_OBJECT")
    if env:
        return Path(env) if Path(env).is_file() else None
    return DEFAULT_OBJECT if DEFAULT_OBJECT.is_file() else None


def up_to_date(obj: Path | None = None) -> bool:
    """The object exists and is newer than the C source (when the source is there)."""
    obj = obj or find_object()
    if obj is None or not obj.is_file():
        return False
    return not SOURCE.is_file() or obj.stat().st_mtime >= SOURCE.stat().st_mtime


def build(force: bool = False, timeout_s: float = 300.0) -> Path:
    """Run scripts/build-bpf.sh (idempotent) and return the object's path."""
    if not SCRIPT.is_file():
        raise SensorError(f"cannot build the eBPF program: {SCRIPT} not found (not a source checkout)")
    cmd = [str(SCRIPT)] + (["--force"] if force else [])
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SensorError(f"cannot build the eBPF program: {e}") from e
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-5:]
        raise SensorError("building the eBPF program failed: " + " | ".join(tail))
    return DEFAULT_OBJECT
