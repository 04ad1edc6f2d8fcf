"""The one registry pattern of every extension area (sources, sinks, sensor backends, enforcers, ...).

A registry maps a plugin's name to ``"module:Class"``; the module is imported when the plugin is
first used, so an agent that never writes syslog never imports it, and a plugin whose optional
dependency is missing fails with a clear error only when chosen. Adding a plugin is one new file
plus one line in its area's ``registry.py``; the area's contract test runs every registered plugin
through the area's interface, so a plugin that forgets part of it fails there::

    SINKS: Final = Registry[SinkPlugin]("sink", {
        "stdout": "stockade.sinks.stdout:StdoutSink",
        "webhook": "stockade.sinks.webhook:WebhookSink",
    })
    SINKS.load("webhook")      # -> the class; PluginError if unknown or not installed
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar, cast

from stockade.errors import StockadeError

__all__ = ["PluginError", "Registry"]

P = TypeVar("P")


class PluginError(StockadeError):
    """A plugin name that no registry knows, or a registered plugin that cannot be imported."""


class Registry(Generic[P]):
    """Plugin name -> its class, imported on first use. `area` names the kind in errors ("sink")."""

    def __init__(self, area: str, entries: Mapping[str, str]) -> None:
        for name, ref in entries.items():
            if ref.count(":") != 1:
                raise ValueError(f"{area} {name!r}: expected 'module:Class', not {ref!r}")
        self.area = area
        self._entries = dict(entries)
        self._loaded: dict[str, type[P]] = {}

    def names(self) -> tuple[str, ...]:
        """Every registered name, in registration order."""
        return tuple(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def unknown(self, name: str) -> PluginError:
        """The error for a name that is not registered, listing those that are."""
        return PluginError(f"unknown {self.area} {name!r} (known: {', '.join(self._entries)})")

    def load(self, name: str) -> type[P]:
        """The class registered as `name`; :class:`PluginError` if unknown or not installed."""
        cls = self._loaded.get(name)
        if cls is not None:
            return cls
        try:
            module, attr = self._entries[name].split(":")
        except KeyError:
            raise self.unknown(name) from None
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name is None or not module.startswith(e.name):
                raise
            raise PluginError(f"{self.area} {name!r} is not available in this build: {e}") from None
        try:
            cls = cast("type[P]", getattr(mod, attr))
        except AttributeError:
            raise PluginError(f"{self.area} {name!r} is not available: {module} has no {attr}") from None
        self._loaded[name] = cls
        return cls
