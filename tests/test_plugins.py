"""The shared registry: lazy import, clear errors for unknown and missing plugins."""

import pytest

from stockade.plugins import PluginError, Registry


def test_registry_loads_lazily_and_names_what_it_knows() -> None:
    reg = Registry[object]("widget", {"ordered": "collections:OrderedDict", "gone": "no_such_mod:X"})
    assert reg.names() == ("ordered", "gone") and "ordered" in reg and len(reg) == 2
    import collections

    assert reg.load("ordered") is collections.OrderedDict
    with pytest.raises(PluginError, match=r"unknown widget 'nope' \(known: ordered, gone\)"):
        reg.load("nope")
    with pytest.raises(PluginError, match="widget 'gone' is not available in this build"):
        reg.load("gone")


def test_registry_rejects_a_malformed_entry() -> None:
    with pytest.raises(ValueError, match="expected 'module:Class'"):
        Registry[object]("widget", {"x": "collections.OrderedDict"})
    reg = Registry[object]("widget", {"x": "collections:NoSuchClass"})
    with pytest.raises(PluginError, match="collections has no NoSuchClass"):
        reg.load("x")
