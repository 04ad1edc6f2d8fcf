"""Falco JSON alerts as events, from files and from HTTP bodies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stockade.errors import SourceError
from stockade.sources.falco_json import FalcoJsonSource, parse_falco_http_body

# The shape Falco writes with json_output: true (output_fields holds every field named in the output).
SYSCALL_ALERT: dict[str, Any] = {
    "uuid": "5d3b2a7e-8e2c-4c43-9a2e-2b1e6c1f0a11",
    "output": "18:26:45.200350000: Warning Sensitive file opened for reading by non-trusted program | "
    "file=/etc/shadow gparent=runc ggparent=containerd-shim gggparent=<NA> evt_type=openat user=root "
    "user_uid=0 process=cat parent=bash command=cat /etc/shadow terminal=34816 container_id=3ad7b26ded6d",
    "priority": "Warning",
    "rule": "Read sensitive file untrusted",
    "time": "2024-11-22T18:26:45.200350000Z",
    "output_fields": {
        "container.id": "3ad7b26ded6d",
        "container.image.repository": "docker.io/library/nginx",
        "evt.time": 1732300005200350000,
        "evt.type": "openat",
        "fd.name": "/etc/shadow",
        "proc.aname[2]": "runc",
        "proc.aname[3]": "containerd-shim",
        "proc.aname[4]": None,
        "proc.cmdline": "cat /etc/shadow",
        "proc.name": "cat",
        "proc.pname": "bash",
        "proc.tty": 34816,
        "user.name": "root",
        "user.uid": 0,
        "k8s.pod.name": "<NA>",
    },
    "source": "syscall",
    "tags": ["T1555", "container", "filesystem", "host", "maturity_stable", "mitre_credential_access"],
    "hostname": "node-1",
}

K8S_ALERT: dict[str, Any] = {
    "output": "Attach/Exec to pod (user=admin pod=web-0 resource=pods ns=shop action=exec command=bash)",
    "priority": "Notice",
    "rule": "Attach/Exec Pod",
    "time": "2024-11-22T18:30:00.123456789Z",
    "output_fields": {
        "ka.user.name": "admin",
        "ka.target.name": "web-0",
        "ka.target.resource": "pods",
        "ka.target.namespace": "shop",
        "ka.target.subresource": "exec",
        "ka.uri.param[command]": "bash",
    },
    "source": "k8s_audit",
    "tags": ["k8s"],
    "hostname": "falco-7x",
}


def test_alert_lines_become_events(tmp_path: Path) -> None:
    p = tmp_path / "falco.json"
    p.write_text(json.dumps(SYSCALL_ALERT) + "\n\n" + json.dumps(K8S_ALERT) + "\n")
    src = FalcoJsonSource(str(p))
    events = list(src.events())
    assert src.stats.events == 2 and src.stats.malformed == 0
    e, k = events
    assert e.source == "syscall" and e.origin == f"{p}:1"
    assert e.data["fd.name"] == "/etc/shadow" and e.data["proc.aname[3]"] == "containerd-shim"
    assert e.data["evt.time"] == 1732300005200350000
    # fields Falco printed as missing are missing
    assert "proc.aname[4]" not in e.data and "k8s.pod.name" not in e.data
    assert e.data["evt.hostname"] == "node-1"
    assert e.meta is not None and k.meta is not None
    assert e.meta["falco_alert"]["rule"] == "Read sensitive file untrusted"
    assert e.meta["falco_alert"]["tags"][0] == "T1555"
    assert k.source == "k8s_audit" and k.origin == f"{p}:3"
    assert k.data["ka.uri.param[command]"] == "bash"
    assert k.data["evt.time"] == 1732300200123456789  # parsed from "time"
    assert k.meta["falco_alert"]["priority"] == "Notice"


def test_malformed_alert_lines_counted(tmp_path: Path) -> None:
    p = tmp_path / "falco.json"
    p.write_text(
        "\n".join(
            [
                json.dumps(SYSCALL_ALERT),
                "{broken",
                json.dumps({"rule": "x"}),
                json.dumps({"evt.type": "execve"}),
                json.dumps({**SYSCALL_ALERT, "output_fields": [1]}),
                json.dumps(K8S_ALERT),
            ]
        )
    )
    src = FalcoJsonSource(str(p))
    assert [(e.meta or {})["falco_alert"]["rule"] for e in src.events()] == [
        SYSCALL_ALERT["rule"],
        K8S_ALERT["rule"],
    ]
    assert src.stats.malformed == 4
    assert [err.split(": ", 1)[0] for err in src.stats.errors] == [f"{p}:{n}" for n in (2, 3, 4, 5)]
    assert "no output" in src.stats.errors[1]
    assert src.stats.errors[2] == f"{p}:4: a syscall recording, not a Falco alert (use --source syscall)"


def test_time_only_alert_and_missing_source() -> None:
    import io

    alert = {"rule": "R", "priority": "Debug", "output": "o", "time": "2024-01-01T00:00:00Z"}
    src = FalcoJsonSource(io.BytesIO(json.dumps(alert).encode()), name_hint="falco-stdin")
    (e,) = list(src.events())
    assert e.source == "syscall" and e.data == {"evt.time": 1704067200000000000}
    assert e.origin == "falco-stdin:1"


@pytest.mark.parametrize("ctype", [None, "application/json", "application/json; charset=utf-8"])
def test_http_body_single_object(ctype: str | None) -> None:
    body = json.dumps(SYSCALL_ALERT).encode()
    assert parse_falco_http_body(body, ctype) == [SYSCALL_ALERT]


def test_http_body_array_and_ndjson() -> None:
    arr = json.dumps([SYSCALL_ALERT, K8S_ALERT]).encode()
    assert [a["rule"] for a in parse_falco_http_body(arr, "application/json")] == [
        SYSCALL_ALERT["rule"],
        K8S_ALERT["rule"],
    ]
    nd = (json.dumps(SYSCALL_ALERT) + "\n" + json.dumps(K8S_ALERT) + "\n").encode()
    assert len(parse_falco_http_body(nd, "application/x-ndjson")) == 2
    # JSON Lines without a telling content type
    assert len(parse_falco_http_body(nd, "application/json")) == 2
    assert len(parse_falco_http_body(nd, None)) == 2


def test_http_body_errors() -> None:
    with pytest.raises(SourceError, match="empty body"):
        parse_falco_http_body(b"  \n", None)
    with pytest.raises(SourceError, match="not JSON"):
        parse_falco_http_body(b"{nope", "application/json")
    with pytest.raises(SourceError, match="item 1: not a Falco alert"):
        parse_falco_http_body(json.dumps([SYSCALL_ALERT, {"foo": 1}]).encode(), None)
    with pytest.raises(SourceError, match="line 2: not JSON"):
        parse_falco_http_body((json.dumps(SYSCALL_ALERT) + "\n{x\n").encode(), "application/x-ndjson")
    with pytest.raises(SourceError, match="line 2: expected a Falco alert object"):
        parse_falco_http_body((json.dumps(K8S_ALERT) + "\n[1]\n").encode(), None)
