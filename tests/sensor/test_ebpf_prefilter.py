"""The eBPF kernel prefilter: failed calls no rule can match are dropped in the kernel and counted as
filtered; the decoder reports failed calls as the prefilter's analysis assumes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from helpers import Collector
from stockade.config import load_config
from stockade.engine.build import build_engine
from stockade.rules import interp
from stockade.rules.prefilter import failed_call_facts
from stockade.runtime.sensing import SensorRunner
from stockade.sensor.ebpf.backend import EbpfBackend
from stockade.sensor.ebpf.events import HDR, T_STR, Decoder
from stockade.sensor.ebpf.syscalls import K_PATH, K_STR, SYSCALLS

FAILED, OK = 1000, 100


def _record(nr: int, ret: int, strings: dict[int, bytes]) -> memoryview:
    blobs = b""
    for i, s in strings.items():
        blob = (T_STR + i).to_bytes(2, "little") + len(s).to_bytes(2, "little") + s
        blobs += blob + b"\0" * (-len(blob) % 4)
    size = HDR.size + len(blobs)
    hdr = HDR.pack(1, nr, size, 1, 42, 42, 1, 42, 0, 0, 1000, 0, 7, 1, 1, ret, 3, 4, 5, 6, 7, 8, 0, b"probe")
    return memoryview(hdr + blobs)


@pytest.mark.parametrize("ret", [-1, -2, -115, -523])
def test_the_decoder_reports_failed_calls_as_the_analysis_assumes(ret: int) -> None:
    """Every fact stockade.rules.prefilter relies on holds for a failed call of every syscall."""
    dec = Decoder(0)
    for name, sc in SYSCALLS.items():
        strings = {i: b"/tmp/x" for i, (n, kind, _aux) in enumerate(sc.args) if n and kind in (K_STR, K_PATH)}
        rec = _record(sc.nr, ret, strings)
        ev = dec.decode(rec, 0, len(rec))
        assert ev is not None and ev["evt.type"] == name
        facts = failed_call_facts(name)
        for field, fact in facts.items():
            value = interp.extractor(field, None)(ev)
            assert fact.holds(value), (name, field, fact, value)
        if name in ("open", "openat", "openat2", "creat", "socket", "accept", "accept4"):
            assert "fd.num" in facts  # the result stands for the descriptor: the analysis knows it


# -- in the kernel (root, eBPF) ------------------------------------------------------------------


def _runner(tmp_path: Path, condition: str, prefilter: bool = True) -> tuple[SensorRunner, Collector]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        textwrap.dedent(
            f"""
            - rule: Watched file
              desc: d
              condition: {condition} and fd.name startswith {tmp_path}/
              output: "%fd.name %evt.res"
              priority: WARNING
            """
        )
    )
    over = {
        "sensor": {"backend": "ebpf", "kernel_prefilter": prefilter},
        "engine": {"falco_rules_paths": [], "builtin_rules": False, "aggregate_window_s": 0},
    }
    cfg = load_config(None, over, environ={})
    engine, _ = build_engine(cfg, [str(rules)], rule_matching="all")
    pipe = Collector(engine)  # the runtime's pipeline, keeping the events that reached it
    return SensorRunner(cfg, pipe, engine.evttypes("syscall")), pipe


def _opens(
    tmp_path: Path, pipe: Collector, want_failed: int, want_ok: int = OK
) -> tuple[list[Any], list[Any]]:
    """A child process fails to open a missing file FAILED times, then opens a present one OK times:
    (its failed, its successful open events that reached the pipeline)."""
    present = tmp_path / "present"
    present.write_text("x")
    prog = (
        "import os\n"
        f"for _ in range({FAILED}):\n"
        "    try:\n"
        f"        os.open({str(tmp_path / 'missing')!r}, os.O_RDONLY)\n"
        "    except FileNotFoundError:\n"
        "        pass\n"
        f"for _ in range({OK}):\n"
        f"    os.close(os.open({str(present)!r}, os.O_RDONLY))\n"
    )
    child = subprocess.run([sys.executable, "-c", prog], check=True)
    assert child.returncode == 0

    def mine() -> tuple[list[Any], list[Any]]:
        evs = [
            e
            for e in [ev.data for ev in list(pipe.events)]
            if e.get("evt.type") == "openat" and str(e.get("fd.name")).startswith(str(tmp_path))
        ]
        return [e for e in evs if e["evt.rawres"] < 0], [e for e in evs if e["evt.rawres"] >= 0]

    deadline = time.monotonic() + 15
    failed, ok = mine()
    while time.monotonic() < deadline and (len(ok) < want_ok or len(failed) < want_failed):
        time.sleep(0.1)
        failed, ok = mine()
    time.sleep(0.3)  # stragglers (there must be none)
    return mine()


@pytest.mark.root
@pytest.mark.ebpf
def test_failed_opens_no_rule_reads_are_dropped_in_the_kernel(tmp_path: Path) -> None:
    # only successful opens can match (Falco's open_read ends in fd.num>=0)
    cond = "evt.type in (open, openat, openat2) and evt.is_open_read = true and fd.num >= 0"
    off, _ = _runner(tmp_path, cond, prefilter=False)
    assert off.drop_failed == frozenset()
    runner, pipe = _runner(tmp_path, cond)
    assert {"open", "openat", "openat2"} <= runner.drop_failed
    runner.start()
    try:
        b = runner.backends["ebpf"]
        assert isinstance(b, EbpfBackend) and "openat" in b.dropping_failed
        failed, ok = _opens(tmp_path, pipe, 0)
        assert len(ok) == OK and not failed
        b.refresh_stats()
        assert b.stats.filtered["openat"] >= FAILED  # the child's, and any other process's
        st = runner.status()
        assert st["filtered_total"] >= FAILED and st["backends"]["ebpf"]["filtered"]["openat"] >= FAILED
        assert "openat" in st["kernel_prefilter"]["drop_failed"]
        assert not b.stats.lost  # filtered is not lost
        assert len(pipe.alerts) == OK
    finally:
        runner.close()


@pytest.mark.root
@pytest.mark.ebpf
def test_failed_opens_a_rule_reads_arrive(tmp_path: Path) -> None:
    runner, pipe = _runner(tmp_path, "evt.type = openat and evt.res = ENOENT")
    assert "openat" not in runner.drop_failed and "execve" in runner.drop_failed  # no rule reads execs
    runner.start()
    try:
        b = runner.backends["ebpf"]
        assert isinstance(b, EbpfBackend) and "openat" not in b.dropping_failed
        failed, ok = _opens(tmp_path, pipe, FAILED, want_ok=0)
        # the successful opens cannot match (evt.res = ENOENT): the interest filter drops them
        assert len(failed) == FAILED and not ok
        facts = failed_call_facts("openat")
        for e in failed[:10]:  # failed calls from the kernel are what the analysis assumes
            assert all(f.holds(interp.extractor(k, None)(e)) for k, f in facts.items()), e
        st = b.refresh_stats()
        assert st.filtered_by_cause["failed_call"] == 0 and st.filtered_by_cause["no_interest"] >= OK
        assert len(pipe.alerts) == FAILED
    finally:
        runner.close()
