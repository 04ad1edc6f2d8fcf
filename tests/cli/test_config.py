"""Configuration: file, then environment, then flags; errors name the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockade.config import load_config
from stockade.errors import ConfigError


def test_file_then_env_then_overrides(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("api:\n  port: 9000\nengine:\n  rule_matching: all\n")
    cfg = load_config(p, environ={})
    assert cfg.api.port == 9000 and cfg.engine.rule_matching == "all"
    cfg = load_config(p, environ={"STOCKADE_API__PORT": "9100"})
    assert cfg.api.port == 9100
    cfg = load_config(p, overrides={"api": {"port": 9200}}, environ={"STOCKADE_API__PORT": "9100"})
    assert cfg.api.port == 9200


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("api:\n  port: 99999\n", "api.port"),
        ("engine:\n  rule_matching: sometimes\n", "engine.rule_matching"),
        ("bogus: 1\n", "bogus"),
        ("sinks:\n  - type: pigeon\n", "sinks.0.type"),
    ],
)
def test_errors_name_the_key_and_file(tmp_path: Path, text: str, key: str) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as ei:
        load_config(p, environ={})
    assert f"key '{key}'" in str(ei.value) and str(p) in str(ei.value)


def test_broken_yaml_names_line(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("api:\n  port: [1\n")
    with pytest.raises(ConfigError) as ei:
        load_config(p, environ={})
    assert f"{p}:" in str(ei.value) and "invalid YAML" in str(ei.value)


def test_env_error_names_key() -> None:
    with pytest.raises(ConfigError) as ei:
        load_config(None, environ={"STOCKADE_API__PORT": "many"})
    assert "key 'api.port'" in str(ei.value)
