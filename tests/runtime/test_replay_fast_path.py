"""The pipeline's batch path (JSON Lines data in batches, an Event only for the events that alert)
gives exactly what handling each event gives: the same alerts in the same order, the same stored
events with the same origins (file:line), the same counts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from stockade.engine import Engine
from stockade.model.alert import Alert
from stockade.model.event import Event
from stockade.rules.defaults import builtin_rule_files
from stockade.runtime.pipeline import Pipeline
from stockade.sinks.memory import MemorySink
from stockade.sources.interface import SourceStats
from stockade.sources.jsonl import BATCH_EVENTS, JsonlSource

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "recordings" / "shell_in_container.jsonl"


class _Store:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.alerts: list[Alert] = []

    def add_events(self, events: list[Event]) -> None:
        self.events.extend(events)

    def add_alerts(self, alerts: list[Alert]) -> None:
        self.alerts.extend(alerts)


class _EventsOnly:
    """The same source without data_batches: the pipeline handles its events one by one."""

    def __init__(self, inner: JsonlSource) -> None:
        self.inner = inner
        self.name = inner.name

    @property
    def stats(self) -> SourceStats:
        return self.inner.stats

    def events(self) -> Iterator[Event]:
        return self.inner.events()


def _recording(tmp_path: Path) -> Path:
    """The sample recording's events 40 times over (later copies later in time), with blank,
    malformed and foreign lines scattered so that batches hold skipped lines and cross chunks."""
    lines = SAMPLE.read_bytes().splitlines()
    header, events = lines[0], [orjson.loads(x) for x in lines[1:] if x.strip()]
    out = [header]
    for k in range(40):
        for j, ev in enumerate(events):
            ev = dict(ev, **{"evt.time": ev["evt.time"] + k * 60_000_000_000})
            out.append(orjson.dumps(ev))
            if (k * 7 + j) % 23 == 0:
                out.append(b"")
            if (k * 5 + j) % 31 == 0:
                out.append(b'{"evt.type": broken')
            if (k + j) % 37 == 0:
                out.append(b'{"no": "type"}')
    path = tmp_path / "rec.jsonl"
    path.write_bytes(b"\n".join(out) + b"\n")
    return path


def _run(engine: Engine, source: Any, window: float) -> tuple[list[dict[str, Any]], list[Any], Pipeline]:
    sink = MemorySink()
    store = _Store()
    pipe = Pipeline(engine, [sink], store=store, aggregate_window_s=window)
    pipe.run(source)
    pipe.close()
    by_id = {e.id: e for e in store.events}
    alerts = []
    assert sink.stats.dropped == 0
    for a in sink.alerts:
        d = a.to_falco_json()
        for k in ("uuid", "stockade"):
            d.pop(k, None)
        # the event an alert points at, by what it is (ids are random)
        d["events"] = [(by_id[i].origin, by_id[i].data) for i in a.event_ids]
        d["count"] = a.count
        alerts.append(d)
    stored = [(e.origin, e.data) for e in store.events]
    return alerts, stored, pipe


@pytest.mark.parametrize("matching", ["first", "all"])
@pytest.mark.parametrize("window", [0.0, 300.0])
def test_batch_path_is_the_per_event_path(
    tmp_path: Path, falco_rules_path: Path, matching: str, window: float
) -> None:
    rec = _recording(tmp_path)
    rules = [str(falco_rules_path), *map(str, builtin_rule_files())]
    fast_engine = Engine.from_files(rules, rule_matching=matching, hostname="h")
    fast_engine.process = None  # type: ignore[assignment,method-assign]  # the batch path must not need it
    fast_src = JsonlSource(str(rec))
    fast = _run(fast_engine, fast_src, window)
    slow_src = JsonlSource(str(rec))
    slow = _run(Engine.from_files(rules, rule_matching=matching, hostname="h"), _EventsOnly(slow_src), window)
    assert fast[0] == slow[0]
    assert fast[1] == slow[1]
    assert sum(a["count"] for a in fast[0]) >= 80  # two rules fire on each copy of the sample
    assert len({origin for origin, _ in fast[1]}) == len(fast[1])
    assert fast_src.stats == slow_src.stats
    assert fast_src.stats.events == 400 and fast_src.stats.malformed > 20
    assert fast[2].stats.events == slow[2].stats.events == 400
    assert fast[2].stats.alerts == slow[2].stats.alerts
    assert fast[2].engine.stats.to_dict() == slow[2].engine.stats.to_dict()
    assert 3 * BATCH_EVENTS < 400  # the recording spans several batches


def test_batch_origins_are_the_lines(tmp_path: Path) -> None:
    """Each event of a batch knows its line, whatever lines were skipped before it."""
    lines = []
    expect = []
    for n in range(1, 301):
        if n % 7 == 0:
            lines.append(b"")
        elif n % 11 == 0:
            lines.append(b"[1, 2]")
        else:
            lines.append(orjson.dumps({"evt.type": "close", "n": n}))
            expect.append((f"rec.jsonl:{n}", n))
    path = tmp_path / "rec.jsonl"
    path.write_bytes(b"\n".join(lines))
    src = JsonlSource(str(path), name_hint="rec.jsonl")
    got = [(b.origin(i), d["n"]) for b in src.data_batches() for i, d in enumerate(b.datas)]
    assert got == expect
    assert src.stats.events == len(expect)
    assert [(e.origin, e.data["n"]) for e in JsonlSource(str(path), name_hint="rec.jsonl").events()] == expect
