"""Building sinks from configuration: every type, option checks, errors naming the key."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from stockade.config import SinkConfig, load_config
from stockade.errors import ConfigError
from stockade.model.alert import Alert
from stockade.sinks.build import AlertFilter, build_sink, build_sinks, close_all, reopen_all
from stockade.sinks.file import FileSink
from stockade.sinks.memory import MemorySink
from stockade.sinks.registry import SINKS
from stockade.sinks.stdout import StdoutSink
from stockade.sinks.syslog import SyslogSink
from stockade.sinks.webhook import WebhookSink


def test_builds_every_type_from_a_config_file(tmp_path: Path, make_alert: Callable[..., Alert]) -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.settimeout(5)
    cfg_file = tmp_path / "stockade.yaml"
    cfg_file.write_text(
        f"""
data_dir: {tmp_path / "data"}
sinks:
  - type: stdout
    format: text
  - type: file
    path: {tmp_path / "out" / "alerts.jsonl"}
    min_priority: warning
    options: {{max_bytes: 10MiB, backups: 3, fsync: never}}
  - type: syslog
    address: udp://127.0.0.1:{udp.getsockname()[1]}
    options: {{facility: local0, hostname: null}}
  - type: webhook
    url: http://127.0.0.1:9/
    options: {{queue_size: 10, timeout_s: 500ms, headers: {{Authorization: Bearer x}}, trust_env: false}}
  - type: webhook
    url: http://127.0.0.1:9/other
