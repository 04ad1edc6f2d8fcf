"""Builds sinks from the ``sinks:`` section of the configuration.

Each entry is a :class:`stockade.config.SinkConfig` naming a sink of :data:`registry.SINKS
<stockade.sinks.registry.SINKS>`; its ``options`` are checked by that sink's ``Options`` model
(described in ``docs/sinks.md``) and the sink is made by its ``from_config``. The entry's filters
(``min_priority``, ``rules``, ``tags``, ``namespaces`` and their ``exclude_`` forms) wrap the sink in
one :class:`AlertFilter`. Errors name the
entry and key, like the rest of the configuration: ``key 'sinks.1.options.max_bytes': ...``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from stockade.config import DEFAULT_DATA_DIR
from stockade.errors import ConfigError, Location, SinkError
from stockade.model.alert import PRIORITIES, Alert, normalize_priority, priority_rank
from stockade.model.clock import SYSTEM, Clock
from stockade.plugins import PluginError
from stockade.sinks.interface import EntryError, Reopenable, Sink, SinkContext, SinkEntry, SinkOptions
from stockade.sinks.lines import namespace_of
from stockade.sinks.options import sink_name
from stockade.sinks.registry import SINKS

__all__ = ["FILTER_KEYS", "AlertFilter", "Selection", "build_sink", "build_sinks", "close_all", "reopen_all"]

#: the entry keys of a sink's filters besides min_priority (each a list of names or globs)
FILTER_KEYS = ("rules", "tags", "namespaces", "exclude_rules", "exclude_tags", "exclude_namespaces")


def _matches(patterns: tuple[str, ...], values: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(v, p) for p in patterns for v in values)


@dataclass(frozen=True, slots=True)
class Selection:
    """Which alerts a sink takes: at or above ``min_priority``; with ``rules``/``tags``/``namespaces``
    (names or globs) only alerts matching one of each given list; never one matching an
    ``exclude_`` list. An alert without a namespace does not match ``namespaces``."""

    min_priority: str = "Debug"
    rules: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    exclude_rules: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    exclude_namespaces: tuple[str, ...] = ()

    def selects_all(self) -> bool:
        """True if no alert is ever filtered out."""
        return priority_rank(self.min_priority) == len(PRIORITIES) - 1 and not any(
            getattr(self, k) for k in FILTER_KEYS
        )

    def passes(self, alert: Alert) -> bool:
        """Whether the sink takes `alert`."""
        if priority_rank(alert.priority) > priority_rank(self.min_priority):
            return False
        ns = namespace_of(alert)
        nss = [ns] if ns else []
        if self.rules and not _matches(self.rules, [alert.rule]):
            return False
        if self.tags and not _matches(self.tags, alert.tags):
            return False
        if self.namespaces and not _matches(self.namespaces, nss):
            return False
        return not (
            _matches(self.exclude_rules, [alert.rule])
            or _matches(self.exclude_tags, alert.tags)
            or _matches(self.exclude_namespaces, nss)
        )


class AlertFilter:
    """Passes on only the alerts its :class:`Selection` takes (counting the others in
    ``filtered``); otherwise behaves as the wrapped sink."""

    def __init__(self, inner: Sink, selection: Selection) -> None:
        self.inner = inner
        self.name = inner.name
        self.stats = inner.stats
        self.selection = selection
        self.min_priority = selection.min_priority
        #: alerts this sink was not given because of its filters
        self.filtered = 0

    def emit(self, alert: Alert) -> None:
        """Pass the alert on if the selection takes it."""
        if self.selection.passes(alert):
            self.inner.emit(alert)
        else:
            self.filtered += 1

    def flush(self) -> None:
        """Flush the wrapped sink."""
        self.inner.flush()

    def close(self) -> None:
        """Close the wrapped sink."""
        self.inner.close()

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)


def _err(index: int, key: str, message: str, origin: str | None) -> ConfigError:
    return ConfigError(f"key 'sinks.{index}.{key}': {message}", Location(origin) if origin else None)


def _option_error(kind: str, model: type[SinkOptions], error: ErrorDetails) -> tuple[str, str]:
    """(the key under ``options``, the message) of the first problem pydantic found."""
    key = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        known = ", ".join(sorted(model.model_fields))
        return key, f"unknown option for a {kind} sink (known: {known})"
    if error["type"] == "value_error":
        return key, str(error.get("ctx", {}).get("error", error["msg"]))
    return key, error["msg"]


def _options(cls_options: type[SinkOptions], entry: SinkEntry, index: int, origin: str | None) -> SinkOptions:
    given = {k: v for k, v in (entry.options or {}).items() if v is not None}  # null: the default
    try:
        return cls_options.model_validate(given)
    except ValidationError as e:
        key, message = _option_error(entry.type, cls_options, e.errors()[0])
        raise _err(index, f"options.{key}", message, origin) from None


def _explicit_name(entry: SinkEntry) -> tuple[str, object]:
    """(the key, the name) the entry gives its sink (``options.name``, or ``name``), if any."""
    options: Mapping[str, Any] = entry.options or {}
    if options.get("name") is not None:
        return "options.name", options["name"]
    return "name", entry.name


def _names(entries: Sequence[SinkEntry], origin: str | None) -> list[str]:
    """Sink names: the given name if any (unique), else the type, or type-INDEX if the type repeats."""
    explicit: list[str | None] = []
    for i, entry in enumerate(entries):
        key, given = _explicit_name(entry)
        try:
            ex = None if given is None else sink_name(given)
        except ValueError as e:
            raise _err(i, key, str(e), origin) from None
        if ex is not None and ex in explicit:
            raise _err(i, key, f"two sinks are named {ex!r}", origin)
        explicit.append(ex)
    types = [entry.type for entry in entries]
    taken = {e for e in explicit if e}
    names: list[str] = []
    for i, (entry, ex) in enumerate(zip(entries, explicit, strict=True)):
        name = ex or (entry.type if types.count(entry.type) == 1 else f"{entry.type}-{i}")
        j = 1
        while not ex and name in taken:
            name, j = f"{entry.type}-{i}-{j}", j + 1
        taken.add(name)
        names.append(name)
    return names


def _min_priority(entry: SinkEntry, index: int, origin: str | None) -> str:
    min_priority = normalize_priority(entry.min_priority)
    if min_priority is None:
        raise _err(
            index,
            "min_priority",
            f"unknown priority {entry.min_priority!r} (one of {', '.join(PRIORITIES)})",
            origin,
        )
    return min_priority


def _selection(entry: SinkEntry, index: int, origin: str | None) -> Selection:
    """The entry's filters, each pattern checked."""
    lists: dict[str, tuple[str, ...]] = {}
    for key in FILTER_KEYS:
        value = getattr(entry, key, None) or ()
        if isinstance(value, str):
            value = (value,)
        for j, p in enumerate(value):
            if not isinstance(p, str) or not p.strip():
                raise _err(index, f"{key}.{j}", f"expected a name or glob, not {p!r}", origin)
        lists[key] = tuple(value)
    return Selection(_min_priority(entry, index, origin), **lists)


