"""engine.pack_scope: the pack watches containers; hosts_and_containers extends it to host processes."""

from __future__ import annotations

import pytest

from stockade.config import load_config
from stockade.engine.build import build_engine
from stockade.rules.defaults import HOST_SCOPE_RULES, default_rule_paths

READ = {
    "evt.type": "openat",
    "evt.dir": "<",
    "evt.rawres": 3,
    "evt.is_open_read": True,
    "fd.typechar": "f",
    "fd.name": "/etc/shadow",
    "proc.name": "cat",
    "proc.pname": "sh",
}


@pytest.mark.parametrize(
    ("scope", "where", "fires"),
    [
        ("containers", "0123456789ab", True),
        ("containers", "host", False),
        ("hosts_and_containers", "0123456789ab", True),
        ("hosts_and_containers", "host", True),
    ],
)
def test_scope(scope: str, where: str, fires: bool) -> None:
    cfg = load_config(None, {"engine": {"falco_rules_paths": [], "pack_scope": scope}}, environ={})
    paths, _ = default_rule_paths(cfg)
    assert (str(HOST_SCOPE_RULES) in paths) is (scope == "hosts_and_containers")
    engine, _ = build_engine(cfg, None, rule_matching="all")
    alerts = engine.process_data("syscall", dict(READ, **{"container.id": where}))
    rules = {a.rule for a in alerts}
    assert ("Password Database Read in Container" in rules) is fires
    for a in alerts:
        assert a.output_fields["container.id"] == where
