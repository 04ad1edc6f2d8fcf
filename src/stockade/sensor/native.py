"""The sensor's optional native modules (C through CPython's API, built by scripts/build-native.sh):
the eBPF ring-buffer walk and syscall decoding (:mod:`stockade.sensor.ebpf.events`) and enrichment's
merge (:mod:`stockade.sensor.enrich`). Each has a pure-Python twin that gives the same events and
runs where the module is not built, or everywhere with ``STOCKADE_NATIVE=0`` in the environment."""

from __future__ import annotations

import importlib
import os
from typing import Any

__all__ = ["load"]


def load(module: str) -> Any:
    """The native module `module` (e.g. ``stockade.sensor._merge``), or None where it is not built
    or native code is turned off (``STOCKADE_NATIVE=0``)."""
    if os.environ.get("STOCKADE_NATIVE", "1") == "0":
        return None
    try:
        return importlib.import_module(module)
    except ImportError:
        return None
