"""File sink: JSON Lines, rotation, reopen, file mode, disk full."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from helpers import need
from stockade.errors import UsageError
from stockade.model.alert import Alert
from stockade.sinks.file import FileOptions, FileSink


def read_ids(path: Path) -> list[str]:
    return [orjson.loads(line)["stockade"]["id"] for line in path.read_bytes().splitlines()]


def test_writes_json_lines_with_mode_0600(tmp_path: Path, make_alert: Callable[..., Alert]) -> None:
    path = tmp_path / "deep" / "dir" / "alerts.jsonl"
    old = os.umask(0o000)
    try:
        sink = FileSink(path)
    finally:
        os.umask(old)
    alerts = [make_alert(i) for i in range(5)]
    for a in alerts:
        sink.emit(a)
    # written at once (buffer_bytes=0): readable before flush/close
    assert read_ids(path) == [a.id for a in alerts]
    sink.close()
    assert path.stat().st_mode & 0o777 == 0o600
    assert sink.stats.sent == 5


def test_rotation_keeps_whole_lines_in_order(tmp_path: Path, make_alert: Callable[..., Alert]) -> None:
    path = tmp_path / "alerts.jsonl"
    sink = FileSink(path, options=FileOptions(max_bytes=2000, backups=1000))
    alerts = [make_alert(i) for i in range(300)]
    for a in alerts:
        sink.emit(a)
    sink.close()
    files = [*sorted(tmp_path.glob("alerts.jsonl.*"), key=lambda p: -int(p.suffix[1:])), path]
    assert len(files) == sink.rotations + 1 > 10
    ids: list[str] = []
    for f in files:
        data = f.read_bytes()
        assert len(data) <= 2000
        assert data.endswith(b"\n")
        ids += read_ids(f)  # every line parses: none was split
    assert ids == [a.id for a in alerts]


def test_rotation_keeps_n_backups(tmp_path: Path, make_alert: Callable[..., Alert]) -> None:
    path = tmp_path / "a.jsonl"
    sink = FileSink(path, options=FileOptions(max_bytes=1000, backups=2, buffer_bytes=4096))
    for i in range(100):
        sink.emit(make_alert(i))
    sink.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "a.jsonl.1", "a.jsonl.2"]

    def ns(f: Path) -> list[int]:
        return [orjson.loads(line)["output_fields"]["n"] for line in f.read_bytes().splitlines()]

    # ~455 bytes a line: two lines a file; the newest 6 alerts are kept
    assert (ns(tmp_path / "a.jsonl.2"), ns(tmp_path / "a.jsonl.1"), ns(path)) == (
        [94, 95],
        [96, 97],
        [98, 99],
    )
    assert sink.rotations == 49


def test_oversized_line_gets_its_own_file(tmp_path: Path, make_alert: Callable[..., Alert]) -> None:
    path = tmp_path / "a.jsonl"
    sink = FileSink(path, options=FileOptions(max_bytes=500, backups=5))
    first, big, last = make_alert(0), make_alert(1, output="x" * 2000), make_alert(2)
    for a in (first, big, last):
        sink.emit(a)
    sink.close()
    assert read_ids(tmp_path / "a.jsonl.2") == [first.id]
    assert read_ids(tmp_path / "a.jsonl.1") == [big.id]
    assert orjson.loads((tmp_path / "a.jsonl.1").read_bytes())["output"] == "x" * 2000
    assert read_ids(path) == [last.id]


def test_reopen_after_logrotate_move(tmp_path: Path, make_alert: Callable[..., Alert]) -> None:
    path = tmp_path / "a.jsonl"
    sink = FileSink(path)
    sink.emit(make_alert(0))
    os.rename(path, tmp_path / "a.jsonl.old")
    sink.emit(make_alert(1))  # still goes to the moved file until reopen
    sink.reopen()
    sink.emit(make_alert(2))
    sink.close()
    assert len(read_ids(tmp_path / "a.jsonl.old")) == 2
    assert len(read_ids(path)) == 1


def test_text_format_and_fsync_always(tmp_path: Path, make_alert: Callable[..., Alert]) -> None:
    path = tmp_path / "a.log"
    sink = FileSink(path, format="text", options=FileOptions(fsync="always"))
    sink.emit(make_alert(0))
    sink.close()
    assert path.read_text().endswith(
        ": Warning A shell was spawned in a container (user=root proc=bash n=0)\n"
    )


def test_buffered_lines_written_on_flush(tmp_path: Path, make_alert: Callable[..., Alert]) -> None:
    path = tmp_path / "a.jsonl"
    sink = FileSink(path, options=FileOptions(buffer_bytes=1 << 20))
    for i in range(10):
        sink.emit(make_alert(i))
    assert path.read_bytes() == b""
    sink.flush()
    assert len(read_ids(path)) == 10
    sink.close()


def test_disk_full_counts_and_keeps_going(make_alert: Callable[..., Alert]) -> None:
    need(os.path.exists("/dev/full"), "needs /dev/full")
    sink = FileSink("/dev/full", options=FileOptions(fsync="never"))
    for i in range(5):
        sink.emit(make_alert(i))  # ENOSPC on every write: no exception
    sink.close()
    assert sink.stats.failed == 5
    assert sink.stats.sent == 0
    assert sink.errors.total == 5
    assert "No space left on device" in sink.errors.errors[0]


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="expected one of always, interval, never, not 'sometimes'"):
        FileOptions.model_validate({"fsync": "sometimes"})
    with pytest.raises(ValueError, match="expected an integer 0 or more"):
        FileOptions(backups=-1)
    with pytest.raises(UsageError, match="format must be 'text' or 'json', not 'xml'"):
        FileSink("/tmp/x", format="xml")
