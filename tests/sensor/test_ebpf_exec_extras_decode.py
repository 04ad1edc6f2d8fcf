"""Decoding what an exec record says besides its program (no kernel needed): the environment as
Falco renders it (from its head and tail when it was longer than the kernel read), and the type and
name of each standard fd from its inode's mode and file system; the times structs of utimensat,
utimes and utime. The eBPF side is tested on real processes in test_ebpf_attack_fields.py."""

from __future__ import annotations

import socket
import struct

from stockade.sensor.ebpf.events import (
    _SOCK,
    _STDIO,
    ENV_CACHE,
    T_STDIO,
    T_STDIO_PATH,
    T_STDIO_SOCK,
    Decoder,
    _stdio_fields,
    _times,
)

PIPEFS, ANON, DEVTMPFS = 0x50495045, 0x09041934, 0x1373


def _dec() -> Decoder:
    return Decoder(0, native=False)


def test_an_environment_read_whole() -> None:
    d = _dec()
    raw = b"PATH=/bin\0HISTFILE=/dev/null\0A=b c\0"
    assert d._env(raw, None, len(raw)) == "PATH=/bin HISTFILE=/dev/null A=b c"
    assert not d.facts


def test_processes_with_one_environment_share_one_string() -> None:
    """The decoder keeps each live process's proc.env: children that inherit one environment must
    not each hold a copy (a fork-heavy node has tens of thousands), and the cache is bounded."""
    d = _dec()
    raw = b"PATH=/bin\0HOME=/root\0" + b"X=" + b"y" * 3000 + b"\0"
    first = d._env(bytes(raw), None, len(raw))
    assert d._env(bytes(raw), None, len(raw)) is first
    for i in range(ENV_CACHE * 2):
        other = b"N=%d\0" % i
        assert d._env(other, None, len(other)) == f"N={i}"
    assert len(d._envs) == ENV_CACHE
    assert d._env(bytes(raw), None, len(raw)) == first  # decoded again once evicted


def test_a_long_environment_keeps_its_whole_entries_at_both_ends() -> None:
    d = _dec()
    head = b"FIRST=1\0SECOND=2\0THI"  # cut in the third entry
    tail = b"ddle\0LAST=9\0"  # starts inside an entry
    assert d._env(head, tail, 10_000) == "FIRST=1 SECOND=2 LAST=9"
    assert d.facts["env_truncated"] == 1


def test_a_head_and_tail_that_meet_are_joined() -> None:
    d = _dec()
    head, tail = b"A=1\0B=2", b"2\0C=3\0"
    assert d._env(head, tail, len(head) + len(tail)) == "A=1 B=22 C=3"
    assert not d.facts


def _info(mode: int, magic: int, ino: int = 7) -> bytes:
    return _STDIO.pack(mode, magic, ino)


def test_standard_fd_types_and_names() -> None:
    sock = _SOCK.pack(
        2,
        1,
        6,
        4444,
        80,
        0,
        socket.inet_aton("10.0.0.2") + bytes(12),
        socket.inet_aton("10.0.0.9") + bytes(12),
    )
    blobs = {
        T_STDIO: _info(0o010600, PIPEFS, 123),
        T_STDIO + 1: _info(0o020666, DEVTMPFS),
        T_STDIO_PATH + 1: b"null\0dev\0",
        T_STDIO + 2: _info(0o140777, 0x534F434B),
        T_STDIO_SOCK + 2: sock,
    }
    f = _stdio_fields(blobs)
    assert (f["proc.stdin.type"], f["proc.stdin.name"]) == ("pipe", "pipe:[123]")
    assert (f["proc.stdout.type"], f["proc.stdout.name"]) == ("file", "/dev/null")
    assert (f["proc.stderr.type"], f["proc.stderr.name"]) == ("ipv4", "10.0.0.2:4444->10.0.0.9:80")


def test_fifos_directories_anonymous_inodes_and_closed_fds() -> None:
    blobs = {
        T_STDIO: _info(0o010644, 0xEF53),
        T_STDIO_PATH: b"fifo\0tmp\0",
        T_STDIO + 1: _info(0o040755, 0xEF53),
        T_STDIO_PATH + 1: b"tmp\0",
        T_STDIO + 2: _info(0o600, ANON),
        T_STDIO_PATH + 2: b"[eventfd]\0",
    }
    f = _stdio_fields(blobs)
    assert (f["proc.stdin.type"], f["proc.stdin.name"]) == ("pipe", "/tmp/fifo")
    assert (f["proc.stdout.type"], f["proc.stdout.name"]) == ("directory", "/tmp")
    assert (f["proc.stderr.type"], f["proc.stderr.name"]) == ("event", "")
    assert _stdio_fields({T_STDIO + 1: _info(0o020620, 0x1CD1), T_STDIO_PATH + 1: b"0\0pts\0dev\0"}) == {
        "proc.stdout.type": "file",
        "proc.stdout.name": "/dev/pts/0",
    }


def test_times_structs() -> None:
    now, omit = (1 << 30) - 1, (1 << 30) - 2
    assert _times(struct.pack("<qqqq", 1, 2, 3, now), "ts") == (1_000_000_002, "UTIME_NOW")
    assert _times(struct.pack("<qqqq", 1, omit, 0, 0), "ts") == ("UTIME_OMIT", 0)
    assert _times(struct.pack("<qqqq", 1, 2, 3, 4), "tv") == (1_000_002_000, 3_000_004_000)
    assert _times(struct.pack("<qq", -1, 5), "ub") == (-1_000_000_000, 5_000_000_000)
    assert _times(None, "ts") is None
    assert _times(b"\0" * 8, "ts") is None
