"""The native hot path (``_fastdecode.c``: the ring-buffer walk and syscall decoding in C) gives the
same events as the pure-Python decoder, field for field and in the same order, on the same records:
generated ones (every syscall the sensor knows, odd values, broken blobs, records for the Python
decoder) and records the kernel wrote for a real mix of activity (root, eBPF). The walk itself
(discarded records, errors, batch limits) behaves the same on both paths."""

from __future__ import annotations

import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import need
from stockade.sensor.ebpf.backend import EbpfBackend
from stockade.sensor.ebpf.events import _PLANS, HDR, Decoder, native_available
from stockade.sensor.ebpf.ringbuf import MemoryRing

BOOT = 1_700_000_000_000_000_000
#: pids above the kernel's largest pid_max: no /proc entry, so both decoders read the same nothing
PID0 = 5_000_000
_BLOB = struct.Struct("<HH")


def _need_native() -> None:
    need(native_available(), "the native decoder is not built (scripts/build-native.sh)")


def record(
    *,
    kind: int = 1,
    nr: int = 257,
    pid: int = PID0,
    ret: int = 3,
    args: tuple[int, ...] = (0,) * 6,
    comm: bytes = b"cat",
    blobs: Sequence[tuple[int, bytes]] = (),
    loginuid: int = 1000,
) -> bytes:
    """One ring-buffer record as probe.bpf.c writes it: the header, then blobs 4-byte aligned."""
    body = bytearray(
        HDR.pack(
            kind,
            nr,
            0,
            123_456_789,
            pid,
            pid,
            1,
            pid,
            0,
            0,
            loginuid,
            0,
            77,
            4026531840,
            4026531836,
            ret,
            *args,
            1000,
            comm,
        )
    )
    for tag, data in blobs:
        body += _BLOB.pack(tag, len(data)) + data
        body += b"\0" * (-len(body) % 4)
    return bytes(body)


def decode_all(
    records: list[bytes], *, native: bool, want: frozenset[str] | None = None, **ring: Any
) -> tuple[list[dict[str, Any]], list[str], Decoder]:
    """(events, errors, decoder) of one decoder walking `records` as the backend does."""
    dec = Decoder(BOOT, want, native=native)
    assert (dec.native is not None) == native
    rb = MemoryRing(records, **ring)
    out: list[dict[str, Any]] = []
    errors: list[str] = []
    rb.consume(dec.decode, out, on_error=lambda e: errors.append(f"{type(e).__name__}: {e}"))
    rb.close()
    return out, errors, dec


