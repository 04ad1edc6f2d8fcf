"""Telling a file's source from its first record, and opening sources by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from stockade.errors import SourceError
from stockade.sources.detect import detect_source, open_input
from stockade.sources.registry import SOURCE_NAMES, open_source, source_class

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "data" / "recordings" / "shell_in_container.jsonl"
TETRAGON = Path(os.environ["STOCKADE_TEST_SHARED_DATA"]) / "tetragon" / "events.json"
AUDIT_DIR = Path(os.environ["STOCKADE_TEST_SHARED_DATA"]) / "k8s" / "audit"

AUDIT_EVENT = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "Metadata",
    "auditID": "1",
    "stage": "ResponseComplete",
    "verb": "get",
}
FALCO_ALERT = {
    "rule": "R",
    "priority": "Warning",
    "output": "o",
    "output_fields": {},
    "time": "2024-01-01T00:00:00Z",
}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('\n\n{"evt.type": "execve"}\n', "syscall"),
        ('{"stockade.schema": 1}\n{"evt.type": "execve"}\n', "syscall"),
        (json.dumps(FALCO_ALERT) + "\n", "falco"),
        (json.dumps({"process_kprobe": {}, "node_name": "n", "time": "t"}) + "\n", "tetragon"),
        (json.dumps(AUDIT_EVENT) + "\n", "k8s_audit"),
        # an EventList written as one pretty-printed document
        (
            json.dumps(
                {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [AUDIT_EVENT]}, indent=2
            ),
            "k8s_audit",
        ),
        # a JSON array of Falco alerts
        (json.dumps([FALCO_ALERT], indent=1), "falco"),
    ],
)
def test_detect(tmp_path: Path, content: str, expected: str) -> None:
    p = tmp_path / "in.json"
    p.write_text(content)
    assert detect_source(str(p)) == expected


def test_detect_real_files() -> None:
    assert detect_source(str(SAMPLE)) == "syscall"
    if TETRAGON.exists():
        assert detect_source(str(TETRAGON)) == "tetragon"
    audit = AUDIT_DIR / "demo.log"
    if audit.exists():
        assert detect_source(str(audit)) == "k8s_audit"


def test_undetectable(tmp_path: Path) -> None:
    p = tmp_path / "odd.txt"
    p.write_text("hello world\n{}\n")
    with pytest.raises(
        SourceError, match=r"cannot tell the source of .*odd.txt: first line is 'hello world'; use --source"
    ):
        detect_source(str(p))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(SourceError, match="it is empty"):
        detect_source(str(empty))


def test_open_input_keeps_every_byte_of_a_pipe() -> None:
    payload = b"".join(json.dumps({"evt.type": "read", "i": i}).encode() + b"\n" for i in range(50000))
    r, w = os.pipe()

    def feed() -> None:
        with os.fdopen(w, "wb") as f:
            f.write(payload)

    t = threading.Thread(target=feed)
    t.start()
    with os.fdopen(r, "rb") as pipe:
        name, stream = open_input(pipe)
        got = stream.read()
    t.join()
    assert name == "syscall"
    assert got == payload


def test_open_input_then_source_reads_all(tmp_path: Path) -> None:
    name, stream = open_input(str(SAMPLE))
    with stream:
        src = open_source(name, stream, name_hint="sample")
        assert len(list(src.events())) == 10
    assert src.name == "syscall"


def test_open_input_stdin() -> None:
    code = (
        "from stockade.sources.detect import open_input\n"
        "from stockade.sources.registry import open_source\n"
        "name, stream = open_input('-')\n"
        "src = open_source(name, stream, name_hint='stdin')\n"
        "print(name, [e.origin for e in src.events()])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=(json.dumps(FALCO_ALERT) + "\n" + json.dumps(FALCO_ALERT) + "\n").encode(),
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.decode().strip() == "falco ['stdin:1', 'stdin:2']"


def test_registry_opens_each_source(tmp_path: Path) -> None:
    assert SOURCE_NAMES == ("syscall", "falco", "tetragon", "k8s_audit")
    p = tmp_path / "f.json"
    p.write_text(json.dumps(FALCO_ALERT) + "\n")
    src = open_source("falco", str(p))
    assert src.name == "falco" and len(list(src.events())) == 1 and src.stats.events == 1
    if TETRAGON.exists():
        t = open_source("tetragon", str(TETRAGON))
        assert t.name == "tetragon" and len(list(t.events())) == 3


def test_registry_unknown_and_missing() -> None:
    with pytest.raises(SourceError, match="unknown source 'pcap'"):
        open_source("pcap", "x")
    try:
        cls = source_class("k8s_audit")
    except SourceError as e:
        assert "not available" in str(e)
    else:
        assert cls.__name__ == "K8sAuditSource"
