"""Burst aggregation, the pipeline stage between the engine and the sinks: first alert at once,
repeats counted, nothing dropped."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from stockade.model.alert import Alert
from stockade.model.timeutil import format_time_ns
from stockade.runtime.stages.aggregate import Aggregator

S = 1_000_000_000
#: 2024-11-22T18:13:20.123456789Z
T0 = 1_732_299_200_123_456_789


@pytest.fixture
def make_alert() -> Callable[..., Alert]:
    """Alerts as the engine raises them; `n` makes another output (another kind of alert)."""

    def make(n: int = 0, **kw: Any) -> Alert:
        rule, out = "Terminal shell in container", f"A shell was spawned in a container (n={n})"
        base: dict[str, Any] = {"time_ns": T0 + n * 1000, "rule": rule, "priority": "Warning", "output": out}
        base |= {"output_fields": {"proc.name": "bash", "n": n}, "source": "syscall", "tags": ["shell"]}
        return Alert(**(base | {"hostname": "node-1", "event_ids": [f"ev-{n}"]} | kw))

    return make


def collect(window_s: float = 10.0) -> tuple[Aggregator, list[Alert]]:
    out: list[Alert] = []
    return Aggregator(window_s, out.append), out


def test_first_at_once_repeats_at_window_end(make_alert: Callable[..., Alert]) -> None:
    agg, out = collect(10)
    a = make_alert(0)
    agg.process(a)
    assert out == [a]  # not delayed
    reps = [make_alert(0, time_ns=a.time_ns + i * S) for i in range(1, 6)]
    for r in reps:
        agg.process(r)
    assert len(out) == 1
    agg.tick(a.time_ns + 9 * S)
    assert len(out) == 1
    agg.tick(a.time_ns + 10 * S)
    assert len(out) == 2
    g = out[1]
    assert g.count == 5
    assert g.rule == a.rule and g.output == a.output
    assert g.extra["first_time"] == format_time_ns(reps[0].time_ns)
    assert g.extra["last_time"] == format_time_ns(reps[-1].time_ns)
    assert g.event_ids == [f"ev-{0}"] * 5
    assert g.id not in {a.id} | {r.id for r in reps}
    assert g.to_falco_json()["stockade"]["count"] == 5


def test_different_alerts_are_not_merged(make_alert: Callable[..., Alert]) -> None:
    agg, out = collect(10)
    agg.process(make_alert(0))
    agg.process(make_alert(1))  # other output text
    agg.process(make_alert(0, rule="Other rule"))
    agg.process(make_alert(0, hostname="node-2"))
    assert len(out) == 4
    agg.flush()
    assert len(out) == 4  # no repeats: nothing more


def test_time_fields_do_not_make_alerts_unique(make_alert: Callable[..., Alert]) -> None:
    agg, out = collect(10)
    for i in range(5):
        t = make_alert(0).time_ns + i
        fields = {"evt.time": t, "proc.name": "bash", "evt.num": i}
        agg.process(make_alert(0, time_ns=t, output=f"{t} shell", output_fields=fields))
    agg.process(make_alert(0, output="x", output_fields={"evt.time": 1, "proc.name": "sh"}))
    agg.flush()
    assert [a.count for a in out] == [1, 1, 4]


def test_steady_stream_one_alert_per_window(make_alert: Callable[..., Alert]) -> None:
    agg, out = collect(10)
    t0 = make_alert(0).time_ns
    for i in range(100):  # one a second for 100 s
        agg.process(make_alert(0, time_ns=t0 + i * S))
    agg.flush()
    assert out[0].count == 1
    assert sum(a.count for a in out) == 100
    assert len(out) == 11  # the first, then one per 10 s window
    # after a quiet period the next one is again passed on at once
    agg.process(make_alert(0, time_ns=t0 + 1000 * S))
    assert out[-1].count == 1 and len(out) == 12


def test_windows_close_on_later_alerts_without_tick(make_alert: Callable[..., Alert]) -> None:
    agg, out = collect(1)
    t0 = make_alert(0).time_ns
    agg.process(make_alert(0, time_ns=t0))
    agg.process(make_alert(0, time_ns=t0 + 1))
    agg.process(make_alert(5, time_ns=t0 + 5 * S))  # replay: alert time moves the clock
    assert [a.count for a in out] == [1, 1, 1]
    assert out[1].output == out[0].output


def test_burst_nothing_dropped(make_alert: Callable[..., Alert]) -> None:
    rng = random.Random(7)
    agg, out = collect(2)
    t0 = make_alert(0).time_ns
    sent: Counter[str] = Counter()
    templates = [make_alert(k) for k in range(50)]
    t = t0
    for i in range(100_000):
        t += rng.randrange(0, 100_000)  # ~20 s in all
        k = 0 if i % 2 else rng.randrange(50)  # half identical, half of 50 kinds
        tpl = templates[k]
        a = Alert(
            t, tpl.rule, tpl.priority, tpl.output, tpl.output_fields, tpl.source, tpl.tags, tpl.hostname
        )
        sent[a.output] += 1
        agg.process(a)
        if i % 1000 == 0:
            agg.tick(t)
    agg.flush()
    got: Counter[str] = Counter()
    for a in out:
        got[a.output] += a.count
    assert got == sent
    assert sum(a.count for a in out) == 100_000
    assert len(out) < 2000
    assert agg.open_windows() == 0
    assert agg.stats.received == 100_000 and agg.stats.passed == len(out)


def test_incoming_counts_are_kept(make_alert: Callable[..., Alert]) -> None:
    agg, out = collect(10)
    agg.process(make_alert(0, count=3))
    agg.process(make_alert(0, count=4))
    agg.flush()
    assert [a.count for a in out] == [3, 4]


def test_window_zero_passes_through(make_alert: Callable[..., Alert]) -> None:
    agg, out = collect(0)
    for _ in range(3):
        agg.process(make_alert(0))
    assert [a.count for a in out] == [1, 1, 1]


def test_max_windows_closes_oldest_early(make_alert: Callable[..., Alert]) -> None:
    out: list[Alert] = []
    agg = Aggregator(60, out.append, max_windows=10)
    t0 = make_alert(0).time_ns
    agg.process(make_alert(0, time_ns=t0))
    agg.process(make_alert(0, time_ns=t0 + 1))  # a repeat, pending
    for k in range(1, 11):
        agg.process(make_alert(k, time_ns=t0 + 2 + k))
    assert agg.open_windows() == 10
    assert [a.count for a in out if a.output == out[0].output] == [1, 1]  # closed early, not lost