def assert_same(records: list[bytes], want: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """Both decoders give the same events (and key order), errors and counters; the events."""
    py, py_err, py_dec = decode_all(records, native=False, want=want)
    c, c_err, c_dec = decode_all(records, native=True, want=want)
    assert [list(e.items()) for e in c] == [list(e.items()) for e in py]
    assert c_err == py_err
    assert c_dec.undecodable == py_dec.undecodable
    assert sorted(c_dec.procs) == sorted(py_dec.procs)
    return c


# -- generated records ----------------------------------------------------------------------------

_U64_EDGES = [
    0,
    1,
    3,
    0o101,
    0o2000000,
    2**31 - 1,
    2**31,
    2**32 - 100,
    2**32 - 1,
    2**32,
    2**63 - 1,
    2**63,
    2**64 - 100,
    2**64 - 1,
]
u64 = st.one_of(st.sampled_from(_U64_EDGES), st.integers(0, 2**64 - 1))
_PATHS = [
    b"/etc/passwd",
    b"rel/file",
    b"file",
    b"",
    b"/",
    b"\xff\xfe/bad-utf8",
    b"../x",
    b"/tmp/a b",
    b"//etc//passwd",
    b"/etc/./x",
    b"/a/../b",
    b"/x/.hidden",
    b"/tmp/",
    b"/..",
]
_DIRS = [b"tmp\0home\0", b"\0", b"", b"x\xff\0y\0"]
payload = st.one_of(st.sampled_from(_PATHS + _DIRS), st.binary(max_size=40))
tag = st.one_of(
    st.integers(0x10, 0x15),
    st.integers(0x20, 0x25),
    st.integers(0x30, 0x35),
    st.sampled_from([0x40, 0x4F]),
    st.integers(0x50, 0x54),
    st.integers(0, 0xFFFF),
)
syscall_nr = st.one_of(st.sampled_from(sorted(_PLANS)), st.integers(0, 600))
one_record = st.builds(
    record,
    kind=st.sampled_from([1, 1, 1, 1, 2, 3, 4, 9]),
    nr=syscall_nr,
    pid=st.integers(PID0, PID0 + 3),
    ret=st.one_of(
        st.sampled_from([0, 3, -1, -2, -13, -115, -4095, -9999, 2**40]), st.integers(-(2**63), 2**63 - 1)
    ),
    args=st.tuples(u64, u64, u64, u64, u64, u64),
    comm=st.one_of(st.sampled_from([b"cat", b"sh", b"x" * 16, b"\xff\xfe"]), st.binary(max_size=16)),
    blobs=st.lists(st.tuples(tag, payload), max_size=6),
    loginuid=st.sampled_from([0, 1000, 2**32 - 1]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(one_record, min_size=1, max_size=12), st.sampled_from([None, frozenset({"openat", "connect"})])
)
def test_generated_records_decode_the_same(records: list[bytes], want: frozenset[str] | None) -> None:
    _need_native()
    assert_same(records, want)


def test_every_syscall_decodes_the_same_with_its_arguments() -> None:
    _need_native()
    records = []
    for nr in sorted(_PLANS):
        blobs = [(0x10 + i, (b"/abs/path", b"rel/path", b"//abs/./path/")[i % 3]) for i in range(6)]
        blobs += [(0x20 + i, b"d\0home\0") for i in range(6)]
        for ret in (0, 5, -2):
            records.append(record(nr=nr, ret=ret, args=(2**64 - 100, 0o1101, 2, 3, 2**31, 7), blobs=blobs))
    events = assert_same(records)
    assert {e["evt.type"] for e in events} == {p.name for p in _PLANS.values()}
    assert any("fd.nameraw" in e for e in events)


def test_a_process_s_exec_fields_reach_its_later_syscalls() -> None:
    _need_native()
    argv = b"/bin/cat\0/etc/hostname\0"
    exe = record(
        kind=2,
        nr=59,
        args=(0, len(argv), 0, 0, 0, 0),
        blobs=[(0x50, argv), (0x52, b"/bin/cat"), (0x51, b"cat\0bin\0")],
    )
    opened = record(blobs=[(0x11, b"/etc/hostname")])
    events = assert_same([exe, opened, opened])
    assert events[1]["proc.exepath"] == "/bin/cat"
    assert events[1]["proc.cmdline"] == "cat /etc/hostname"
    assert events[1]["fd.name"] == "/etc/hostname"


# -- the walk ------------------------------------------------------------------------------------


@pytest.mark.parametrize("native", [False, True], ids=["python", "native"])
def test_the_walk_skips_discarded_records_and_reports_errors(native: bool) -> None:
    if native:
        _need_native()
    ok = record(blobs=[(0x11, b"/ok")])
    bad = record(pid=PID0 + 1, blobs=[(0x11, b"/bad")])
    records = [ok, bad, ok, ok, ok]
    dec = Decoder(BOOT, native=native)
    dec.procs[PID0 + 1] = object()  # type: ignore[assignment]  # its events cannot be dressed: they raise
    rb = MemoryRing(records, discard=frozenset({3}))
    out: list[dict[str, Any]] = []
    with pytest.raises(AttributeError):
        rb.consume(dec.decode, out)
    assert [e["fd.name"] for e in out] == ["/ok"]  # the bad record is consumed, the batch stops there
    assert rb.consume(dec.decode, out, max_records=1) == 1
    assert rb.consume(dec.decode, out) == 1  # the discarded record is not counted
    assert [e["fd.name"] for e in out] == ["/ok"] * 3
    assert rb.pending() == 0
    rb.rewind()
    errors: list[Exception] = []
    out.clear()
    assert rb.consume(dec.decode, out, on_error=errors.append) == 4
    assert len(out) == 3
    assert [type(e) for e in errors] == [AttributeError]
    rb.close()


def test_a_wrapped_decode_is_called_for_every_record() -> None:
    """A decode that is not the decoder's own (a test's wrapper) sees every record: the native
    walker steps aside."""
    _need_native()
    dec = Decoder(BOOT)
    assert dec.native is not None
    seen: list[int] = []

    def wrapped(buf: Any, off: int, size: int) -> dict[str, Any] | None:
        seen.append(off)
        return dec.decode(buf, off, size)

    rb = MemoryRing([record(blobs=[(0x11, b"/a")])] * 3)
    out: list[dict[str, Any]] = []
    assert rb.consume(wrapped, out) == 3
    assert len(seen) == 3
    assert len(out) == 3


# -- records the kernel wrote --------------------------------------------------------------------

#: a mix of what the sensor follows, by a separate process (the backend ignores its own)
_MIX = r"""
import os, socket, subprocess, sys
d = sys.argv[1]
os.chdir(d)
for i in range(20):
    p = f"f{i}"
    os.close(os.open(p, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644))
    os.close(os.open(os.path.join(d, p), os.O_RDONLY))
    try:
        os.open("missing", os.O_RDONLY)
    except OSError:
        pass
    os.chmod(p, 0o4755)
    os.rename(p, p + ".x")
    os.symlink(p + ".x", p + ".l")
    os.unlink(p + ".l")
    os.mkdir(p + ".d")
    os.rmdir(p + ".d")
    fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    os.close(os.open(p + ".x", os.O_RDONLY, dir_fd=fd))
    os.close(fd)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    c = socket.create_connection(srv.getsockname())
    a, _ = srv.accept()
    os.dup2(c.fileno(), 100)
    os.close(100)
    for s in (a, c, srv):
        s.close()
    u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        u.connect("/nonexistent.sock")
    except OSError:
        pass
    u.close()
    subprocess.run(["/bin/true", str(i)], check=True)
    subprocess.run(["/bin/sh", "-c", "cat /etc/hostname >/dev/null"], check=True)
"""


@pytest.mark.root
@pytest.mark.ebpf
def test_records_of_a_real_mix_decode_the_same(tmp_path: Path) -> None:
    _need_native()
    b = EbpfBackend()
    b.start(None)
    records: list[bytes] = []
    try:
        dec = b._decoder
        assert dec is not None
        real = dec.decode

        def keep(buf: Any, off: int, size: int) -> dict[str, Any] | None:
            records.append(bytes(buf[off : off + size]))
            return real(buf, off, size)

        dec.decode = keep  # type: ignore[method-assign]
        p = subprocess.Popen([sys.executable, "-c", _MIX, str(tmp_path)])
        while p.poll() is None:
            b.poll(0.05)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            b.poll(0.05)
        assert p.returncode == 0
        boot = dec.boot_epoch_ns
    finally:
        b.close()
    assert len(records) > 500
    py = Decoder(boot, native=False)
    c = Decoder(boot)
    out_py: list[dict[str, Any]] = []
    out_c: list[dict[str, Any]] = []
    for dec2, out in ((py, out_py), (c, out_c)):
        rb = MemoryRing(records)
        rb.consume(dec2.decode, out)
        rb.close()
    assert [list(e.items()) for e in out_c] == [list(e.items()) for e in out_py]
    seen = {e["evt.type"] for e in out_c}
    assert {"openat", "connect", "socket", "dup2", "execve", "procexit"} <= seen