def build_sink(
    entry: SinkEntry,
    index: int = 0,
    data_dir: str | Path | None = None,
    name: str | None = None,
    origin: str | None = None,
    clock: Clock = SYSTEM,
) -> Sink:
    """One sink from its configuration entry (``index`` is its place in ``sinks:``, for errors)."""
    try:
        plugin = SINKS.load(entry.type)
    except PluginError as e:
        raise _err(index, "type", e.message, origin) from None
    options = _options(plugin.Options, entry, index, origin)
    selection = _selection(entry, index, origin)
    name = name or options.name or _names([entry], origin)[0]
    context = SinkContext(name=name, data_dir=Path(data_dir or DEFAULT_DATA_DIR), clock=clock)
    try:
        sink = plugin.from_config(entry, options, context)
    except EntryError as e:
        raise _err(index, e.key, e.message, origin) from None
    except ValueError as e:
        raise _err(index, "options", str(e), origin) from None
    except OSError as e:
        raise SinkError(
            f"sink {name} (sinks.{index}): {e.strerror or e}", Location(origin) if origin else None
        ) from e
    return sink if selection.selects_all() else AlertFilter(sink, selection)


def build_sinks(
    entries: Sequence[SinkEntry],
    data_dir: str | Path | None = None,
    origin: str | None = None,
    clock: Clock = SYSTEM,
) -> list[Sink]:
    """All configured sinks, in order. If one cannot be built, those already built are closed."""
    names = _names(entries, origin)
    sinks: list[Sink] = []
    try:
        for i, (entry, name) in enumerate(zip(entries, names, strict=True)):
            sinks.append(build_sink(entry, i, data_dir, name, origin, clock))
    except BaseException:
        close_all(sinks)
        raise
    return sinks


def close_all(sinks: Sequence[Sink]) -> list[str]:
    """Close every sink (each one even if another fails); returns the problems."""
    problems: list[str] = []
    for s in sinks:
        try:
            s.close()
        except Exception as e:
            problems.append(f"sink {s.name}: {e}")
    return problems


def reopen_all(sinks: Sequence[Sink]) -> None:
    """Reopen output files (on SIGHUP, after logrotate moved them)."""
    for s in sinks:
        if isinstance(s, Reopenable):  # an AlertFilter passes `reopen` through to its sink
            s.reopen()
