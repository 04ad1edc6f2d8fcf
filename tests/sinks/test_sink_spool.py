"""The disk spool: order, persistence across restarts, prepend, size bound, torn tails."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from stockade.sinks.spool import ErrorLog, Spool


def drain(sp: Spool) -> list[bytes]:
    out = []
    while (r := sp.peek()) is not None:
        out.append(r)
        sp.advance()
    return out


def recs(a: int, b: int) -> list[bytes]:
    return [b'{"n":%d}' % i for i in range(a, b)]


def test_fifo_across_segments(tmp_path: Path) -> None:
    sp = Spool(tmp_path, segment_bytes=100)
    for r in recs(0, 50):
        assert sp.append([r]) == 1
    assert len(sp) == 50
    assert len(list(tmp_path.glob("*.jsonl"))) > 3
    assert drain(sp) == recs(0, 50)
    assert len(sp) == 0 and sp.size_bytes == 0
    assert list(tmp_path.glob("*.jsonl")) == []
    # usable again after being emptied
    sp.append(recs(50, 52))
    assert drain(sp) == recs(50, 52)


def test_interleaved_append_and_read(tmp_path: Path) -> None:
    sp = Spool(tmp_path, segment_bytes=64)
    got: list[bytes] = []
    for i in range(0, 100, 4):
        sp.append(recs(i, i + 4))
        for _ in range(3):
            r = sp.peek()
            assert r is not None
            got.append(r)
            sp.advance()
    got += drain(sp)
    assert got == recs(0, 100)


def test_survives_restart_with_partial_delivery(tmp_path: Path) -> None:
    sp = Spool(tmp_path, segment_bytes=80)
    sp.append(recs(0, 30))
    for _ in range(7):
        sp.peek()
        sp.advance()
    sp.close()
    sp2 = Spool(tmp_path, segment_bytes=80)
    assert len(sp2) == 23
    sp2.append(recs(30, 35))
    assert drain(sp2) == recs(7, 35)


def test_prepend_goes_first_even_after_partial_read(tmp_path: Path) -> None:
    sp = Spool(tmp_path)
    sp.append(recs(10, 20))
    sp.peek()
    sp.advance()  # 10 delivered
    assert sp.prepend(recs(0, 3)) == 3
    sp.append(recs(20, 22))
    sp.close()
    sp2 = Spool(tmp_path)
    assert drain(sp2) == recs(0, 3) + recs(11, 22)


def test_max_bytes_bound(tmp_path: Path) -> None:
    sp = Spool(tmp_path, max_bytes=50)
    n = sp.append(recs(0, 20))  # each record is 8-9 bytes with its newline
    assert 0 < n < 20
    assert sp.size_bytes <= 50
    assert sp.append(recs(20, 21)) == 0
    assert drain(sp) == recs(0, n)


def test_torn_tail_is_skipped(tmp_path: Path) -> None:
    sp = Spool(tmp_path)
    sp.append(recs(0, 3))
    sp.close()
    seg = next(tmp_path.glob("*.jsonl"))
    with open(seg, "ab") as f:
        f.write(b'{"n":3')  # a crash in the middle of a write
    sp2 = Spool(tmp_path)
    sp2.append(recs(4, 5))
    assert drain(sp2) == [*recs(0, 3), *recs(4, 5)]
    assert sp2.corrupt == 1


def test_rejects_newlines(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Spool(tmp_path).append([b"a\nb"])


def test_error_log_bounded() -> None:
    log = ErrorLog("t", keep=3)
    for i in range(10):
        log.report(f"problem {i}")
    assert log.total == 10
    assert log.errors == ["problem 7", "problem 8", "problem 9"]


def test_one_owner_at_a_time(tmp_path: Path) -> None:
    sp = Spool(tmp_path)
    with pytest.raises(OSError, match="in use"):
        Spool(tmp_path)
    sp.close()
    Spool(tmp_path).close()


def test_the_spool_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        d = tmp_path / "data" / "spool" / "webhook"
        sp = Spool(d, segment_bytes=64)
        sp.append(recs(0, 10))
        sp.prepend(recs(10, 12))
        sp.close()
    finally:
        os.umask(old)
    for p in (tmp_path / "data", tmp_path / "data" / "spool", d):
        assert stat.S_IMODE(p.stat().st_mode) == 0o700, p
    files = list(d.iterdir())
    assert len(files) > 2
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
