"""`stockade replay` on inputs that are not what it expects: all malformed, binary, a long first line."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

STOCKADE = str(Path(sys.executable).parent / "stockade")
REPO = Path(__file__).resolve().parents[2]
RECORDING = REPO / "tests" / "data" / "recordings" / "shell_in_container.jsonl"
RULES = """\
- rule: Shell
  desc: d
  condition: evt.type = execve and proc.name = bash
  output: shell %proc.cmdline
  priority: WARNING
- rule: Audit get
  desc: d
  condition: ka.verb = get
  output: get by %ka.user.name
  priority: NOTICE
  source: k8s_audit
"""


def run(tmp_path: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKADE_")}
    return subprocess.run(
        [STOCKADE, "replay", "-r", str(rules), *args],
        input=stdin,
        capture_output=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
        check=False,
    )


@pytest.mark.parametrize(
    "args",
    [["--source", "syscall"], ["--source", "syscall", "-q"], ["--source", "syscall", str(RECORDING)]],
)
def test_an_input_with_no_readable_record_fails(tmp_path: Path, args: list[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('not json\n{"evt.type": "execve"\n{"no": "evt.type"}\n')
    r = run(tmp_path, *args, str(bad))
    assert r.returncode == 1, r.stderr
    assert (
        b"error: " + bytes(bad) + b": not one of its 3 records could be read as syscall events\n" in r.stderr
    )
    if str(RECORDING) in args:
        assert b"shell bash" in r.stdout  # the good input was replayed all the same


def test_an_input_with_some_readable_records_succeeds(tmp_path: Path) -> None:
    some = tmp_path / "some.jsonl"
    some.write_text(RECORDING.read_text() + "not json\n")
    r = run(tmp_path, str(some))
    assert r.returncode == 0, r.stderr
    assert b"1 malformed records skipped" in r.stderr and b"shell bash" in r.stdout


ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4
SCAP = b"\x0a\x0d\x0d\x0a\x1c\x00\x00\x00\x4d\x3c\x2b\x1a" + bytes(200)


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        ("ls", ELF, b"an ELF executable"),
        ("capture.scap", SCAP, b"a pcapng capture, such as a Falco/sysdig .scap file"),
        ("events.bin", gzip.compress(RECORDING.read_bytes()), b"gzip-compressed data: name it *.gz"),
        ("noise.jsonl", bytes(range(256)) * 8, b"binary data"),
    ],
)
@pytest.mark.parametrize("how", ["detect", "source", "stdin"])
def test_a_binary_file_is_named_as_such_not_printed(
    tmp_path: Path, name: str, content: bytes, kind: bytes, how: str
) -> None:
    f = tmp_path / name
    f.write_bytes(content)
    where = b"stdin" if how == "stdin" else bytes(f)
    if how == "stdin":
        r = run(tmp_path, "-", stdin=content)
    elif how == "source":
        r = run(tmp_path, "--source", "syscall", str(f))
    else:
        r = run(tmp_path, str(f))
    assert r.returncode == 1 and r.stdout == b""
    assert b"error: " + where + b" is a binary file (" + kind in r.stderr, r.stderr
    assert r.stderr.isascii() and b"\\x" not in r.stderr  # no bytes of it shown
    assert len(r.stderr.splitlines()) <= 2


def test_gzip_named_gz_is_read(tmp_path: Path) -> None:
    f = tmp_path / "rec.jsonl.gz"
    f.write_bytes(gzip.compress(RECORDING.read_bytes()))
    r = run(tmp_path, str(f))
    assert r.returncode == 0 and b"shell bash" in r.stdout, r.stderr
    notgz = tmp_path / "plain.gz"
    notgz.write_bytes(RECORDING.read_bytes())
    r = run(tmp_path, str(notgz))
    assert r.returncode == 1
    assert b"cannot read " + bytes(notgz) + b": it is named .gz but is not gzip-compressed" in r.stderr


@pytest.mark.parametrize("via_stdin", [False, True])
def test_a_long_first_line_is_still_detected(tmp_path: Path, via_stdin: bool) -> None:
    long_cmdline = "bash " + "A" * (3 << 20)  # 3 MiB: longer than the first read
    events = [
        {"evt.type": "execve", "evt.dir": "<", "proc.cmdline": long_cmdline, "proc.name": "bash"},
        {"evt.type": "execve", "evt.dir": "<", "proc.cmdline": "bash -l", "proc.name": "bash"},
    ]
    data = "".join(json.dumps(e) + "\n" for e in events).encode()
    f = tmp_path / "long.jsonl"
    f.write_bytes(data)
    r = run(tmp_path, "-o", "json", "-", stdin=data) if via_stdin else run(tmp_path, "-o", "json", str(f))
    assert r.returncode == 0, r.stderr[:500]
    alerts = [json.loads(line) for line in r.stdout.splitlines()]
    assert [a["output_fields"]["proc.cmdline"] for a in alerts] == [long_cmdline, "bash -l"]
    assert b"(source syscall)" in r.stderr


def test_a_large_pretty_printed_audit_document_is_detected(tmp_path: Path) -> None:
    item = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "stage": "ResponseComplete",
        "verb": "get",
        "user": {"username": "alice"},
        "objectRef": {"resource": "pods", "namespace": "default"},
        "stageTimestamp": "2024-01-01T00:00:00Z",
        "annotations": {"pad": "x" * 300},
    }
    doc = {
        "kind": "EventList",
        "apiVersion": "audit.k8s.io/v1",
        "items": [dict(item, auditID=str(i)) for i in range(6000)],
    }
    f = tmp_path / "audit.json"
    f.write_text(json.dumps(doc, indent=2))
    assert f.stat().st_size > 2 << 20
    r = run(tmp_path, "-q", str(f))
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 6000 and b"get by alice" in r.stdout
