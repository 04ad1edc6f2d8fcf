"""A ring-buffer record the decoder cannot read is counted and skipped; the records around it still
arrive (root, eBPF)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from stockade.sensor.ebpf.backend import EbpfBackend

pytestmark = [pytest.mark.root, pytest.mark.ebpf]


def test_an_unreadable_record_is_counted_and_the_batch_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = [str(tmp_path / n) for n in ("before", "bad", "after")]
    for n in names:
        Path(n).write_text("x")
    b = EbpfBackend()
    b.start({"openat"})
    try:
        dec = b._decoder
        assert dec is not None
        real = dec.decode

        def decode(buf: Any, off: int, size: int) -> dict[str, Any] | None:
            ev = real(buf, off, size)
            if ev is not None and ev.get("fd.name") == names[1]:
                raise ValueError("unreadable record")
            return ev

        monkeypatch.setattr(dec, "decode", decode)
        # the sensor ignores its own process: another one opens the files, in this order
        prog = f"import os\nfor p in {names!r}: os.close(os.open(p, os.O_RDONLY))"
        subprocess.run([sys.executable, "-c", prog], check=True)
        seen: list[str] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and names[2] not in seen:
            seen += [e["fd.name"] for e in b.poll(0.1) if e.get("fd.name") in names]
    finally:
        b.close()
    assert seen == [names[0], names[2]]
    assert b.stats.errors == 1
    assert b.stats.last_errors == ["decode: ValueError: unreadable record"]
