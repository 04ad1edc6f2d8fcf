"""benchmarks/sensor_ebpf.py's accounting: an offered event is received, filtered by the kernel on
purpose, or lost (counted); a step holds only when none is lost or unaccounted for."""

from __future__ import annotations

import importlib
import shutil
import sys
from typing import Any

import pytest

from helpers import REPO, need

BENCHMARKS = REPO / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # benchmarks/ is not a package (harness puts src/ on the path)
bench = importlib.import_module("sensor_ebpf")


def _account(
    ops: dict[str, int], received: dict[str, int], filtered: dict[str, int], lost: dict[str, int]
) -> Any:
    return bench.account(ops, ["open", "exec"], received, filtered, lost)


def test_every_event_received() -> None:
    a = _account({"open": 100, "exec": 5, "close": 100}, {"openat": 100, "execve": 5, "close": 7}, {}, {})
    assert a.complete and a.missing == 0
    assert a.offered == {"open": 100, "exec": 5}


def test_the_kernels_filtered_counters_cover_what_did_not_arrive() -> None:
    a = _account({"open": 100, "exec": 5}, {"openat": 40, "execve": 5}, {"openat": 61, "dup2": 9}, {})
    assert a.complete
    assert a.filtered == {"open": 61, "exec": 0}


def test_filtered_events_of_another_type_do_not_cover() -> None:
    a = _account({"open": 100, "exec": 5}, {"openat": 40, "execve": 1}, {"openat": 100, "dup2": 50}, {})
    assert not a.complete
    assert a.short == {"open": 0, "exec": 4}
    assert a.missing == 4


def test_a_loss_fails_the_step_but_is_not_missing() -> None:
    a = _account({"open": 100, "exec": 0}, {"openat": 70}, {}, {"ringbuf_full": 30, "inflight_full": 0})
    assert not a.complete
    assert a.lost == {"ringbuf_full": 30}
    assert a.missing == 0


def test_any_loss_fails_even_if_everything_arrived() -> None:
    a = _account({"open": 100}, {"openat": 100}, {}, {"agent_queue_full": 1})
    assert not a.complete


def test_only_the_followed_kinds_are_offered() -> None:
    assert bench.followed_kinds({"openat", "connect", "execve", "procexit"}) == ["open", "exec", "connect"]


@pytest.mark.ebpf
@pytest.mark.parametrize("prefilter", [True, False])
def test_a_step_accounts_the_failed_opens_the_kernel_drops(prefilter: bool) -> None:
    """Opens of files that do not exist: with the prefilter the kernel drops them all and the
    step holds on its counters; without it they all arrive."""
    from stockade.sensor.ebpf.backend import EbpfBackend

    drop = {"openat", "open", "openat2"} if prefilter else set()
    s = bench.BareSensor(EbpfBackend(drop_failed=drop), {"openat", "open", "openat2", "execve"})
    wd = bench.Workdir(0)
    try:
        st = bench.run_step(s, wd, "absent", 5000, 1.0)
    finally:
        wd.close()
        s.close()
    assert st.ops == st.offered_events == st.kinds["open"] == st.kinds["failed"] > 0
    assert st.lost == 0 and st.missing == 0
    if prefilter:
        assert st.received == 0
        assert st.filtered >= st.ops
    else:
        assert st.received == st.ops
        assert st.filtered == 0


@pytest.mark.ebpf
def test_the_sensor_sees_exactly_what_the_mix_counts() -> None:
    """Every syscall of the mix the sensor follows is one the generator counted, and the other
    way round: the accounting's offered events are exact."""
    from stockade.sensor.ebpf.backend import EbpfBackend

    need(shutil.which("gcc") or shutil.which("cc"), "the mix needs gcc to build benchmarks/loadgen_mix.c")
    types = {"openat", "open", "openat2", "socket", "connect", "dup2", "unlinkat", "renameat2", "execve"}
    s = bench.BareSensor(EbpfBackend(), types)
    wd = bench.Workdir(100, 2)
    try:
        st = bench.run_step(s, wd, "mix", 5000, 1.0)
    finally:
        wd.close()
        s.close()
    assert st.lost == 0 and st.filtered == 0
    assert st.kinds["failed"] == 0
    assert st.offered_by_kind["exec"] > 0 and st.offered_by_kind["connect"] > 0
    assert st.received_by_kind == st.offered_by_kind
