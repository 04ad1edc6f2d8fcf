"""Every private ("_") key a backend writes into a raw event is listed in PRIVATE_KEYS, so
enrichment removes it before the event reaches the rules."""

from __future__ import annotations

import re
from pathlib import Path

from stockade.sensor.enrich import Enricher
from stockade.sensor.interface import PRIVATE_KEYS

SENSOR = Path(__file__).resolve().parents[2] / "src" / "stockade" / "sensor"
#: a string key starting with "_" written into a dict: ev["_x"] = ..., or "_x": ... in a literal
_KEY = re.compile(r"""\[\s*"(_[a-z][a-z_]*)"\s*\]\s*=|"(_[a-z][a-z_]*)"\s*:""")


def test_every_private_key_the_backends_write_is_listed() -> None:
    written: set[str] = set()
    for f in SENSOR.rglob("*.py"):
        for m in _KEY.finditer(f.read_text()):
            written.add(m.group(1) or m.group(2))
    assert written, "the pattern found nothing: the test would be blind"
    assert written <= set(PRIVATE_KEYS), written - set(PRIVATE_KEYS)


def test_enrichment_removes_them() -> None:
    raw = {"evt.type": "openat", "proc.pid": 999_999_999, **dict.fromkeys(PRIVATE_KEYS, 1)}
    raw["_cgroup_path"] = "/"
    ev = Enricher(read_proc=False).enrich(raw)
    assert not [k for k in ev if k.startswith("_")]
    assert ev["evt.type"] == "openat"
