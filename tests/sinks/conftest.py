"""Fixtures for the sink tests: alerts to send."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from stockade.model.alert import Alert

#: 2024-11-22T18:13:20.123456789Z
T0 = 1_732_299_200_123_456_789


def _make_alert(n: int = 0, **kw: Any) -> Alert:
    fields = {"proc.name": "bash", "container.id": "abc123", "user.name": "root", "n": n}
    base: dict[str, Any] = {
        "time_ns": T0 + n * 1000,
        "rule": "Terminal shell in container",
        "priority": "Warning",
        "output": f"A shell was spawned in a container (user=root proc=bash n={n})",
        "output_fields": fields,
        "source": "syscall",
        "tags": ["container", "shell", "mitre_execution"],
        "hostname": "node-1",
        "workload": "default/web",
        "event_ids": [f"ev-{n}"],
    }
    base.update(kw)
    return Alert(**base)


@pytest.fixture
def make_alert() -> Callable[..., Alert]:
    return _make_alert
