"""Builds sinks from the ``sinks:`` section of the configuration.

Each entry is a :class:`stockade.config.SinkConfig`; settings particular to one kind of sink go in
its ``options`` mapping (listed in :data:`OPTIONS`, described in ``docs/sinks.md``). Errors name
the entry and key, like the rest of the configuration: ``key 'sinks.1.options.max_bytes': ...``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stockade.config import SinkConfig
from stockade.errors import ConfigError, Location, SinkError
from stockade.model.alert import PRIORITIES, Alert, normalize_priority, priority_rank
from stockade.model.timeutil import parse_duration_s
from stockade.sinks.file import FileSink
from stockade.sinks.interface import Sink, SinkStats
from stockade.sinks.stdout import StdoutSink
from stockade.sinks.syslog import SyslogSink
from stockade.sinks.webhook import WebhookSink

__all__ = ["OPTIONS", "PriorityFilter", "SinkStats", "build_sink", "build_sinks", "close_all", "reopen_all"]

DEFAULT_DATA_DIR = "/var/lib/stockade"

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}


def _size(v: Any) -> int:
    """1048576, '1MiB', '1M', '500kB' -> bytes ('k/M/G' are powers of 1000, 'Ki/Mi/Gi' of 1024)."""
    if isinstance(v, bool):
        raise ValueError("expected a size")
    if isinstance(v, int):
        return v
    m = _SIZE_RE.match(str(v))
    if not m:
        raise ValueError(f"expected a size like 10485760 or '10MiB', not {v!r}")
    unit = (m.group(2) or "").lower()
    mult = (1024 ** ("kmgt".index(unit[0]) + 1)) if "i" in unit else _SIZE_UNITS[unit.rstrip("b")]
    return int(float(m.group(1)) * mult)


def _duration(v: Any) -> float:
    if isinstance(v, bool):
        raise ValueError("expected a duration")
    if isinstance(v, int | float):
        return float(v)
    try:
        return parse_duration_s(str(v))
    except ValueError:
        raise ValueError(f"expected a duration like 5, '500ms' or '30s', not {v!r}") from None


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"expected an integer, not {v!r}")
    return v


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"expected true or false, not {v!r}")
    return v


def _str(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError(f"expected a non-empty string, not {v!r}")
    return v


def _mode(v: Any) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    try:
        return int(str(v), 8)
    except ValueError:
        raise ValueError(f"expected an octal file mode like '0600', not {v!r}") from None


def _choice(*choices: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, not {v!r}")
        return str(v)

    return check


def _facility(v: Any) -> str | int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    return _str(v)


def _headers(v: Any) -> dict[str, str]:
    if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
        raise ValueError("expected a mapping of header names to values")
    return {k: str(x) for k, x in v.items()}


_COMMON: dict[str, Callable[[Any], Any]] = {"name": _str}
#: the ``options`` each type of sink takes, with their checks
OPTIONS: dict[str, dict[str, Callable[[Any], Any]]] = {
    "stdout": {**_COMMON, "buffered": _bool, "time_format_iso_8601": _bool},
    "file": {
        **_COMMON,
        "max_bytes": _size,
        "backups": _int,
        "fsync": _choice("always", "interval", "never"),
        "fsync_interval_s": _duration,
        "mode": _mode,
        "buffer_bytes": _size,
    },
    "syslog": {
        **_COMMON,
        "facility": _facility,
        "app_name": _str,
        "hostname": _str,
        "bom": _bool,
        "timeout_s": _duration,
        "reconnect_s": _duration,
        "max_message_bytes": _size,
    },
    "webhook": {
        **_COMMON,
        "headers": _headers,
        "verify_tls": _bool,
        "timeout_s": _duration,
        "queue_size": _int,
        "spool_dir": _str,
        "max_spool_bytes": _size,
        "segment_bytes": _size,
        "spool_fsync": _choice("always", "interval", "never"),
        "max_retries": _int,
        "backoff_initial_s": _duration,
        "backoff_max_s": _duration,
        "max_retry_after_s": _duration,
        "flush_timeout_s": _duration,
        "trust_env": _bool,
    },
}


class PriorityFilter:
    """Passes on only alerts at or above ``min_priority``; otherwise behaves as the wrapped sink."""

    def __init__(self, inner: Sink, min_priority: str) -> None:
        self.inner = inner
        self.name = inner.name
        self.stats = inner.stats
        self.min_priority = min_priority
        self._max_rank = priority_rank(min_priority)
        self._ranks = {p: i for i, p in enumerate(PRIORITIES)}

    def emit(self, alert: Alert) -> None:
        rank = self._ranks.get(alert.priority)
        if rank is None:
            rank = priority_rank(alert.priority)
        if rank <= self._max_rank:
            self.inner.emit(alert)

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)


def _err(index: int, key: str, message: str, origin: str | None) -> ConfigError:
    return ConfigError(f"key 'sinks.{index}.{key}': {message}", Location(origin) if origin else None)


def _options(cfg: SinkConfig, index: int, origin: str | None) -> dict[str, Any]:
    spec = OPTIONS[cfg.type]
    out: dict[str, Any] = {}
    for k, v in (cfg.options or {}).items():
        check = spec.get(k)
        if check is None:
            known = ", ".join(sorted(spec))
            raise _err(
                index, f"options.{k}", f"unknown option for a {cfg.type} sink (known: {known})", origin
            )
        if v is None:
            continue  # null: the default
        try:
            out[k] = check(v)
        except ValueError as e:
            raise _err(index, f"options.{k}", str(e), origin) from None
    return out


def _make(
    cfg: SinkConfig, opts: dict[str, Any], name: str, index: int, data_dir: str, origin: str | None
) -> Sink:
    opts = {k: v for k, v in opts.items() if k != "name"}
    if cfg.type == "stdout":
        return StdoutSink(format=cfg.format, name=name, **opts)
    if cfg.type == "file":
        if not cfg.path:
            raise _err(index, "path", "a file sink needs a path", origin)
        return FileSink(cfg.path, format=cfg.format, name=name, **opts)
    if cfg.type == "syslog":
        return SyslogSink(cfg.address, format=cfg.format, name=name, **opts)
    if cfg.type == "webhook":
        if not cfg.url:
            raise _err(index, "url", "a webhook sink needs a url", origin)
        spool_dir = opts.pop("spool_dir", None) or str(Path(data_dir) / "spool" / name)
        return WebhookSink(cfg.url, spool_dir, name=name, **opts)
    raise _err(index, "type", f"unknown sink type {cfg.type!r} (one of {', '.join(OPTIONS)})", origin)


def _names(configs: Sequence[SinkConfig], origin: str | None) -> list[str]:
    """Sink names: options.name if given (unique), else the type, or type-INDEX if the type repeats."""
    explicit: list[str | None] = []
    for i, cfg in enumerate(configs):
        ex = (cfg.options or {}).get("name") or getattr(cfg, "name", None)  # `name` may become a field
        if ex is not None and not (isinstance(ex, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", ex)):
            raise _err(
                i, "options.name", f"a sink name is letters, digits, '_', '.' and '-', not {ex!r}", origin
            )
        if ex is not None and ex in explicit:
            raise _err(i, "options.name", f"two sinks are named {ex!r}", origin)
        explicit.append(ex)
    types = [cfg.type for cfg in configs]
    taken = {e for e in explicit if e}
    names: list[str] = []
    for i, (cfg, ex) in enumerate(zip(configs, explicit, strict=True)):
        name = ex or (cfg.type if types.count(cfg.type) == 1 else f"{cfg.type}-{i}")
        j = 1
        while not ex and name in taken:
            name, j = f"{cfg.type}-{i}-{j}", j + 1
        taken.add(name)
        names.append(name)
    return names


def build_sink(
    cfg: SinkConfig,
    index: int = 0,
    data_dir: str | None = None,
    name: str | None = None,
    origin: str | None = None,
) -> Sink:
    """One sink from its configuration entry (``index`` is its place in ``sinks:``, for errors)."""
    if cfg.type not in OPTIONS:
        raise _err(index, "type", f"unknown sink type {cfg.type!r} (one of {', '.join(OPTIONS)})", origin)
    opts = _options(cfg, index, origin)
    min_priority = normalize_priority(cfg.min_priority)
    if min_priority is None:
        raise _err(
            index,
            "min_priority",
            f"unknown priority {cfg.min_priority!r} (one of {', '.join(PRIORITIES)})",
            origin,
        )
    name = name or opts.get("name") or _names([cfg], origin)[0]
    try:
        sink = _make(cfg, opts, name, index, data_dir or DEFAULT_DATA_DIR, origin)
    except ValueError as e:
        raise _err(index, "options", str(e), origin) from None
    except OSError as e:
        raise SinkError(
            f"sink {name} (sinks.{index}): {e.strerror or e}", Location(origin) if origin else None
        ) from e
    if priority_rank(min_priority) < len(PRIORITIES) - 1:
        return PriorityFilter(sink, min_priority)
    return sink


def build_sinks(
    configs: Sequence[SinkConfig], data_dir: str | None = None, origin: str | None = None
) -> list[Sink]:
    """All configured sinks, in order. If one cannot be built, those already built are closed."""
    names = _names(configs, origin)
    sinks: list[Sink] = []
    try:
        for i, (cfg, name) in enumerate(zip(configs, names, strict=True)):
            sinks.append(build_sink(cfg, i, data_dir, name, origin))
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
        reopen = getattr(s, "reopen", None)
        if callable(reopen):
            reopen()
