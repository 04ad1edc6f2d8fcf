"""Telling a file's source from its first record, and opening sources by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from helpers import SHARED_DATA, need_file
from stockade.errors import SourceError
from stockade.sources.detect import PEEK_BYTES, classify, detect_source, open_input
from stockade.sources.registry import SOURCE_NAMES, open_source, source_class
from stockade.sources.tetragon import EVENT_KINDS

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "tests" / "data" / "recordings" / "shell_in_container.jsonl"
TETRAGON = SHARED_DATA / "tetragon" / "events.json"
AUDIT_LOG = SHARED_DATA / "k8s" / "audit" / "demo.log"

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


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        # a record two sources could claim goes to the one asked first (detect_order)
        ({**AUDIT_EVENT, "evt.type": "execve"}, "k8s_audit"),
        ({**AUDIT_EVENT, **FALCO_ALERT}, "k8s_audit"),
        ({**FALCO_ALERT, "evt.type": "execve"}, "falco"),
        ({**FALCO_ALERT, "process_exec": {}}, "falco"),
        ({"process_exec": {}, "evt.type": "execve"}, "tetragon"),
        ({"process_loader": {}, "stockade.schema": 1}, "tetragon"),
        # every Tetragon kind tells an export (the source's one list of kinds), its self-test event not
        *[({kind: {}}, "tetragon") for kind in EVENT_KINDS],
        ({"test": {}}, None),
        ({"rule": "R", "output": "o"}, None),  # no priority: not a Falco alert
        ({"kind": "Event", "apiVersion": "v1"}, None),  # a core Event, not an audit one
    ],
)
def test_detection_order(record: dict[str, Any], expected: str | None) -> None:
    assert classify(record) == expected


def test_a_document_longer_than_the_peek_is_told_by_its_keys(tmp_path: Path) -> None:
    """A pretty-printed array of Falco alerts too long to decode within the peek: its keys tell, and
    an alert's keys come before the evt.type of its output_fields (detect_order)."""
    alert = {**FALCO_ALERT, "output_fields": {"evt.type": "execve", "proc.cmdline": "x" * 200}}
    p = tmp_path / "alerts.json"
    p.write_text(json.dumps([alert] * 8000, indent=2))
    assert p.stat().st_size > PEEK_BYTES
    assert detect_source(str(p)) == "falco"
    kinds = tmp_path / "tetragon.json"
    kinds.write_text(json.dumps([{"process_lsm": {"pad": "y" * 300}}] * 6000, indent=2))
    assert kinds.stat().st_size > PEEK_BYTES
    assert detect_source(str(kinds)) == "tetragon"


def test_detect_the_sample_recording() -> None:
    assert detect_source(str(SAMPLE)) == "syscall"


def test_detect_real_files() -> None:
    assert detect_source(str(need_file(TETRAGON))) == "tetragon"
    assert detect_source(str(need_file(AUDIT_LOG))) == "k8s_audit"


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


def test_open_input_then_source_reads_all() -> None:
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


def test_registry_opens_a_real_tetragon_export() -> None:
    t = open_source("tetragon", str(need_file(TETRAGON)))
    assert t.name == "tetragon" and len(list(t.events())) == 3


def test_registry_unknown_and_missing() -> None:
    with pytest.raises(
        SourceError, match=r"unknown source 'pcap' \(known: syscall, falco, tetragon, k8s_audit\)"
    ):
        open_source("pcap", "x")
    try:
        cls = source_class("k8s_audit")
    except SourceError as e:
        assert "not available" in str(e)
    else:
        assert cls.__name__ == "K8sAuditSource"
