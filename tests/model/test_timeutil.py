"""One RFC 3339 parser, two modes: strict for what users and event formats give, lenient for the
times container runtimes write (Go's format); one definition of an event's time."""

from __future__ import annotations

from typing import Any

import pytest

from stockade.model.event import Event
from stockade.model.fields import lookup
from stockade.model.timeutil import event_time_ns, parse_runtime_time_ns, parse_time_ns

S = 1_000_000_000
#: 2026-11-23T08:23:13Z
T = 1_795_422_193 * S


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2026-11-23T08:23:13Z", T),
        ("2026-11-23t08:23:13z", T),
        ("2026-11-23 08:23:13", T),
        ("  2026-11-23T08:23:13.5Z\n", T + S // 2),
        ("2026-11-23T08:23:13.188262341Z", T + 188_262_341),
        ("2026-11-23T09:23:13+01:00", T),
        ("2026-11-23T02:53:13.000000001-0530", T + 1),
        ("0001-01-01T00:00:00Z", -62_135_596_800 * S),
    ],
)
def test_both_modes_read_an_rfc3339_time(text: str, ns: int) -> None:
    assert parse_time_ns(text) == ns
    assert parse_runtime_time_ns(text) == (None if text.startswith("0001") else ns)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        # podman / Go: more than nine fraction digits are cut, text after the time is ignored
        ("2026-11-23T08:23:13.1882623419999Z", T + 188_262_341),
        ("2026-11-23T09:23:13.188262341+01:00 +0100 CET m=+0.12", T + 188_262_341),
        ("2026-11-23T08:23:13Zjunk", T),
    ],
)
def test_only_the_lenient_mode_reads_runtime_metadata_times(text: str, ns: int) -> None:
    assert parse_runtime_time_ns(text) == ns
    assert parse_time_ns(text) is None


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00Z",  # Go's zero time: unknown
        "yesterday",
        "",
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-11-23T24:00:00Z",
        None,
        1_795_422_193,
    ],
)
def test_the_lenient_mode_gives_none_for_what_is_not_a_known_time(value: object) -> None:
    assert parse_runtime_time_ns(value) is None


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "2026-11-23",
        "2026-11-23T08:23",
        "2026-11-23T08:23:13.",
        "2026-11-23T08:23:13+01",
        "2026-13-01T00:00:00Z",
    ],
)
def test_the_strict_mode_rejects_what_is_not_a_whole_time(text: str) -> None:
    assert parse_time_ns(text) is None


@pytest.mark.parametrize(
    ("data", "ns"),
    [
        ({"evt.time": T, "evt.rawtime": 5}, T),
        ({"evt.rawtime": T}, T),
        ({"evt.time": "2026-11-23T08:23:13Z", "evt.rawtime": T}, T),
        ({"evt.time": True}, None),
        ({"evt.time": 1.5}, None),
        ({"stageTimestamp": "2026-11-23T08:23:13Z"}, None),
        ({}, None),
    ],
)
def test_a_syscall_event_s_time_is_its_integer_evt_time_or_rawtime(
    data: dict[str, Any], ns: int | None
) -> None:
    assert event_time_ns(data) == ns
    assert event_time_ns(data, "syscall") == ns
    assert Event("syscall", data).time_ns == ns


@pytest.mark.parametrize(
    ("data", "ns"),
    [
        (
            {
                "stageTimestamp": "2026-11-23T08:23:13.5Z",
                "requestReceivedTimestamp": "2026-11-23T08:23:13Z",
                "evt.time": 7,
            },
            T + S // 2,
        ),
        ({"stageTimestamp": "soon", "requestReceivedTimestamp": "2026-11-23T08:23:13Z"}, T),
        ({"timestamp": "2026-11-23T08:23:13Z"}, T),
        ({"stageTimestamp": 12, "evt.time": T}, T),
        ({"evt.rawtime": T}, None),
        ({}, None),
    ],
)
def test_an_audit_event_s_time_is_its_first_readable_timestamp(data: dict[str, Any], ns: int | None) -> None:
    assert event_time_ns(data, "k8s_audit") == ns
    assert Event("k8s_audit", data).time_ns == ns


def test_the_time_fields_read_the_event_s_time() -> None:
    audit = {"stageTimestamp": "2026-11-23T08:23:13Z"}
    fields = {
        name: spec.extractor(None)
        for name in ("evt.time", "evt.rawtime", "jevt.rawtime")
        if (spec := lookup(name)) is not None
    }
    assert fields["evt.time"]({"evt.rawtime": T}) == T
    assert fields["evt.rawtime"]({"evt.time": T}) == T
    assert fields["jevt.rawtime"](audit) == str(T)
