"""The contract every registered source keeps: read events from a small valid input, count a malformed
line without raising, and tell its own input (and only its own) when detecting a file's source.

A new source is one file and one registry line; it then fails here until it has a sample below.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stockade.model.event import SOURCES
from stockade.sources.detect import classify, detect_source
from stockade.sources.interface import SourcePlugin
from stockade.sources.registry import SOURCE_NAMES, open_source, source_class
from stockade.sources.registry import SOURCES as REGISTRY

#: two valid records of each source, as JSON values (one per line of the input)
SAMPLES: dict[str, list[dict[str, Any]]] = {
    "syscall": [
        {"stockade.schema": 1, "host": "n1"},
        {"evt.type": "execve", "evt.dir": "<", "proc.name": "bash", "evt.time": 1700000000000000000},
        {"evt.type": "openat", "evt.dir": "<", "fd.name": "/etc/shadow", "evt.time": 1700000000000000001},
    ],
    "falco": [
        {
            "rule": "Terminal shell in container",
            "priority": "Notice",
            "output": "shell by root",
            "source": "syscall",
            "time": "2024-05-01T10:00:00.000000000Z",
            "output_fields": {"proc.name": "bash", "user.name": "root"},
        },
        {
            "rule": "K8s Secret Get Successfully",
            "priority": "Error",
            "output": "secret read",
            "source": "k8s_audit",
            "time": "2024-05-01T10:00:01.000000000Z",
            "output_fields": {"ka.user.name": "alice"},
        },
    ],
    "tetragon": [
        {
            "process_exec": {
                "process": {"exec_id": "ZXhlYzE=", "pid": 4242, "uid": 0, "binary": "/usr/bin/id"},
                "parent": {"exec_id": "cGFyZW50", "pid": 1, "binary": "/sbin/init"},
            },
            "node_name": "n1",
            "time": "2024-05-01T10:00:00.000000000Z",
        },
        {
            "process_exit": {
                "process": {"exec_id": "ZXhlYzE=", "pid": 4242, "uid": 0, "binary": "/usr/bin/id"},
                "status": 0,
            },
            "node_name": "n1",
            "time": "2024-05-01T10:00:01.000000000Z",
        },
    ],
    "k8s_audit": [
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": "7a0c1e3e-3a51-4b8e-9d1e-1f3c5b7d9e01",
            "stage": "ResponseComplete",
            "requestURI": "/api/v1/namespaces/default/secrets/db",
            "verb": "get",
            "user": {"username": "alice"},
            "stageTimestamp": "2024-05-01T10:00:00.000000Z",
        },
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": "7a0c1e3e-3a51-4b8e-9d1e-1f3c5b7d9e02",
            "stage": "ResponseComplete",
            "requestURI": "/api/v1/namespaces/default/pods",
            "verb": "list",
            "user": {"username": "alice"},
            "stageTimestamp": "2024-05-01T10:00:01.000000Z",
        },
    ],
}


def _events_in(name: str) -> int:
    """How many events a sample holds (a recording's header line is not one)."""
    return sum(1 for r in SAMPLES[name] if "stockade.schema" not in r)


def _write(path: Path, name: str, extra: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in SAMPLES[name]) + extra)
    return path


def test_every_registered_source_has_a_sample_and_no_sample_is_unregistered() -> None:
    assert set(SAMPLES) == set(SOURCE_NAMES)
    assert REGISTRY.names() == SOURCE_NAMES


def test_detection_order_is_total() -> None:
    """Two sources asked at the same rank would make detection depend on registration order."""
    orders = [source_class(n).detect_order for n in SOURCE_NAMES]
    assert len(set(orders)) == len(orders)


@pytest.mark.parametrize("name", SOURCE_NAMES)
def test_the_class_describes_itself(name: str) -> None:
    cls: type[SourcePlugin] = source_class(name)
    assert cls.name == name
    assert cls.record.startswith(("a ", "an ")) and cls.record == cls.record.strip()
    assert isinstance(cls.detect_order, int)


@pytest.mark.parametrize("name", SOURCE_NAMES)
def test_reads_events_from_a_valid_input(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path / f"{name}.jsonl", name)
    src = open_source(name, str(path))
    events = list(src.events())
    assert src.name == name
    assert len(events) == _events_in(name) == src.stats.events
    assert src.stats.malformed == 0 and src.stats.errors == []
    assert all(e.source in SOURCES for e in events)  # what rules are written for
    assert all(e.origin is not None and e.origin.startswith(f"{path}:") for e in events)
    assert all(isinstance(e.data, dict) and e.data for e in events)


@pytest.mark.parametrize("name", SOURCE_NAMES)
def test_reads_a_stream_with_a_name_hint(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path / "in", name)
    with path.open("rb") as stream:
        src = open_source(name, stream, name_hint="upload")
        origins = [e.origin for e in src.events()]
    assert len(origins) == _events_in(name)
    assert all(o is not None and o.startswith("upload:") for o in origins)


@pytest.mark.parametrize("name", SOURCE_NAMES)
def test_counts_a_malformed_line_and_goes_on(tmp_path: Path, name: str) -> None:
    n = len(SAMPLES[name])
    path = _write(
        tmp_path / f"{name}.jsonl", name, extra='{"broken": \n' + json.dumps(SAMPLES[name][-1]) + "\n"
    )
    src = open_source(name, str(path))
    events = list(src.events())  # does not raise
    assert len(events) == _events_in(name) + 1
    assert src.stats.malformed == 1
    assert src.stats.errors[0].startswith(f"{path}:{n + 1}: not JSON")


@pytest.mark.parametrize("name", SOURCE_NAMES)
def test_detection_tells_its_own_input(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path / "in.json", name)
    assert detect_source(str(path)) == name
    cls = source_class(name)
    assert all(cls.classify(r) for r in SAMPLES[name])
    assert cls.sniff(path.read_bytes())


@pytest.mark.parametrize("name", SOURCE_NAMES)
def test_detection_does_not_claim_the_others_inputs(name: str) -> None:
    cls = source_class(name)
    for other in SOURCE_NAMES:
        if other != name:
            claimed = [r for r in SAMPLES[other] if cls.classify(r)]
            assert not claimed, f"{name} claims {other} records: {claimed}"
            assert all(classify(r) == other for r in SAMPLES[other])


@pytest.mark.parametrize("name", SOURCE_NAMES)
def test_classify_refuses_what_is_not_a_record(name: str) -> None:
    cls = source_class(name)
    for value in (None, 1, "evt.type", [], ["process_exec"], {}, {"kind": "Event"}):
        assert cls.classify(value) is False
    assert cls.sniff(b"") is False and cls.sniff(b'{"unrelated": 1}') is False
