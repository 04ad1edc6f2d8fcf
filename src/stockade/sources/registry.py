"""Source names and how to open one: the only place that knows every source class.

Each source class takes ``Cls(path_or_stream, *, name_hint=None)`` and has ``.name``, ``.stats`` and
``.events()`` (the :class:`~stockade.sources.interface.Source` protocol).
"""

from __future__ import annotations

import importlib

from stockade.errors import SourceError
from stockade.sources.interface import Source
from stockade.sources.jsonl import PathOrStream

__all__ = ["SOURCE_CLASSES", "SOURCE_NAMES", "open_source", "source_class"]

SOURCE_NAMES = ("syscall", "falco", "tetragon", "k8s_audit")

#: name -> (module, class); modules are imported when first used
SOURCE_CLASSES: dict[str, tuple[str, str]] = {
    "syscall": ("stockade.sources.jsonl", "JsonlSource"),
    "falco": ("stockade.sources.falco_json", "FalcoJsonSource"),
    "tetragon": ("stockade.sources.tetragon", "TetragonSource"),
    "k8s_audit": ("stockade.sources.k8s_audit", "K8sAuditSource"),
}


def source_class(name: str) -> type:
    """The class of a named source; SourceError if unknown or not available."""
    try:
        module, cls = SOURCE_CLASSES[name]
    except KeyError:
        raise SourceError(f"unknown source {name!r} (known: {', '.join(SOURCE_NAMES)})") from None
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        raise SourceError(f"source {name!r} is not available in this build ({module} is missing)") from None
    try:
        found: type = getattr(mod, cls)
    except AttributeError:
        raise SourceError(f"source {name!r} is not available: {module} has no {cls}") from None
    return found


def open_source(name: str, path_or_stream: PathOrStream, *, name_hint: str | None = None) -> Source:
    """A source of kind ``name`` reading ``path_or_stream`` (a path, ``-`` for stdin, or a stream)."""
    src: Source = source_class(name)(path_or_stream, name_hint=name_hint)
    return src
