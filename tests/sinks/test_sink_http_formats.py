"""What each HTTP sink sends, read by a real receiver on 127.0.0.1: Splunk HEC events and token,
Elasticsearch _bulk create actions (with per-item answers: 409 delivered, 429 retried, 400
refused), Slack Block Kit, a Teams Adaptive Card, PagerDuty events (dedup_key, severity), the
webhook's Idempotency-Key and its OCSF option."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from helpers import free_port
from sinks.receivers import NETWORK_SINKS, ElasticReceiver, HttpReceiver
from stockade.config import SinkConfig
from stockade.errors import ConfigError
from stockade.model.alert import Alert
from stockade.sinks.build import build_sink
from stockade.sinks.delivery import Outcome
from stockade.sinks.elasticsearch import bulk_outcome
from stockade.sinks.interface import Sink
from stockade.sinks.outbox import DEAD_LETTER, OutboxSink
from stockade.sinks.pagerduty import pagerduty_severity


@pytest.fixture
def started() -> Iterator[list[Any]]:
    receivers: list[Any] = []
    yield receivers
    for r in receivers:
        r.stop()


def run(
    kind: str,
    tmp_path: Path,
    alerts: list[Alert],
    started: list[Any],
    receiver: Any = None,
    **options: Any,
) -> tuple[Any, Sink]:
    """Start `kind`'s receiver (or use the given one), send `alerts` through a sink built from its
    entry (plus `options`), wait for delivery."""
    net = NETWORK_SINKS[kind]
    if receiver is None:
        receiver = net.start(free_port())
    started.append(receiver)
    entry = net.entry(receiver.port)
    fast = {"trust_env": False, "backoff_initial_s": 0.01, "backoff_max_s": 0.02}
    entry["options"] = {**entry.get("options", {}), **fast, **options}
    sink = build_sink(SinkConfig(type=kind, **entry), data_dir=tmp_path)
    assert isinstance(sink, OutboxSink)
    try:
        for a in alerts:
            sink.emit(a)
        assert sink.drain(10)
    finally:
        sink.close()
    return receiver, sink


def test_splunk_hec(tmp_path: Path, make_alert: Callable[..., Alert], started: list[Any]) -> None:
    alerts = [make_alert(i) for i in range(5)]
    r, sink = run(
        "splunk_hec", tmp_path, alerts, started, index="security", sourcetype="falco:alert", batch_max=2
    )
    assert [p for p, _, _ in r.requests] == ["/services/collector/event"] * 3  # batches of 2, 2, 1
    assert r.requests[0][1]["Authorization"] == "Splunk t0ken"
    events = [orjson.loads(x) for b in r.bodies() for x in b.splitlines()]
    assert [e["event"]["stockade"]["id"] for e in events] == [a.id for a in alerts]
    e = events[0]
    assert e["index"] == "security" and e["sourcetype"] == "falco:alert" and e["source"] == "stockade"
    assert e["host"] == "node-1" and e["time"] == pytest.approx(alerts[0].time_ns / 1e9)
    assert sink.stats.sent == 5


def test_splunk_hec_needs_a_token(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"key 'sinks.0.options.token': a splunk_hec sink needs a token"):
        build_sink(SinkConfig(type="splunk_hec", url="http://127.0.0.1:1"), data_dir=tmp_path)


def test_elasticsearch_bulk_items(
    tmp_path: Path, make_alert: Callable[..., Alert], started: list[Any]
) -> None:
    """Item answers are read: a 429 item retries its batch (the items already created answer 409
    then, which counts as delivered: nothing is indexed twice), a 400 item is that alert refused
    (dead letter), though the HTTP status of every answer is 200."""
    es = ElasticReceiver(free_port())
    alerts = [make_alert(i) for i in range(5)]
    ids = [a.id for a in alerts]
    es.item_script = {ids[1]: [429], ids[3]: [400] * 10}
    _, sink = run(
        "elasticsearch",
        tmp_path,
        alerts,
        started,
        receiver=es,
        batch_max=4,
        index="alerts-%Y.%m",
        api_key="a2V5",
    )
    assert sorted(es.order) == sorted([ids[0], ids[1], ids[2], ids[4]]) and len(es.order) == 4
    assert (sink.stats.sent, sink.stats.failed, sink.stats.dropped) == (4, 1, 0)
    assert [s for i, s in es.item_answers if i == ids[1]] == [429, 201]
    path, headers, body = es.requests[0]
    assert path == "/_bulk" and headers["Content-Type"] == "application/x-ndjson"
    assert headers["Authorization"] == "ApiKey a2V5"
    assert orjson.loads(body.splitlines()[0]) == {"create": {"_index": "alerts-2024.11", "_id": ids[0]}}
    dead = [
        orjson.loads(x)
        for x in (tmp_path / "spool" / "elasticsearch" / DEAD_LETTER).read_bytes().splitlines()
    ]
    assert [d["alert"][0]["create"]["_id"] for d in dead] == [ids[3]]


def test_bulk_outcome_reads_every_item() -> None:
    def answer(*statuses: int) -> Outcome:
        items = [{"create": {"status": s}} for s in statuses]
        return bulk_outcome(httpx.Response(200, content=orjson.dumps({"errors": True, "items": items})))

    assert answer(201, 409, 201) == Outcome("delivered")  # a repeat of a created one: delivered
    assert answer(201, 400, 409).rejected_items == (1,)
    assert answer(201, 503, 400).verdict == "retry"  # retried whole; 201s answer 409 next time
    assert bulk_outcome(httpx.Response(200, content=b"<html>")).verdict == "retry"


def test_elasticsearch_basic_auth_and_ocsf(
    tmp_path: Path, make_alert: Callable[..., Alert], started: list[Any]
) -> None:
    es = ElasticReceiver(free_port())
    a = make_alert(0)
    run("elasticsearch", tmp_path, [a], started, receiver=es, username="elastic", password="pw", ocsf=True)
    assert es.requests[0][1]["Authorization"].startswith("Basic ")
    doc = es.docs[a.id]
    assert doc["class_uid"] == 2004 and doc["finding_info"]["uid"] == a.id


def test_slack_block_kit(tmp_path: Path, make_alert: Callable[..., Alert], started: list[Any]) -> None:
    a = make_alert(
        0, output="x <script> & y", output_fields={"container.id": "abc123def4567", "k8s.ns.name": "prod"}
    )
    r, _ = run("slack", tmp_path, [a], started, username="stockade")
    msg = orjson.loads(r.bodies()[0])
    assert msg["username"] == "stockade"
    assert msg["blocks"][0] == {"type": "header", "text": {"type": "plain_text", "text": a.rule}}
    fields = [f["text"] for f in msg["blocks"][1]["fields"]]
    assert "*Priority*\n:warning: Warning" in fields and "*Namespace*\nprod" in fields
    assert "*Container*\nabc123def456" in fields
    assert msg["blocks"][2]["text"]["text"] == "```x &lt;script&gt; &amp; y```"
    assert a.rule in msg["text"]


def test_teams_adaptive_card(tmp_path: Path, make_alert: Callable[..., Alert], started: list[Any]) -> None:
    a = make_alert(0, priority="Critical")
    r, _ = run("teams", tmp_path, [a], started)
    msg = orjson.loads(r.bodies()[0])
    assert msg["type"] == "message"
    att = msg["attachments"][0]
    assert att["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = att["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["body"][0]["text"] == a.rule and card["body"][0]["color"] == "attention"
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Priority"] == "Critical" and facts["Alert id"] == a.id and facts["Container"] == "abc123"
    assert card["body"][2]["text"] == a.output


def test_pagerduty_event(tmp_path: Path, make_alert: Callable[..., Alert], started: list[Any]) -> None:
    plain = make_alert(0, priority="Error")
    grouped = [make_alert(i, extra={"incident": {"id": "inc-7"}}) for i in (1, 2)]
    r, sink = run("pagerduty", tmp_path, [plain, *grouped], started)
    events = [orjson.loads(b) for b in r.bodies()]
    assert [e["dedup_key"] for e in events] == [plain.id, "inc-7", "inc-7"]  # one PD incident per incident
    e = events[0]
    assert e["routing_key"] == "R0" and e["event_action"] == "trigger"
    p = e["payload"]
    assert p["severity"] == "error" and p["source"] == "node-1" and p["class"] == plain.rule
    assert p["summary"].startswith("[Error] Terminal shell in container: ")
    assert p["custom_details"]["stockade"]["id"] == plain.id
    assert r.requests[0][0] == "/v2/enqueue" and sink.stats.sent == 3


def test_pagerduty_severity_and_bad_answer(
    tmp_path: Path, make_alert: Callable[..., Alert], started: list[Any]
) -> None:
    sev = {p: pagerduty_severity(p) for p in ("Emergency", "Critical", "Error", "Warning", "Notice", "Debug")}
    assert sev == {
        "Emergency": "critical",
        "Critical": "critical",
        "Error": "error",
        "Warning": "warning",
        "Notice": "info",
        "Debug": "info",
    }
    r = HttpReceiver(free_port())
    r.script = [(400, {})]  # an invalid event: not retried, kept in the dead letter
    _, sink = run("pagerduty", tmp_path, [make_alert(0)], started, receiver=r)
    assert (sink.stats.sent, sink.stats.failed) == (0, 1)
    assert (tmp_path / "spool" / "pagerduty" / DEAD_LETTER).exists()


def test_webhook_idempotency_key_and_ocsf(
    tmp_path: Path, make_alert: Callable[..., Alert], started: list[Any]
) -> None:
    r = HttpReceiver(free_port())
    r.script = [(503, {}), (200, {})]  # the retry carries the same key
    a = make_alert(0)
    run("webhook", tmp_path, [a], started, receiver=r, ocsf=True)
    keys = [h["Idempotency-Key"] for _, h, _ in r.requests]
    assert keys == [a.id, a.id]
    doc = orjson.loads(r.bodies()[0])
    assert doc["class_uid"] == 2004 and doc["finding_info"]["uid"] == a.id


def test_http_sinks_need_a_url(tmp_path: Path) -> None:
    for kind in ("splunk_hec", "elasticsearch", "slack", "teams"):
        with pytest.raises(ConfigError, match=rf"key 'sinks.0.url': a {kind} sink needs a url"):
            build_sink(
                SinkConfig(type=kind, options={"token": "t"} if kind == "splunk_hec" else {}),
                data_dir=tmp_path,
            )
    with pytest.raises(ConfigError, match=r"key 'sinks.0.url': slack url must start with http"):
        build_sink(SinkConfig(type="slack", url="ftp://x"), data_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"key 'sinks.0.options.routing_key'"):
        build_sink(SinkConfig(type="pagerduty"), data_dir=tmp_path)
