"""The sources: one line per source, and how to open one by name.

Each source class implements :class:`~stockade.sources.interface.SourcePlugin`: it takes
``Cls(path_or_stream, *, name_hint=None)``, has ``.name``, ``.stats`` and ``.events()``, and tells its
own format (``classify``, ``sniff``), which :mod:`stockade.sources.detect` asks. Adding a source is
its file plus one line here.
"""

from __future__ import annotations

from typing import Final

from stockade.errors import SourceError
from stockade.plugins import PluginError, Registry
from stockade.sources.interface import PathOrStream, Source, SourcePlugin

__all__ = ["SOURCES", "SOURCE_NAMES", "open_source", "source_class"]

SOURCES: Final = Registry[SourcePlugin](
    "source",
    {
        "syscall": "stockade.sources.jsonl:JsonlSource",
        "falco": "stockade.sources.falco_json:FalcoJsonSource",
        "tetragon": "stockade.sources.tetragon:TetragonSource",
        "k8s_audit": "stockade.sources.k8s_audit:K8sAuditSource",
    },
)

#: every source name, in registration order (``--source`` choices)
SOURCE_NAMES: Final = SOURCES.names()


def source_class(name: str) -> type[SourcePlugin]:
    """The class of a named source; SourceError if unknown or not available."""
    try:
        return SOURCES.load(name)
    except PluginError as e:
        raise SourceError(e.message) from None


def open_source(name: str, path_or_stream: PathOrStream, *, name_hint: str | None = None) -> Source:
    """A source of kind ``name`` reading ``path_or_stream`` (a path, ``-`` for stdin, or a stream)."""
    return source_class(name)(path_or_stream, name_hint=name_hint)
