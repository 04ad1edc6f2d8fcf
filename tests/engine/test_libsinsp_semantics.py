"""Condition semantics as libsinsp has them, checked against Debian's sysdig 0.29.3 reading Falco's
test captures (falcosecurity/falco history, test/trace_files/cat_write.scap, connect_localhost.scap)
with `sysdig -r F.scap -p "*%evt.num ..." FILTER`; scripts/sysdig_oracle.py redoes the comparison.
The events here are written by hand with the fields a sensor records; the expected results are what
sysdig printed for the same kind of event (or, where a capture had none, what libsinsp's code does,
said so on the case)."""

from __future__ import annotations

from typing import Any

import pytest

from stockade.engine import Engine
from stockade.model.event import Event
from stockade.model.fields import lookup
from stockade.rules.loader import check_rules


def _rule(condition: str) -> str:
    return f"- rule: r\n  desc: d\n  condition: {condition}\n  output: o %evt.num\n  priority: INFO\n"


@pytest.mark.parametrize(
    ("condition", "sysdig_says"),
    [
        ("evt.type = open and proc.pid = 1.5", "1.5 is not a valid number"),
        ("evt.type = open and proc.pid > 1.5", "1.5 is not a valid number"),
        ("evt.type = open and proc.pid contains 1", "'contains' not supported for numeric filters"),
        ("evt.type = open and proc.pid startswith 1", "'startswith' not supported for numeric filters"),
        ("evt.type = open and proc.pid pmatch (1)", "pmatch requires all charbuf arguments"),
        ("evt.type = open and proc.pid glob 1*", "1* is not a valid number"),
        ("evt.type = open and evt.is_open_read = yes", "unrecognized boolean value yes"),
        ("evt.type = open and evt.is_open_read = 1", "unrecognized boolean value 1"),
        ("evt.type = open and evt.is_open_read contains t", "unrecognized boolean value t"),
    ],
)
def test_filters_libsinsp_refuses_are_refused_at_load(condition: str, sysdig_says: str) -> None:
    rs = check_rules([("f.yaml", _rule(condition))])
    assert [p.code for p in rs.errors] == ["LOAD_ERR_COMPILE_CONDITION"], (sysdig_says, rs.problems)


@pytest.mark.parametrize(
    "condition",
    [
        "evt.type = open and evt.is_open_read = true",
        "evt.type = open and evt.is_open_read in (true)",
        "evt.type = open and evt.failed = false",
        "evt.type = open and proc.pid > 1",
        "evt.type = open and proc.pid in (1, 2)",
    ],
)
def test_filters_libsinsp_accepts_load(condition: str) -> None:
    rs = check_rules([("f.yaml", _rule(condition))])
    assert rs.errors == []


def _matches(condition: str, events: list[dict[str, Any]]) -> list[int]:
    e = Engine.from_files([("f.yaml", _rule(condition))], rule_matching="all")
    out = []
    for i, data in enumerate(events, 1):
        if e.process(Event("syscall", {"evt.num": i, **data})):
            out.append(i)
    return out


def test_evt_res_is_missing_on_events_without_a_result() -> None:
    # sysdig on cat_write.scap: `evt.res endswith SUCCESS` matches the exit events of calls that
    # succeeded only; enter events and procexit have res=<NA>. switch and signaldeliver carry no
    # result either (libsinsp's sinsp_evt::has_return_value()).
    events: list[dict[str, Any]] = [
        {"evt.type": "open", "evt.dir": ">", "fd.name": "/etc/ld.so.cache"},  # 1 enter
        {"evt.type": "open", "evt.dir": "<", "fd.name": "/etc/ld.so.cache", "evt.rawres": 3},  # 2
        {"evt.type": "procexit", "evt.dir": ">"},  # 3
        {"evt.type": "procexit"},  # 4 (a recording without a direction)
        {"evt.type": "signaldeliver"},  # 5
        {"evt.type": "switch"},  # 6
        {"evt.type": "close", "evt.dir": "<"},  # 7 an exit recorded without its result: it succeeded
        {"evt.type": "access", "evt.dir": "<", "evt.res": "ENOENT", "evt.rawres": -2},  # 8
    ]
    cond = "evt.type in (open, procexit, signaldeliver, switch, close, access) and evt.res endswith SUCCESS"
    assert _matches(cond, events) == [2, 7]
    assert _matches("evt.type in (procexit, signaldeliver, switch) and evt.rawres exists", events) == []


@pytest.mark.parametrize(
    ("fields", "directory", "fd_type"),
    [
        # sysdig, cat_write.scap: open and read of files
        ({"evt.type": "open", "fd.name": "/etc/ld.so.cache"}, "/etc", "file"),
        ({"evt.type": "read", "fd.name": "/dev/null", "fd.typechar": "f"}, "/dev", "file"),
        # sysdig, connect_localhost.scap: sockets have no directory
        ({"evt.type": "connect", "fd.name": "127.0.0.1:47192->127.0.0.1:80"}, None, "ipv4"),
        ({"evt.type": "connect", "fd.name": "/run/docker.sock", "fd.typechar": "u"}, None, "unix"),
        ({"evt.type": "read", "fd.name": "pipe:[12]", "fd.type": "pipe"}, None, "pipe"),
        # libsinsp's code (no capture had them): O_DIRECTORY opens a directory, whose directory is
        # itself; a file name ending in '/' is kept; one directly under / has "/"
        (
            {"evt.type": "openat", "fd.name": "/etc", "evt.arg.flags": "O_RDONLY|O_DIRECTORY"},
            "/etc",
            "directory",
        ),
        ({"evt.type": "openat", "fd.name": "/tmp/"}, "/tmp/", "file"),
        ({"evt.type": "openat", "fd.name": "/x"}, "/", "file"),
    ],
)
def test_fd_directory_and_type_follow_libsinsp(
    fields: dict[str, Any], directory: str | None, fd_type: str
) -> None:
    spec_dir, spec_type = lookup("fd.directory"), lookup("fd.type")
    assert spec_dir is not None and spec_type is not None
    assert spec_dir.extractor(None)(fields) == directory
    assert spec_type.extractor(None)(fields) == fd_type
    # and through a compiled rule
    cond = f"evt.type = {fields['evt.type']} and fd.directory exists"
    assert _matches(cond, [fields]) == ([1] if directory is not None else [])


def test_is_open_read_is_false_on_other_events_and_failed_follows_the_result() -> None:
    # libsinsp (and sysdig on open-multiple-files.scap): evt.is_open_read is false, not missing, on
    # every event but an open's exit, so `evt.is_open_read != true` matches them; evt.failed is
    # derived from the result, missing where there is none.
    events: list[dict[str, Any]] = [
        {"evt.type": "close", "evt.dir": "<", "evt.rawres": 0},  # 1
        {"evt.type": "openat", "evt.dir": "<", "evt.rawres": 3, "evt.arg.flags": "O_RDONLY"},  # 2
        {"evt.type": "openat", "evt.dir": "<", "evt.rawres": -2, "evt.arg.flags": "O_WRONLY"},  # 3
        {"evt.type": "procexit"},  # 4
    ]
    types = "evt.type in (close, openat, procexit)"
    assert _matches(f"{types} and evt.is_open_read != true", events) == [1, 3, 4]
    assert _matches(f"{types} and evt.failed = true", events) == [3]
    assert _matches(f"{types} and evt.failed = false", events) == [1, 2]
