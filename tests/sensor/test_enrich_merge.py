"""Enrichment's merge: the native one (``_merge.c``) gives the same dict as the pure-Python one, the
same items in the same order, private keys removed wherever they come from; and an enricher using
either gives the same events."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import need
from stockade.sensor import enrich
from stockade.sensor.enrich import Enricher, merge
from stockade.sensor.interface import PRIVATE_KEYS

key = st.one_of(
    st.sampled_from(["evt.type", "proc.name", "proc.pid", "container.id", "user.uid", "fd.name", "_", ""]),
    st.sampled_from(PRIVATE_KEYS),
    st.text(max_size=8),
)
value = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.booleans())
part = st.dictionaries(key, value, max_size=12)


def _native_merge() -> Any:
    m = enrich._native_merge
    return need(m, "the native merge is not built (scripts/build-native.sh)")


@settings(max_examples=400, deadline=None)
@given(part, part, part)
def test_the_native_merge_gives_the_same_dict(
    base: dict[str, Any], fields: dict[str, Any], raw: dict[str, Any]
) -> None:
    m = _native_merge()
    want = merge(base, fields, raw)
    got = m(base, fields, raw, frozenset(PRIVATE_KEYS))
    assert list(got.items()) == list(want.items())
    assert not set(got) & set(PRIVATE_KEYS)


def _events() -> list[dict[str, Any]]:
    me = os.getpid()
    common = {"_cgroup_id": 1, "_mntns": 4026531840, "_pidns": 4026531836, "_start_ns": 1}
    return [
        {
            "evt.type": "execve",
            "proc.pid": 5_000_001,
            "proc.ppid": me,
            "proc.name": "sh",
            "proc.exepath": "/bin/sh",
            "proc.args": "-c x",
            "evt.rawres": 0,
            "_cgroup_path": "/",
            **common,
        },
        {"evt.type": "clone", "proc.pid": 5_000_001, "evt.rawres": 5_000_002, **common},
        {
            "evt.type": "openat",
            "proc.pid": 5_000_002,
            "proc.ppid": 5_000_001,
            "fd.name": "/etc/shadow",
            **common,
        },
        {
            "evt.type": "openat",
            "proc.pid": me,
            "fd.name": "/etc/hosts",
            "user.uid": 0,
            "group.gid": 0,
            **common,
        },
        {"evt.type": "connect", "proc.pid": 5_000_002, "proc.aname": ["sh"], "fd.name": "a->b", **common},
        {"evt.type": "procexit", "proc.pid": 5_000_002, **common},
    ]


def test_an_enricher_gives_the_same_events_either_way() -> None:
    _native_merge()
    py = Enricher(native_merge=False)
    c = Enricher()
    assert c._native_merge is not None
    for raw in _events():
        a, b = py.enrich(dict(raw)), c.enrich(dict(raw))
        assert list(b.items()) == list(a.items())
        assert not [k for k in b if k.startswith("_")]
