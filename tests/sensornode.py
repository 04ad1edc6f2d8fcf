"""A node for tests: the native sensor (eBPF here) with Stockade's whole rule pack, keeping its
alerts (tests/sensor's and tests/attacks' fixtures run one)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from containers import FACT_FIELDS
from helpers import Collector
from stockade.config import DEFAULT_APPEND_OUTPUT, load_config
from stockade.engine.build import build_engine
from stockade.model.alert import Alert
from stockade.rules.defaults import HOST_SCOPE_RULES, builtin_rule_files
from stockade.runtime.pipeline import Pipeline
from stockade.runtime.sensing import SensorRunner

# -- a node: the native sensor and Stockade's rules ----------------------------------------------


class Node:
    """The sensor (backend ``auto``), Stockade's pack (every file of rules/builtin, in order),
    extended to the host (rules/extras/hosts.yaml) unless `host_scope` is False, with
    `rule_matching` (``all`` by default; ``first`` is what users run), the default append_output
    (ancestry and image in every alert) and a pipeline that keeps the alerts."""

    def __init__(
        self,
        watch: list[str],
        backend: str = "auto",
        before: list[str] | None = None,
        *,
        rule_matching: str = "all",
        host_scope: bool = True,
    ) -> None:
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
        pack = [*(before or []), *(str(p) for p in builtin_rule_files())]
        if host_scope:
            pack.append(str(HOST_SCOPE_RULES))
        self.engine, _ = build_engine(cfg, pack, rule_matching=rule_matching)
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
