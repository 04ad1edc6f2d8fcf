"""The value forms of sink options, and the base of every sink's ``Options`` model.

A sink's options are a pydantic model (``extra="forbid"``) whose fields use the types below, so
every sink accepts the same forms: sizes as bytes or ``'10MiB'`` (``k/M/G`` are powers of 1000,
``Ki/Mi/Gi`` of 1024), durations as seconds or ``'500ms'``, file modes as ``'0600'``, booleans
only as true/false. A bad value fails with a message that names what was expected; the builder
(:mod:`stockade.sinks.build`) puts the entry and key in front: ``key 'sinks.1.options.max_bytes':
expected a size like 10485760 or '10MiB', not 'lots'``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Literal, assert_never

from pydantic import BaseModel, ConfigDict, PlainValidator

from stockade.model.timeutil import parse_duration_s

__all__ = [
    "Bool",
    "Count",
    "Duration",
    "FileMode",
    "Fsync",
    "FsyncPolicy",
    "Headers",
    "SinkOptions",
    "Size",
    "Text",
    "fsync_due",
    "parse_size",
    "sink_name",
]

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4}
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def parse_size(v: object) -> int:
    """1048576, '1MiB', '1M', '500kB' -> bytes ('k/M/G' are powers of 1000, 'Ki/Mi/Gi' of 1024)."""
    if isinstance(v, bool):
        raise ValueError("expected a size")
    if isinstance(v, int):
        if v < 0:
            raise ValueError(f"expected a size like 10485760 or '10MiB', not {v!r}")
        return v
    m = _SIZE_RE.match(str(v))
    if not m:
        raise ValueError(f"expected a size like 10485760 or '10MiB', not {v!r}")
    unit = (m.group(2) or "").lower()
    mult = (1024 ** ("kmgt".index(unit[0]) + 1)) if "i" in unit else _SIZE_UNITS[unit.rstrip("b")]
    return int(float(m.group(1)) * mult)


def _duration(v: object) -> float:
    if isinstance(v, bool):
        raise ValueError("expected a duration")
    if isinstance(v, int | float):
        return float(v)
    try:
        return parse_duration_s(str(v))
    except ValueError:
        raise ValueError(f"expected a duration like 5, '500ms' or '30s', not {v!r}") from None


def _count(v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"expected an integer, not {v!r}")
    if v < 0:
        raise ValueError(f"expected an integer 0 or more, not {v!r}")
    return v


def _bool(v: object) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"expected true or false, not {v!r}")
    return v


def _text(v: object) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError(f"expected a non-empty string, not {v!r}")
    return v


def _mode(v: object) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    try:
        return int(str(v), 8)
    except ValueError:
        raise ValueError(f"expected an octal file mode like '0600', not {v!r}") from None


def _headers(v: object) -> dict[str, str]:
    if not isinstance(v, dict) or not all(isinstance(k, str) for k in v):
        raise ValueError("expected a mapping of header names to values")
    return {k: str(x) for k, x in v.items()}


def sink_name(v: object) -> str:
    """A sink name as given (letters, digits, '_', '.', '-'); ValueError otherwise."""
    if not (isinstance(v, str) and _NAME_RE.fullmatch(v)):
        raise ValueError(f"a sink name is letters, digits, '_', '.' and '-', not {v!r}")
    return v


def _choice(*choices: str) -> Callable[[object], str]:
    def check(v: object) -> str:
        if v not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, not {v!r}")
        return str(v)

    return check


#: bytes: 10485760, '10MiB', '10MB' (= 10**7)
Size = Annotated[int, PlainValidator(parse_size)]
#: seconds: 5, 0.5, '500ms', '30s', '5m'
Duration = Annotated[float, PlainValidator(_duration)]
#: a whole number, 0 or more (not a string, not a boolean)
Count = Annotated[int, PlainValidator(_count)]
#: true or false (not 'yes', not 1)
Bool = Annotated[bool, PlainValidator(_bool)]
#: a non-empty string
Text = Annotated[str, PlainValidator(_text)]
#: permissions: 0o600 or '0600'
FileMode = Annotated[int, PlainValidator(_mode)]
#: HTTP header names to values (values are turned into strings)
Headers = Annotated[dict[str, str], PlainValidator(_headers)]
#: when written data is fsynced: after every write, at most every interval (and on flush), never
FsyncPolicy = Literal["always", "interval", "never"]
Fsync = Annotated[FsyncPolicy, PlainValidator(_choice("always", "interval", "never"))]


def fsync_due(policy: FsyncPolicy, since_last_s: float, interval_s: float) -> bool:
    """Whether data written `since_last_s` after the last fsync must be fsynced now."""
    match policy:
        case "always":
            return True
        case "interval":
            return since_last_s >= interval_s
        case "never":
            return False
        case _:
            assert_never(policy)


class SinkOptions(BaseModel):
    """The ``options`` every sink takes; each sink's ``Options`` model extends it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: the sink's name in status and logs, and its spool directory (default: the type, or type-INDEX)
    name: Annotated[str, PlainValidator(sink_name)] | None = None
