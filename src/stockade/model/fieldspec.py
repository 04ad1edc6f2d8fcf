"""What a field of the catalogue is (:class:`FieldSpec`) and the registry every source's fields are
registered in.

:mod:`stockade.model.fields` (the catalogue: syscall fields, lookups) and each source's field module
(:mod:`stockade.model.k8s_audit_fields`) build on this module; it imports neither.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["ArgKind", "Extractor", "FieldSpec", "FieldType", "register", "registered", "registered_fields"]

#: reads a field from an event dict: the value, or None when the event lacks it
Extractor = Callable[[dict[str, Any]], Any]


class FieldType(StrEnum):
    """The type of a field's values, as Falco names it."""

    STRING = "STRING"
    INT = "INT"
    UINT = "UINT"
    BOOL = "BOOL"
    DOUBLE = "DOUBLE"
    IPADDR = "IPADDR"
    IPNET = "IPNET"
    PORT = "PORT"
    BYTES = "BYTES"

    @property
    def numeric(self) -> bool:
        """Whether values compare as numbers."""
        return self in (FieldType.INT, FieldType.UINT, FieldType.PORT, FieldType.DOUBLE)


class ArgKind(StrEnum):
    """What argument a field takes (``proc.aname[2]``, ``ka.uri.param[command]``)."""

    NONE = "none"  # proc.name
    INDEX = "index"  # proc.aname[2]; optional: without it, "any of" (see FieldSpec.is_list)
    KEY = "key"  # ka.uri.param[command], k8s.pod.label[app], jevt.value[/a/b]
    INDEX_OR_KEY = "index_or_key"  # container.mount.dest[0] or container.mount.dest[/var/run/docker.sock]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field: its name, type, source, argument, and how to read it from an event."""

    name: str
    type: FieldType
    source: str  # "syscall", "k8s_audit", or "*" for fields every source has
    arg: ArgKind = ArgKind.NONE
    arg_required: bool = False
    #: the field yields several values (a list); comparisons follow Falco's list semantics
    is_list: bool = False
    description: str = ""
    #: builds an extractor for (arg) -> callable(event) -> value|None; None means "read the key"
    make_extractor: Callable[[str | None], Extractor] | None = field(default=None, compare=False)

    def key(self, arg: str | None) -> str:
        """The key of the field (with its argument) in a flat event dict."""
        return self.name if arg is None else f"{self.name}[{arg}]"

    def extractor(self, arg: str | None = None) -> Extractor:
        """The function reading this field (with `arg`) from an event."""
        if self.make_extractor is not None:
            return self.make_extractor(arg)
        key = self.key(arg)
        return lambda e: e.get(key)


_REGISTRY: dict[str, FieldSpec] = {}


def register(spec: FieldSpec) -> FieldSpec:
    """Add a field to the catalogue (a later spec of the same name replaces an earlier one)."""
    _REGISTRY[spec.name] = spec
    return spec


def registered(name: str) -> FieldSpec | None:
    """The registered spec named exactly `name`, or None."""
    return _REGISTRY.get(name)


def registered_fields() -> list[FieldSpec]:
    """Every registered spec, in no particular order."""
    return list(_REGISTRY.values())
