"""Per-destination filters (min_priority, rules, tags, namespaces and their exclusions) and the OCSF
Detection Finding mapping that the JSON sinks share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from stockade.config import SinkConfig, load_config
from stockade.errors import ConfigError
from stockade.model.alert import Alert
from stockade.sinks.build import AlertFilter, build_sink, build_sinks
from stockade.sinks.memory import MemorySink
from stockade.sinks.ocsf import to_ocsf


def delivered(entry: dict[str, Any], alerts: list[Alert]) -> list[str]:
    sink = build_sink(SinkConfig(type="memory", **entry))
    for a in alerts:
        sink.emit(a)
    inner = sink.inner if isinstance(sink, AlertFilter) else sink
    assert isinstance(inner, MemorySink)
    if isinstance(sink, AlertFilter):
        assert sink.filtered == len(alerts) - len(inner.alerts)  # counted, not silently dropped
    return [a.rule for a in inner.alerts]


@pytest.fixture
def alerts(make_alert: Callable[..., Alert]) -> list[Alert]:
    def a(rule: str, priority: str, tags: list[str], ns: str | None, workload: str | None = None) -> Alert:
        fields = {"k8s.ns.name": ns} if ns else {}
        return make_alert(0, rule=rule, priority=priority, tags=tags, output_fields=fields, workload=workload)

    return [
        a("Terminal shell in container", "Notice", ["shell", "mitre_execution"], "prod"),
        a("Read sensitive file untrusted", "Warning", ["filesystem", "mitre_credential_access"], "dev"),
        a("Drift: new executable", "Critical", ["drift"], None, workload="kube-system/coredns"),
        a("Outbound connection", "Error", ["network"], None, workload=None),
    ]


@pytest.mark.parametrize(
    ("entry", "want"),
    [
        ({}, ["Terminal shell in container", "Read sensitive file untrusted", "Drift: new executable", "Outbound connection"]),
        ({"min_priority": "error"}, ["Drift: new executable", "Outbound connection"]),
        ({"rules": ["Terminal shell*", "Outbound connection"]}, ["Terminal shell in container", "Outbound connection"]),
        ({"tags": ["mitre_*"]}, ["Terminal shell in container", "Read sensitive file untrusted"]),
        ({"namespaces": ["prod", "kube-*"]}, ["Terminal shell in container", "Drift: new executable"]),
        ({"exclude_rules": ["*shell*"], "exclude_tags": ["network"]}, ["Read sensitive file untrusted", "Drift: new executable"]),
        ({"exclude_namespaces": ["dev"], "min_priority": "warning"}, ["Drift: new executable", "Outbound connection"]),
        ({"tags": ["mitre_*"], "namespaces": ["dev"]}, ["Read sensitive file untrusted"]),  # all given lists must match
    ],
)  # fmt: skip
def test_filters(entry: dict[str, Any], want: list[str], alerts: list[Alert]) -> None:
    assert delivered(entry, alerts) == want


def test_filter_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"key 'sinks.1.rules.1': expected a name or glob, not ' '"):
        build_sinks([SinkConfig(type="memory"), SinkConfig(type="memory", rules=["a", " "])])
    with pytest.raises(ConfigError, match=r"sinks\.0\.exclude_tags"):
        load_config(None, {"sinks": [{"type": "stdout", "exclude_tags": 5}]}, environ={})
    cfg = tmp_path / "c.yaml"
    cfg.write_text("sinks:\n  - type: stdout\n    namespaces: [prod]\n    exclude_rules: ['Drift*']\n")
    loaded = load_config(str(cfg), {}, environ={}).sinks[0]
    assert loaded.namespaces == ["prod"] and loaded.exclude_rules == ["Drift*"]


def test_ocsf_detection_finding(make_alert: Callable[..., Alert]) -> None:
    fields = {
        "container.id": "abc123",
        "container.name": "web",
        "container.image.repository": "nginx",
        "proc.name": "bash",
        "proc.pid": "4242",
        "proc.cmdline": "bash -i",
        "proc.pname": "nginx",
        "user.name": "root",
        "fd.name": "/etc/shadow",
        "k8s.ns.name": "prod",
        "k8s.pod.name": "web-1",
    }
    a = make_alert(
        0, priority="Critical", output_fields=fields, tags=["container", "mitre_execution", "T1059.004"]
    )
    d = to_ocsf(a)
    orjson.dumps(d)  # serialisable
    assert (d["class_uid"], d["category_uid"], d["activity_id"], d["type_uid"]) == (2004, 2, 1, 200401)
    assert (d["severity_id"], d["severity"]) == (5, "Critical")
    assert d["time"] == a.time_ns // 1_000_000
    assert d["finding_info"]["uid"] == a.id and d["finding_info"]["title"] == a.rule
    assert d["metadata"]["product"]["name"] == "Stockade" and d["metadata"]["version"].startswith("1.")
    assert {"type": "container", "uid": "abc123", "name": "web"} in d["resources"]
    assert {"type": "kubernetes pod", "name": "web-1", "namespace": "prod"} in d["resources"]
    ev = d["evidences"][0]
    assert ev["container"]["image_name"] == "nginx"
    assert ev["process"] == {
        "name": "bash",
        "cmd_line": "bash -i",
        "pid": 4242,
        "user": {"name": "root"},
        "parent_process": {"name": "nginx"},
    }
    assert ev["file"] == {"path": "/etc/shadow", "name": "shadow"}
    (attack,) = d["attacks"]
    assert attack["technique"] == {"uid": "T1059"} and attack["sub_technique"] == {"uid": "T1059.004"}
    assert attack["tactic"] == {"uid": "TA0002", "name": "Execution"}
    assert to_ocsf(make_alert(1, priority="Debug", tags=["mitre_persistence"]))["attacks"] == [
        {"tactic": {"uid": "TA0003", "name": "Persistence"}, "version": "14"}
    ]


def test_ocsf_in_the_file_and_stdout_sinks(
    tmp_path: Path, make_alert: Callable[..., Alert], capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    a = make_alert(0)
    path = tmp_path / "o.jsonl"
    sinks = build_sinks(
        [
            SinkConfig(type="file", path=str(path), options={"ocsf": True}),
            SinkConfig(type="stdout", options={"ocsf": True}),
        ]
    )
    for s in sinks:
        s.emit(a)
        s.close()
    for line in (path.read_bytes(), capfdbinary.readouterr().out):
        d = orjson.loads(line)
        assert d["class_uid"] == 2004 and d["finding_info"]["uid"] == a.id
