"""Building sinks from configuration: every type, option checks, errors naming the key."""

from __future__ import annotations

import io
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from stockade.config import SinkConfig, load_config
from stockade.errors import ConfigError
from stockade.model.alert import Alert
from stockade.sinks.file import FileSink
from stockade.sinks.registry import PriorityFilter, build_sink, build_sinks, close_all, reopen_all
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
        assert isinstance(f, PriorityFilter) and isinstance(f.inner, FileSink)
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
        ([{"type": "syslog", "address": "ftp://x"}], "sinks.0.options"),
    ],
)
def test_errors_name_the_key(entries: list[dict[str, Any]], key: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as ei:
        build_sinks([_cfg(**e) for e in entries], data_dir=str(tmp_path))
    assert f"key '{key}'" in str(ei.value)


def test_unknown_type(tmp_path: Path) -> None:
    cfg = SinkConfig.model_construct(type="kafka", format="json", min_priority="Debug", options={})
    with pytest.raises(ConfigError) as ei:
        build_sink(cfg, index=3, data_dir=str(tmp_path))  # type: ignore[arg-type]
    assert "key 'sinks.3.type'" in str(ei.value) and "kafka" in str(ei.value)


def test_automatic_names_avoid_given_ones() -> None:
    entries = [_cfg(type="stdout"), _cfg(type="stdout", options={"name": "stdout-0"})]
    sinks = build_sinks(entries)
    assert [s.name for s in sinks] == ["stdout-0-1", "stdout-0"]


def test_failed_build_closes_the_built_ones(tmp_path: Path) -> None:
    entries = [
        _cfg(type="webhook", url="http://127.0.0.1:9/", options={"trust_env": False}),
        _cfg(type="file"),
    ]
    with pytest.raises(ConfigError):
        build_sinks(entries, data_dir=str(tmp_path))
    import threading

    assert not [t for t in threading.enumerate() if t.name.startswith("stockade-sink-")]


def test_reopen_all(tmp_path: Path, make_alert: Callable[..., Alert]) -> None:
    path = tmp_path / "a.jsonl"
    sinks = build_sinks([_cfg(type="file", path=str(path)), _cfg(type="stdout")])
    sinks[1] = StdoutSink(stream=io.BytesIO())
    sinks[0].emit(make_alert(0))
    path.rename(tmp_path / "a.jsonl.1")
    reopen_all(sinks)
    sinks[0].emit(make_alert(1))
    close_all(sinks)
    assert len(path.read_bytes().splitlines()) == 1
