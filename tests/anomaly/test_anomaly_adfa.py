"""Reading ADFA-LD traces: files, directories and tar archives, in name order; a file that is not a
trace names itself, the line and the column of the bad token."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from stockade.anomaly.adfa import parse_trace, read_traces
from stockade.errors import SourceError


def test_a_trace_is_syscall_numbers_separated_by_white_space() -> None:
    assert parse_trace(b"6 6 63 6 42 120 6 195 120 6 6 114 162 114 162 \n", "t") == [
        6, 6, 63, 6, 42, 120, 6, 195, 120, 6, 6, 114, 162, 114, 162
    ]  # fmt: skip
    assert parse_trace(b"3\n4\t5\r\n", "t") == [3, 4, 5]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"3 4 5\n6 x7 8\n", "t.txt:2:3: not a syscall number: 'x7'"),
        (b"3 -4", "t.txt:1:3: not a syscall number: '-4'"),
        (b"3 1_000", "t.txt:1:3: not a syscall number: '1_000'"),
        (b"   \n", "t.txt: not an ADFA-LD trace: no syscall numbers in it"),
        (b"3 4 \xff\xfe", "t.txt: not an ADFA-LD trace: byte 0xff at offset 4 is not text"),
    ],
)
def test_a_file_that_is_not_a_trace_says_where(data: bytes, says: str) -> None:
    with pytest.raises(SourceError) as e:
        parse_trace(data, "t.txt")
    assert str(e.value) == says


def _tree(root: Path) -> None:
    (root / "b").mkdir(parents=True)
    (root / "a.txt").write_text("1 2 3")
    (root / "b" / "c.txt").write_text("4 5")
    (root / ".hidden").write_text("not a trace")
    (root / "b" / ".DS_Store").write_bytes(b"\x00\x01")


def test_directories_are_read_in_name_order_without_hidden_files(tmp_path: Path) -> None:
    _tree(tmp_path / "d")
    (tmp_path / "z.txt").write_text("9")
    got = [(t.name, t.syscalls) for t in read_traces([tmp_path / "d", tmp_path / "z.txt"])]
    assert got == [
        (str(tmp_path / "d" / "a.txt"), [1, 2, 3]),
        (str(tmp_path / "d" / "b" / "c.txt"), [4, 5]),
        (str(tmp_path / "z.txt"), [9]),
    ]


def test_a_tar_archive_is_read_as_its_files(tmp_path: Path) -> None:
    arc = tmp_path / "set.tar.gz"
    with tarfile.open(arc, "w:gz") as tar:
        for name, data in (("set/z.txt", b"7 8"), ("set/a.txt", b"1 2"), ("set/.x", b"junk")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert [(t.name, t.syscalls) for t in read_traces([arc])] == [
        (f"{arc}:set/a.txt", [1, 2]),
        (f"{arc}:set/z.txt", [7, 8]),
    ]
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(arc.read_bytes()[:40])
    with pytest.raises(SourceError, match=r"broken\.tar\.gz: not a readable tar archive"):
        list(read_traces([broken]))


def test_a_bad_file_stops_the_read_or_is_handed_on(tmp_path: Path) -> None:
    _tree(tmp_path)
    (tmp_path / "b" / "bad.txt").write_text("1 2\nthree")
    with pytest.raises(SourceError, match=r"bad\.txt:2:1: not a syscall number: 'three'"):
        list(read_traces([tmp_path]))
    problems: list[SourceError] = []
    got = [t.name for t in read_traces([tmp_path, tmp_path / "missing"], on_error=problems.append)]
    assert got == [str(tmp_path / "a.txt"), str(tmp_path / "b" / "c.txt")]
    assert [str(p) for p in problems] == [
        f"{tmp_path / 'b' / 'bad.txt'}:2:1: not a syscall number: 'three'",
        f"{tmp_path / 'missing'}: no such file or directory",
    ]
