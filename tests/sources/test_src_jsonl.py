"""JSON Lines recordings: decoding, malformed lines, the header, stdin, and the sample recording."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import SHARED_DATA, need_file
from stockade.engine import Engine
from stockade.errors import SourceError
from stockade.sources.base import iter_lines
from stockade.sources.interface import MAX_REPORTED_ERRORS
from stockade.sources.jsonl import JsonlSource
from stockade.sources.tetragon import EVENT_KINDS

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "data" / "recordings" / "shell_in_container.jsonl"
FALCO_RULES = SHARED_DATA / "falco-rules" / "falco_rules.yaml"


def test_events_carry_data_and_origin(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl"
    p.write_text(
        '{"evt.type": "execve", "evt.dir": "<", "proc.name": "bash", "proc.aname": ["runc", "containerd-shim"]}\n'
        '{"evt.type": "openat", "fd.name": "/etc/shadow", "proc.aname[2]": "containerd-shim"}\n'
    )
    src = JsonlSource(str(p))
    events = list(src.events())
    assert [e.source for e in events] == ["syscall", "syscall"]
    assert [e.origin for e in events] == [f"{p}:1", f"{p}:2"]
    assert events[0].data["proc.aname"] == ["runc", "containerd-shim"]
    assert events[1].data == {
        "evt.type": "openat",
        "fd.name": "/etc/shadow",
        "proc.aname[2]": "containerd-shim",
    }
    assert src.stats.events == 2 and src.stats.malformed == 0


def test_malformed_lines_counted_with_file_and_line_rest_goes_on(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text(
        "\n".join(
            [
                '{"evt.type": "execve", "proc.name": "a"}',  # 1
                "",  # 2 blank: skipped, not malformed
                "   ",  # 3 blank
                '{"evt.type": "execve", "proc.name": ',  # 4 truncated
                "[1, 2, 3]",  # 5 not an object
                '{"proc.name": "no type"}',  # 6 no evt.type
                '"just a string"',  # 7
                '{"kind": "Event", "apiVersion": "audit.k8s.io/v1", "verb": "get"}',  # 8 wrong source
                '{"rule": "R", "priority": "Warning", "output": "x", "output_fields": {}}',  # 9 Falco alert
                '{"process_exec": {"process": {}}}',  # 10 Tetragon
                '{"evt.type": "openat", "proc.name": "b"}',  # 11
            ]
        )
        # no final newline: the last line still counts
    )
    src = JsonlSource(str(p))
    names = [e.data["proc.name"] for e in src.events()]
    assert names == ["a", "b"]
    assert src.stats.events == 2
    assert src.stats.malformed == 7
    locs = [err.split(": ", 1)[0] for err in src.stats.errors]
    assert locs == [f"{p}:{n}" for n in (4, 5, 6, 7, 8, 9, 10)]
    errs = src.stats.errors
    assert "not JSON" in errs[0]
    assert "expected a JSON object, got an array" in errs[1]
    assert errs[2].endswith("no evt.type")
    assert "--source k8s_audit" in errs[4]
    assert "--source falco" in errs[5]
    assert "--source tetragon" in errs[6]


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_every_tetragon_kind_in_a_recording_is_named(tmp_path: Path, kind: str) -> None:
    """The recording's "wrong source" message knows every kind Tetragon's source knows."""
    p = tmp_path / "mixed.jsonl"
    p.write_text(json.dumps({kind: {}, "time": "2024-01-01T00:00:00Z"}) + "\n" + '{"evt.type": "close"}\n')
    src = JsonlSource(str(p))
    assert len(list(src.events())) == 1
    assert src.stats.errors == [f"{p}:1: a Tetragon event, not a syscall recording (use --source tetragon)"]


def test_error_list_is_bounded_but_count_is_exact(tmp_path: Path) -> None:
    p = tmp_path / "many.jsonl"
    p.write_text("garbage\n" * 100 + '{"evt.type": "close"}\n')
    src = JsonlSource(str(p))
    assert len(list(src.events())) == 1
    assert src.stats.malformed == 100
    assert len(src.stats.errors) == MAX_REPORTED_ERRORS


def test_schema_header(tmp_path: Path) -> None:
    ok = tmp_path / "ok.jsonl"
    ok.write_text('{"stockade.schema": 1, "host": "n1"}\n{"evt.type": "execve"}\n')
    src = JsonlSource(str(ok))
    assert len(list(src.events())) == 1
    assert src.stats.malformed == 0
    assert src.header == {"stockade.schema": 1, "host": "n1"}

    future = tmp_path / "future.jsonl"
    future.write_text('{"stockade.schema": 99}\n{"evt.type": "execve"}\n')
    src = JsonlSource(str(future))
    assert len(list(src.events())) == 1
    assert src.stats.malformed == 1
    assert "unsupported recording schema 99" in src.stats.errors[0]


def test_crlf_and_large_input_across_chunks(tmp_path: Path) -> None:
    p = tmp_path / "big.jsonl"
    n = 30000
    with p.open("wb") as f:
        for i in range(n):
            f.write(json.dumps({"evt.type": "read", "proc.pid": i, "pad": "x" * (i % 97)}).encode() + b"\r\n")
    src = JsonlSource(str(p))
    pids = [e.data["proc.pid"] for e in src.events()]
    assert pids == list(range(n))
    assert src.stats.malformed == 0


def test_iter_lines_keeps_every_line() -> None:
    data = b"a\n\nbb\n" + b"c" * (3 << 20) + b"\nlast"
    assert list(iter_lines(io.BytesIO(data))) == [b"a", b"", b"bb", b"c" * (3 << 20), b"last"]


def test_stream_and_name_hint() -> None:
    src = JsonlSource(io.BytesIO(b'{"evt.type": "execve"}\n'), name_hint="http")
    assert [e.origin for e in src.events()] == ["http:1"]


def test_gzip_recording(tmp_path: Path) -> None:
    p = tmp_path / "r.jsonl.gz"
    with gzip.open(p, "wb") as f:
        f.write(b'{"evt.type": "execve"}\n{"evt.type": "procexit"}\n')
    assert [e.data["evt.type"] for e in JsonlSource(str(p)).events()] == ["execve", "procexit"]


def test_missing_file_is_a_source_error(tmp_path: Path) -> None:
    src = JsonlSource(str(tmp_path / "nope.jsonl"))
    with pytest.raises(SourceError, match=r"cannot open .*nope\.jsonl"):
        list(src.events())


def test_reads_stdin() -> None:
    code = (
        "from stockade.sources.jsonl import JsonlSource\n"
        "s = JsonlSource('-')\n"
        "print([e.origin for e in s.events()], s.stats.malformed)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=b'{"evt.type": "execve"}\nnope\n{"evt.type": "close"}\n',
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.decode().strip() == "['stdin:1', 'stdin:3'] 1"


def test_sample_recording_is_clean() -> None:
    src = JsonlSource(str(SAMPLE))
    events = list(src.events())
    assert src.stats.malformed == 0 and src.header is not None
    assert len(events) == 10
    types = [e.data["evt.type"] for e in events]
    assert types.count("execve") == 5 and "connect" in types and "openat" in types
    times = [e.data["evt.time"] for e in events]
    assert times == sorted(times)


def test_sample_recording_fires_falco_rules() -> None:
    need_file(FALCO_RULES)
    engine = Engine.from_files([str(FALCO_RULES)], rule_matching="all", hostname="test-host")
    fired = {}
    for e in JsonlSource(str(SAMPLE)).events():
        for a in engine.process(e):
            fired[a.rule] = e.origin
    assert fired == {
        "Terminal shell in container": f"{SAMPLE}:4",
        "Read sensitive file untrusted": f"{SAMPLE}:6",
    }
