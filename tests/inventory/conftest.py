"""Inventory test fixtures: a containers-storage tree with two images (one whose config is missing)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

IMG = "a" * 64
BAD = "b" * 64


@pytest.fixture
def image_store(tmp_path: Path) -> Path:
    """A containers-storage root (overlay driver) holding images IMG (config, two layers) and BAD."""
    root = tmp_path / "storage"
    _store(root)
    return root


def _store(root: Path) -> None:
    images = root / "overlay-images"
    (images / IMG).mkdir(parents=True)
    (images / BAD).mkdir()
    config = {
        "created": "2026-12-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/bin", "DB_PASSWORD=hunter2"],
            "Entrypoint": ["/srv/app"],
            "Cmd": ["--port", "8080"],
            "User": "app",
            "ExposedPorts": {"8080/tcp": {}},
            "Labels": {"org.opencontainers.image.version": "1.2"},
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64, "sha256:" + "2" * 64]},
    }
    name = "=" + base64.b64encode(f"sha256:{IMG}".encode()).decode()
    (images / IMG / name).write_text(json.dumps(config))
    (images / "images.json").write_text(
        json.dumps(
            [
                {"id": IMG, "digest": "sha256:" + "d" * 64, "names": ["localhost/app:1.2"], "layer": "L2"},
                {"id": BAD, "names": [], "layer": "L1"},
            ]
        )
    )
    layers = root / "overlay-layers"
    layers.mkdir()
    (layers / "layers.json").write_text(
        json.dumps([{"id": "L1", "diff-size": 1000}, {"id": "L2", "parent": "L1", "diff-size": 24}])
    )
