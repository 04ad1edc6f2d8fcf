"""The sensor tests' node fixtures: the native sensor with Stockade's rules (the container fixtures
they use are in tests/containers.py, registered for every directory by tests/conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from containers import FACT_FIELDS, _need_root
from helpers import Collector
from stockade.config import DEFAULT_APPEND_OUTPUT, load_config
from stockade.engine.build import build_engine
from stockade.model.alert import Alert
from stockade.rules.defaults import HOST_SCOPE_RULES, builtin_rule_files
from stockade.runtime.pipeline import Pipeline
from stockade.runtime.sensing import SensorRunner

# -- a node: the native sensor and Stockade's rules ----------------------------------------------


class Node:
    """The sensor (backend ``auto``), Stockade's pack extended to the host (rules/extras/hosts.yaml)
    with rule_matching ``all``, the default append_output (ancestry and image in every alert) and a
    pipeline that keeps the alerts."""

    def __init__(self, watch: list[str], backend: str = "auto", before: list[str] | None = None) -> None:
        # every syscall alert also carries the process's facts, which the tests check
        facts = {"match": {"source": "syscall"}, "extra_fields": list(FACT_FIELDS)}
        append = [a.model_dump() for a in DEFAULT_APPEND_OUTPUT] + [facts]
        cfg = load_config(
            None,
            {
                "sensor": {"backend": backend, "watch_paths": watch},
                "engine": {"falco_rules_paths": [], "append_output": append},
            },
            environ={},
        )
        pack = [*(before or []), *(str(p) for p in builtin_rule_files()), str(HOST_SCOPE_RULES)]
        self.engine, _ = build_engine(cfg, pack, rule_matching="all")
        self.collected = Collector()
        self.alerts = self.collected.alerts
        self.pipeline = Pipeline(self.engine, [self.collected.sink])
        self.sensor = SensorRunner(cfg, self.pipeline, self.engine.evttypes("syscall"))

    def diagnosis(self) -> str:
        """What the container resolver has seen: for failure messages."""
        e = self.sensor.enricher
        if e is None:
            return "no enricher"
        return f"resolver {dict(e.resolver.stats)}; podman errors {e.resolver.podman.errors[-3:]}"

    def mark(self) -> int:
        """Where the alerts raised from now on start (for `wait_for(since=...)`)."""
        return self.collected.mark()

    def wait_for(
        self,
        pred: Callable[[Alert], bool],
        timeout: float = 30.0,
        again: Callable[[], Any] | None = None,
        since: int = 0,
        retry_s: float = 10.0,
    ) -> Alert:
        """The first alert from index `since` on matching `pred`; `again` repeats the behaviour every
        `retry_s` meanwhile (on this shared machine a burst elsewhere can make the kernel drop a
        message: counted, tested elsewhere)."""
        return self.collected.wait_for(pred, timeout, since=since, again=again, retry_s=retry_s)


def _running_node(
    tmp_path_factory: pytest.TempPathFactory, backend: str, before: list[str] | None = None
) -> Iterator[Node]:
    _need_root()
    n = Node([str(tmp_path_factory.mktemp("watched"))], backend, before)
    n.sensor.start()
    ebpf = n.sensor.backends.get("ebpf")
    if ebpf is not None:
        # the rule families run with every kernel filter on: failed calls and paths no rule reads
        assert ebpf.dropping_failed and {"open", "openat"} <= set(ebpf.dropping_paths), ebpf.dropping_paths
    time.sleep(0.5)
    try:
        yield n
    finally:
        n.sensor.close()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """One running sensor (backend auto: eBPF here) for a test module (tests tell their alerts apart
    by container id and mark)."""
    yield from _running_node(tmp_path_factory, "auto")


@pytest.fixture(scope="module")
def fallback_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    """The same with the fallback sensors (proc connector, fanotify, conntrack)."""
    yield from _running_node(tmp_path_factory, "fallback")


@pytest.fixture(scope="module")
def falco_node(tmp_path_factory: pytest.TempPathFactory, falco_rules_path: Path) -> Iterator[Node]:
    """Backend auto with Falco's stable rules loaded before the pack (as `stockade up` does)."""
    yield from _running_node(tmp_path_factory, "auto", [str(falco_rules_path)])
