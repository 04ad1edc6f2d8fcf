"""The k8s_audit source: audit logs as the API server writes them (JSON Lines, EventList documents),
the audit webhook body, malformed input counted with its location."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import SHARED_DATA, need_file
from stockade.engine import Engine
from stockade.errors import SourceError
from stockade.model.fields import lookup
from stockade.model.timeutil import parse_time_ns
from stockade.sources.detect import detect_source
from stockade.sources.interface import SourceStats
from stockade.sources.k8s_audit import K8sAuditSource, parse_audit_webhook_body
from stockade.sources.registry import open_source

REPO = Path(__file__).resolve().parents[2]
SHARED_AUDIT = SHARED_DATA / "k8s" / "audit" / "demo.log"
GOLDEN = REPO / "tests" / "data" / "k8s_audit" / "golden"


def _event(n: int, **extra: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": f"00000000-0000-4000-8000-{n:012d}",
        "stage": "ResponseComplete",
        "requestURI": f"/api/v1/namespaces/default/configmaps/cm-{n}",
        "verb": "get",
        "user": {"username": "kubernetes-admin", "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.7"],
        "objectRef": {
            "resource": "configmaps",
            "namespace": "default",
            "name": f"cm-{n}",
            "apiVersion": "v1",
        },
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": f"2026-11-20T10:00:{n:02d}.000100Z",
        "stageTimestamp": f"2026-11-20T10:00:{n:02d}.002300Z",
    }
    ev.update(extra)
    return ev


def _event_list(*items: Any) -> dict[str, Any]:
    return {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": list(items)}


def _read(path: Path | str) -> tuple[list[Any], SourceStats]:
    src = K8sAuditSource(str(path))
    events = list(src.events())
    return events, src.stats


def test_real_audit_log_json_lines() -> None:
    need_file(SHARED_AUDIT)
    events, stats = _read(SHARED_AUDIT)
    n_lines = sum(1 for line in SHARED_AUDIT.read_text().splitlines() if line.strip())
    assert len(events) == n_lines == stats.events
    assert stats.malformed == 0
    assert events[0].source == "k8s_audit"
    assert events[0].origin == f"{SHARED_AUDIT}:1"
    assert events[-1].origin == f"{SHARED_AUDIT}:{n_lines}"
    # the log has only the old "timestamp": normalised to v1's stageTimestamp
    first = events[0].data
    assert first["stageTimestamp"] == first["timestamp"] == "2017-09-11T19:55:05Z"
    assert events[0].time_ns == parse_time_ns("2017-09-11T19:55:05Z")


def test_pretty_printed_event_list_gives_each_item_its_line(tmp_path: Path) -> None:
    f = tmp_path / "audit.json"
    f.write_text(json.dumps(_event_list(_event(1), _event(2), _event(3)), indent=2) + "\n")
    events, stats = _read(f)
    assert stats.malformed == 0
    assert [e.data["auditID"][-1] for e in events] == ["1", "2", "3"]
    lines = f.read_text().splitlines()
    for e in events:
        line_no = int(e.origin.rsplit(":", 1)[1])
        # the item's opening brace is on that line, and its auditID a few lines below
        assert lines[line_no - 1].strip() == "{"
        assert any(e.data["auditID"] in x for x in lines[line_no : line_no + 6])


def test_pretty_printed_array_of_events(tmp_path: Path) -> None:
    f = tmp_path / "audit.json"
    f.write_text(json.dumps([_event(1), _event(2)], indent=4))
    events, stats = _read(f)
    assert (len(events), stats.malformed) == (2, 0)
    assert events[0].origin == f"{f}:2"


def test_json_lines_of_event_lists_and_compact_list(tmp_path: Path) -> None:
    f = tmp_path / "batches.jsonl"
    f.write_text(
        json.dumps(_event_list(_event(1), _event(2)))
        + "\n\n"
        + json.dumps(_event_list(_event(3)))
        + "\n"
        + json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}})
        + "\n"
        + json.dumps(_event(4))
        + "\n"
    )
    events, stats = _read(f)
    assert stats.malformed == 0
    assert [e.origin for e in events] == [f"{f}:1", f"{f}:1", f"{f}:3", f"{f}:5"]


def test_malformed_records_are_counted_with_their_line(tmp_path: Path) -> None:
    bad_time = _event(5, stageTimestamp="yesterday")
    no_time = _event(6)
    del no_time["stageTimestamp"], no_time["requestReceivedTimestamp"]
    no_id = _event(7)
    del no_id["auditID"]
    falco_alert = {"time": "2026-11-20T10:00:00Z", "rule": "x", "priority": "Warning", "output": "x"}
    lines = [
        json.dumps(_event(1)),
        '{"kind": "Event", "auditID": ',  # truncated
        json.dumps([1, 2]),
        json.dumps(falco_alert),
        json.dumps(bad_time),
        json.dumps(no_time),
        json.dumps(no_id),
        json.dumps(_event(8, kind="Policy")),
        json.dumps(_event(9, verb=["get"])),
        json.dumps(_event_list(_event(10), "oops")),
        json.dumps({"kind": "EventList", "items": {"a": 1}}),
        json.dumps(_event(11)),
    ]
    f = tmp_path / "mixed.jsonl"
    f.write_text("\n".join(lines) + "\n")
    events, stats = _read(f)
    assert [e.data["auditID"][-2:] for e in events] == ["01", "10", "11"]
    assert stats.events == 3
    assert stats.malformed == 11  # the array on line 3 is two bad items
    errs = "\n".join(stats.errors)
    assert f"{f}:2: not JSON" in errs
    assert f"{f}:3: item 0: expected an audit.k8s.io Event object, got a number" in errs
    assert f"{f}:4: a Falco alert, not a Kubernetes audit event (use --source falco)" in errs
    assert f"{f}:5: stageTimestamp 'yesterday' is not an RFC 3339 time" in errs
    assert f"{f}:6: no stageTimestamp" in errs
    assert f"{f}:7: not an audit event: no auditID" in errs
    assert f"{f}:8: not an audit event (kind 'Policy'" in errs
    assert f"{f}:9: verb is an array, expected a string" in errs
    assert f"{f}:10: item 1: expected an audit.k8s.io Event object, got a string" in errs
    assert f"{f}:11: EventList items is an object, expected an array" in errs


def test_broken_pretty_document_is_one_error_at_its_line(tmp_path: Path) -> None:
    text = json.dumps(_event_list(_event(1), _event(2)), indent=2)
    lines = text.splitlines()
    lines[12] = lines[12] + " garbage"
    f = tmp_path / "broken.json"
    f.write_text("\n".join(lines))
    events, stats = _read(f)
    assert events == []
    assert stats.malformed == 1
    assert stats.errors[0].startswith(f"{f}:13: not JSON")


def test_json_lines_with_a_broken_first_line_reads_the_rest(tmp_path: Path) -> None:
    f = tmp_path / "audit.log"
    f.write_text(
        '{"kind":"Event","auditID":"trunc\n' + json.dumps(_event(2)) + "\n" + json.dumps(_event(3)) + "\n"
    )
    events, stats = _read(f)
    assert [e.origin for e in events] == [f"{f}:2", f"{f}:3"]
    assert stats.malformed == 1 and stats.errors[0].startswith(f"{f}:1: not JSON")


def test_older_api_versions_are_normalised(tmp_path: Path) -> None:
    v1beta1 = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1beta1",
        "metadata": {"creationTimestamp": "2019-03-01T12:00:00Z"},
        "level": "Metadata",
        "timestamp": "2019-03-01T12:00:00Z",
        "auditID": "b1",
        "stage": "ResponseComplete",
        "requestURI": "/apis/apps/v1/namespaces/default/deployments",
        "verb": "create",
        "user": {"username": "alice", "groups": ["dev"]},
        "objectRef": {
            "resource": "deployments",
            "namespace": "default",
            "apiGroup": "apps",
            "apiVersion": "v1",
        },
        "responseStatus": {"metadata": {}, "code": 201},
        "requestReceivedTimestamp": "2019-03-01T11:59:59.990000Z",
    }
    v1alpha1 = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1alpha1",
        "timestamp": "2018-01-01T00:00:00Z",
        "auditID": "a1",
        "stage": "ResponseComplete",
        "requestURI": "/apis/apps/v1beta1/namespaces/x/deployments/d",
        "verb": "delete",
        "user": {"username": "bob"},
        "objectRef": {"resource": "deployments", "namespace": "x", "name": "d", "apiVersion": "apps/v1beta1"},
    }
    f = tmp_path / "old.jsonl"
    f.write_text(json.dumps(v1beta1) + "\n" + json.dumps(v1alpha1) + "\n")
    events, stats = _read(f)
    assert stats.malformed == 0
    beta, alpha = (e.data for e in events)
    assert beta["stageTimestamp"] == "2019-03-01T12:00:00Z"
    assert beta["requestReceivedTimestamp"] == "2019-03-01T11:59:59.990000Z"  # kept
    assert alpha["objectRef"]["apiGroup"] == "apps" and alpha["objectRef"]["apiVersion"] == "v1beta1"
    assert lookup("jevt.rawtime").extractor(None)(alpha) == str(parse_time_ns("2018-01-01T00:00:00Z"))  # type: ignore[union-attr]


def test_gzip_stream_and_name_hint(tmp_path: Path) -> None:
    payload = (json.dumps(_event(1)) + "\n" + json.dumps(_event(2)) + "\n").encode()
    gz = tmp_path / "audit.log.gz"
    gz.write_bytes(gzip.compress(payload))
    events, stats = _read(gz)
    assert len(events) == 2 and stats.malformed == 0
    src = K8sAuditSource(io.BytesIO(payload), name_hint="kube-apiserver")
    assert [e.origin for e in src.events()] == ["kube-apiserver:1", "kube-apiserver:2"]


def test_registry_and_detection(tmp_path: Path) -> None:
    f = tmp_path / "audit.json"
    f.write_text(json.dumps(_event_list(_event(1)), indent=2))
    assert detect_source(f) == "k8s_audit"
    assert detect_source(GOLDEN / "privileged-pod.jsonl") == "k8s_audit"
    src = open_source("k8s_audit", str(f))
    assert src.name == "k8s_audit"
    assert len(list(src.events())) == 1


# --- webhook ------------------------------------------------------------------------------------


def test_webhook_event_list() -> None:
    body = json.dumps(_event_list(_event(1), _event(2))).encode()
    items = parse_audit_webhook_body(body)
    assert [i["auditID"][-1] for i in items] == ["1", "2"]


def test_webhook_single_event_array_and_json_lines() -> None:
    assert len(parse_audit_webhook_body(json.dumps(_event(1)).encode())) == 1
    assert len(parse_audit_webhook_body(json.dumps([_event(1), _event(2)]).encode())) == 2
    jl = (json.dumps(_event(1)) + "\n" + json.dumps(_event_list(_event(2), _event(3))) + "\n").encode()
    assert len(parse_audit_webhook_body(jl)) == 3
    assert parse_audit_webhook_body(json.dumps(_event_list()).encode()) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty body"),
        (b"   \n", "empty body"),
        (b"hello", "body is not JSON"),
        (b"<html>502 Bad Gateway</html>", "body is not JSON"),
        (b'{"kind": "EventList", "items": ', "body is not JSON"),
        (b'{"kind": "Policy", "apiVersion": "audit.k8s.io/v1"}', "not an audit event (kind 'Policy'"),
        (b'{"hello": "world"}', "no auditID"),
        (b"42", "expected an audit.k8s.io Event object, got a number"),
        (b'{"rule": "r", "priority": "Warning", "output": "o"}', "a Falco alert"),
    ],
)
def test_webhook_garbage_is_a_source_error(body: bytes, message: str) -> None:
    with pytest.raises(SourceError) as exc:
        parse_audit_webhook_body(body)
    assert message in str(exc.value)


def test_webhook_partly_bad_batch() -> None:
    body = json.dumps(_event_list(_event(1), {"kind": "Event", "verb": "get"}, _event(3))).encode()
    with pytest.raises(SourceError) as exc:
        parse_audit_webhook_body(body)
    assert "body item 1: not an audit event: no auditID" in str(exc.value)
    stats = SourceStats()
    items = parse_audit_webhook_body(body, stats)
    assert [i["auditID"][-1] for i in items] == ["1", "3"]
    assert (stats.events, stats.malformed) == (2, 1)
    assert stats.errors == ["body item 1: not an audit event: no auditID"]


# --- end to end ---------------------------------------------------------------------------------


def test_replay_cli_on_a_golden_file(k8s_audit_rules_path: Path) -> None:
    """`stockade replay` reads the golden files as a user would (a real subprocess)."""
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "stockade"),
            "replay",
            "--rules",
            str(k8s_audit_rules_path),
            "--output",
            "json",
            "--rule-matching",
            "all",
            str(GOLDEN / "nodeport-service.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "STOCKADE_CONFIG": ""},
    )
    assert proc.returncode == 0, proc.stderr
    alerts = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert sorted(a["rule"] for a in alerts) == [
        "Create NodePort Service",
        "K8s Service Created",
        "K8s Service Created",
    ]
    assert all(a["source"] == "k8s_audit" for a in alerts)
    assert "replayed 2 events" in proc.stderr


def test_webhook_sample_reads_the_same_from_a_file_and_a_body(k8s_audit_rules_path: Path) -> None:
    sample = REPO / "tests" / "data" / "k8s_audit" / "webhook-eventlist.json"
    events, stats = _read(sample)
    assert stats.malformed == 0 and len(events) == 4
    body_items = parse_audit_webhook_body(sample.read_bytes())
    assert [e.data for e in events] == body_items
    lines = sample.read_text().splitlines()
    for e in events:
        n = int(e.origin.rsplit(":", 1)[1])
        assert lines[n - 1] == "    {"  # each item's origin is the line its object starts on
    engine = Engine.from_files([k8s_audit_rules_path], rule_matching="all")
    fired = [sorted(a.rule for a in engine.process(e)) for e in events]
    assert fired == [
        ["Attach/Exec Pod"],
        ["Create Privileged Pod"],
        ["K8s Secret Get Successfully"],
        [],
    ]