"""
    )
    cfg = load_config(cfg_file, environ={})
    sinks = build_sinks(cfg.sinks, data_dir=cfg.data_dir)
    try:
        assert [s.name for s in sinks] == ["stdout", "file", "syslog", "webhook-3", "webhook-4"]
        assert isinstance(sinks[0], StdoutSink) and sinks[0].format == "text"
        f = sinks[1]
        assert isinstance(f, AlertFilter) and isinstance(f.inner, FileSink)
        assert (f.inner.max_bytes, f.inner.backups, f.inner.fsync) == (10 * 1024 * 1024, 3, "never")
        assert isinstance(sinks[2], SyslogSink) and sinks[2].facility == 16
        w = sinks[3]
        assert isinstance(w, WebhookSink)
        assert w.spool_dir == tmp_path / "data" / "spool" / "webhook-3"
        assert w.queue_size == 10
        # min_priority: Notice is below Warning, not written
        f.emit(make_alert(0, priority="Notice"))
        f.emit(make_alert(1, priority="Error"))
        sinks[2].emit(make_alert(2))
        assert b"stockade@32473" in udp.recv(65535)
    finally:
        assert close_all(sinks) == []
        udp.close()
    lines = (tmp_path / "out" / "alerts.jsonl").read_bytes().splitlines()
    assert [orjson.loads(x)["priority"] for x in lines] == ["Error"]
    assert f.stats.sent == 1  # the filter shares the wrapped sink's stats


def _cfg(**kw: Any) -> SinkConfig:
    return SinkConfig(**kw)


@pytest.mark.parametrize(
    ("entries", "key"),
    [
        ([{"type": "stdout"}, {"type": "file"}], "sinks.1.path"),
        ([{"type": "webhook"}], "sinks.0.url"),
        ([{"type": "file", "path": "/tmp/x", "options": {"max_bytes": "lots"}}], "sinks.0.options.max_bytes"),
        ([{"type": "file", "path": "/tmp/x", "options": {"rotate": 1}}], "sinks.0.options.rotate"),
        ([{"type": "stdout", "options": {"buffered": "yes"}}], "sinks.0.options.buffered"),
        ([{"type": "stdout", "min_priority": "loud"}], "sinks.0.min_priority"),
        (
            [{"type": "stdout", "options": {"name": "out"}}, {"type": "stdout", "options": {"name": "out"}}],
            "sinks.1.options.name",
        ),
        ([{"type": "stdout", "options": {"name": "a b"}}], "sinks.0.options.name"),
        ([{"type": "stdout", "name": "a/b"}], "sinks.0.name"),
        ([{"type": "stdout", "name": "x"}, {"type": "memory", "name": "x"}], "sinks.1.name"),
        ([{"type": "syslog", "address": "ftp://x"}], "sinks.0.address"),
        ([{"type": "webhook", "url": "ftp://x"}], "sinks.0.url"),
        ([{"type": "syslog", "options": {"facility": "nope"}}], "sinks.0.options.facility"),
        (
            [{"type": "webhook", "url": "http://x/", "options": {"queue_size": 0}}],
            "sinks.0.options.queue_size",
        ),
        ([{"type": "webhook", "url": "http://x/", "options": {"headers": ["a"]}}], "sinks.0.options.headers"),
        ([{"type": "file", "path": "/tmp/x", "options": {"mode": "rw"}}], "sinks.0.options.mode"),
        ([{"type": "memory", "options": {"max_alerts": "many"}}], "sinks.0.options.max_alerts"),
    ],
)
def test_errors_name_the_key(entries: list[dict[str, Any]], key: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as ei:
        build_sinks([_cfg(**e) for e in entries], data_dir=str(tmp_path))
    assert f"key '{key}'" in str(ei.value)


def test_error_messages_are_the_documented_ones(tmp_path: Path) -> None:
    """docs/sinks.md quotes these: the key, what was expected and what was given."""
    cases: list[tuple[dict[str, Any], str, str]] = [
        (
            {"type": "file", "path": "/x", "options": {"max_bytes": "lots"}},
            "options.max_bytes",
            "expected a size like 10485760 or '10MiB', not 'lots'",
        ),
        (
            {"type": "file", "path": "/x", "options": {"rotate": 1}},
            "options.rotate",
            "unknown option for a file sink (known: backups, buffer_bytes, fsync, fsync_interval_s, "
            "max_bytes, mode, name, ocsf)",
        ),
        (
            {"type": "stdout", "options": {"buffered": "yes"}},
            "options.buffered",
            "expected true or false, not 'yes'",
        ),
        (
            {"type": "file", "path": "/x", "options": {"fsync_interval_s": "soon"}},
            "options.fsync_interval_s",
            "expected a duration like 5, '500ms' or '30s', not 'soon'",
        ),
        ({"type": "file"}, "path", "a file sink needs a path"),
        ({"type": "stdout", "min_priority": "loud"}, "min_priority", "unknown priority 'loud'"),
    ]
    for entry, key, message in cases:
        with pytest.raises(ConfigError) as ei:
            build_sink(_cfg(**entry), index=1, data_dir=tmp_path)
        assert str(ei.value).startswith(f"key 'sinks.1.{key}': {message}"), str(ei.value)


def test_options_take_every_documented_form(tmp_path: Path) -> None:
    entry = _cfg(
        type="file",
        path=str(tmp_path / "a.jsonl"),
        options={
            "max_bytes": "1.5KiB",
            "backups": 2,
            "fsync": "never",
            "fsync_interval_s": "500ms",
            "mode": "0640",
            "buffer_bytes": "2kB",
            "name": "audit",
        },
    )
    sink = build_sink(entry, data_dir=tmp_path)
    assert isinstance(sink, FileSink)
    try:
        assert (sink.name, sink.max_bytes, sink.backups, sink.fsync) == ("audit", 1536, 2, "never")
        assert (sink.fsync_interval_s, sink.mode, sink.buffer_bytes) == (0.5, 0o640, 2000)
    finally:
        sink.close()
    null = build_sink(_cfg(type="file", path=str(tmp_path / "b.jsonl"), options={"max_bytes": None}))
    try:
        assert isinstance(null, FileSink) and null.max_bytes == 100 << 20  # null: the default
    finally:
        null.close()


def test_unknown_type(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as ei:
        load_config(None, {"sinks": [{"type": "kafka"}]}, environ={})
    assert (
        "key 'sinks.0.type': unknown sink 'kafka' (known: stdout, file, syslog, webhook, memory, splunk_hec, elasticsearch, slack, teams, email, pagerduty)"
        in str(ei.value)
    )
    # an entry made without validation still fails with the key
    cfg = SinkConfig.model_construct(type="kafka", format="json", min_priority="Debug", options={})
    with pytest.raises(ConfigError) as ei:
        build_sink(cfg, index=3, data_dir=str(tmp_path))
    assert "key 'sinks.3.type'" in str(ei.value) and "kafka" in str(ei.value)


def test_automatic_names_avoid_given_ones() -> None:
    entries = [_cfg(type="stdout"), _cfg(type="stdout", options={"name": "stdout-0"})]
    sinks = build_sinks(entries)
    assert [s.name for s in sinks] == ["stdout-0-1", "stdout-0"]
    named = build_sinks([_cfg(type="memory", name="audit"), _cfg(type="memory")])
    assert [s.name for s in named] == ["audit", "memory-1"]  # the entry's `name` key names it too


def test_failed_build_closes_the_built_ones(tmp_path: Path) -> None:
    entries = [
        _cfg(type="webhook", url="http://127.0.0.1:9/", options={"trust_env": False}),
        _cfg(type="file"),
    ]
    with pytest.raises(ConfigError):
        build_sinks(entries, data_dir=str(tmp_path))
    assert not [t for t in threading.enumerate() if t.name.startswith("stockade-sink-")]


def test_reopen_all(tmp_path: Path, make_alert: Callable[..., Alert]) -> None:
    path = tmp_path / "a.jsonl"
    sinks = build_sinks(
        [
            _cfg(type="file", path=str(path)),
            _cfg(type="file", path=str(path) + ".w", min_priority="warning"),
            _cfg(type="memory"),
        ]
    )
    for s in sinks:
        s.emit(make_alert(0))
    path.rename(tmp_path / "a.jsonl.1")
    (tmp_path / "a.jsonl.w").rename(tmp_path / "a.jsonl.w.1")
    reopen_all(sinks)  # the memory sink has no file: left alone; the filter passes it on
    for s in sinks:
        s.emit(make_alert(1))
    assert close_all(sinks) == []
    assert len(path.read_bytes().splitlines()) == 1
    assert len((tmp_path / "a.jsonl.w").read_bytes().splitlines()) == 1
    memory = sinks[2]
    assert isinstance(memory, MemorySink) and len(memory.alerts) == 2


def test_every_sinks_documented_example_is_valid() -> None:
    """The first YAML example of each sink's section of docs/sinks.md is a valid entry of that type."""
    text = (Path(__file__).parents[2] / "docs" / "sinks.md").read_text()
    for kind in SINKS.names():
        section = re.search(rf"^## {kind}\n(.*?)(?=^## )", text, re.S | re.M)
        assert section, f"docs/sinks.md has no section for the {kind} sink"
        block = re.search(r"```yaml\n(.*?)```", section.group(1), re.S)
        assert block, f"docs/sinks.md shows no example of the {kind} sink"
        (entry,) = yaml.safe_load(block.group(1))
        cfg = SinkConfig(**entry)
        assert cfg.type == kind
        plugin = SINKS.load(kind)
        plugin.Options.model_validate({k: v for k, v in cfg.options.items() if v is not None})
