"""Kubernetes objects from files, directories and standard input, with the line of every field.

:func:`load_paths` reads files and directories (recursing into directories for ``*.yaml``,
``*.yml`` and ``*.json``, hidden directories left out; a file named explicitly is read whatever its
name) and ``-`` (standard input: kustomize or Helm output piped in). A file may hold several YAML
documents, JSON, and ``kind: List`` (or any ``*List``) whose items are objects; items without
``kind``/``apiVersion`` (as the API server lists them) get them from the list's kind.

Each document is composed by libyaml (the C loader when present) and the Python values are built
here from the nodes, so that the line of each field path is known (:attr:`K8sObject.lines`): a
finding then points at the offending field. Helm's ``# Source: chart/templates/x.yaml`` comments
and kustomize's ``config.kubernetes.io/origin`` annotations are kept: :meth:`Loaded.template_at`
says which template (or kustomize input) each document came from.

Whatever cannot be read is a :class:`LoadError` with file, line and column, and the load goes on:
an empty file, a document that is not a Kubernetes object (a scalar, no ``kind`` or
``apiVersion``, an unknown kind of a built-in API group), a YAML syntax error, a field of a
built-in kind with the wrong type (``hostNetwork: "1"``: the API server refuses the object, so it
is not scanned), a file that is not text, a file over :data:`MAX_BYTES`, and documents whose
aliases expand beyond :data:`MAX_ALIAS_NODES` nodes (a billion laughs).
"""

from __future__ import annotations

import bisect
import gc
import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Final

import yaml

from stockade.errors import Location, SourceError
from stockade.k8s.objects import K8sObject, Path

__all__ = [
    "EXTENSIONS",
    "MAX_ALIAS_NODES",
    "MAX_BYTES",
    "LoadError",
    "Loaded",
    "list_items",
    "load_paths",
    "load_text",
    "objects_of",
]

EXTENSIONS: Final = (".yaml", ".yml", ".json")
#: a file (or standard input) larger than this is refused
MAX_BYTES: Final = 64 * 1024 * 1024
#: nodes an alias may bring in again, per document, before the document is refused
MAX_ALIAS_NODES: Final = 10_000
#: how deep a document may nest (Kubernetes objects are a few dozen levels at most)
MAX_DEPTH: Final = 200

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SOURCE = re.compile(r"^# Source: (\S.*?)\s*$", re.MULTILINE)
_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_NULL = "tag:yaml.org,2002:null"
_ORIGIN = "config.kubernetes.io/origin"
_ORIGIN_PATH = re.compile(r"^path: *(\S.*?)\s*$", re.MULTILINE)


class LoadError(SourceError):
    """An input that gave no Kubernetes object (or a document of it that did not), with where."""

    @property
    def file(self) -> str:
        """The file (``-`` for standard input)."""
        return self.location.file if self.location else "<input>"

    @property
    def line(self) -> int | None:
        """The 1-based line, when known."""
        return self.location.line if self.location else None

    @property
    def column(self) -> int | None:
        """The 1-based column, when known."""
        return self.location.column if self.location else None


@dataclass(slots=True)
class Loaded:
    """What a load gave: the objects, the errors, how many files were read, and for files naming
    templates (Helm ``# Source:``, kustomize origins) the first line and template of each
    document from the first that names one (in order)."""

    objects: list[K8sObject] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)
    files: int = 0
    templates: dict[str, list[tuple[int, str | None]]] = field(default_factory=dict)

    def template_at(self, file: str | None, line: int | None) -> str | None:
        """The Helm template the document at `line` of `file` was rendered from (None if unnamed)."""
        docs = self.templates.get(file or "")
        if not docs or line is None:
            return None
        i = bisect.bisect_right(docs, line, key=lambda d: d[0]) - 1
        return docs[i][1] if i >= 0 else None

    def extend(self, other: Loaded) -> None:
        """Add what `other` loaded."""
        self.objects += other.objects
        self.errors += other.errors
        self.files += other.files
        self.templates.update(other.templates)


# -- files and directories ------------------------------------------------------------------------


def _walk(root: str) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(EXTENSIONS) and not name.startswith("."):
                yield os.path.join(dirpath, name)


def files_of(paths: Iterable[str]) -> Iterator[str]:
    """The files `paths` name: files as given, directories walked (sorted), ``-`` as is; a file
    named twice (or also found in a directory given) once."""
    seen: set[str] = set()
    for p in paths:
        for f in _walk(p) if p != "-" and os.path.isdir(p) else (p,):
            real = f if f == "-" else os.path.realpath(f)
            if real not in seen:
                seen.add(real)
                yield f


def _read(path: str, stdin: BinaryIO | None) -> bytes:
    if path == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        data = stream.read(MAX_BYTES + 1)
    else:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise LoadError(f"larger than {MAX_BYTES // (1024 * 1024)} MiB: not read", Location(path))
    return data


def _decode(data: bytes, path: str) -> str:
    if b"\0" in data[:8192]:
        raise LoadError("not text (a binary file)", Location(path))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise LoadError("not UTF-8 text", Location(path, line, column)) from None


def load_paths(paths: Sequence[str], stdin: BinaryIO | None = None) -> Loaded:
    """Every object of `paths` (files, directories, ``-``), and every error met on the way."""
    out = Loaded()
    for path in files_of(paths):
        out.files += 1
        try:
            text = _decode(_read(path, stdin), path)
        except LoadError as e:
            out.errors.append(e)
            continue
        except OSError as e:
            out.errors.append(LoadError(f"not read: {e.strerror or e}", Location(path)))
            continue
        out.extend(load_text(text, path))
        out.files -= 1  # load_text counts the file once more
    return out


# -- one text -------------------------------------------------------------------------------------


def _error(e: yaml.YAMLError, file: str, text: str = "") -> LoadError:
    if isinstance(e, yaml.reader.ReaderError):  # a character YAML does not allow, at an offset
        pos = min(max(e.position, 0), len(text))
        line = text.count("\n", 0, pos) + 1
        column = pos - (text.rfind("\n", 0, pos) + 1) + 1
        ch = e.character if isinstance(e.character, int) else int.from_bytes(bytes(e.character)[:1] or b"\0")
        return LoadError(f"not YAML text: {e.reason} (#x{ch:04x})", Location(file, line, column))
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        problem = e.problem or e.context or str(e)
        if e.problem and e.context and e.context_mark is not None and e.context_mark is not mark:
            cm = e.context_mark
            problem += f" ({e.context} at {cm.line + 1}:{cm.column + 1})"
        if mark is not None:
            return LoadError(f"YAML syntax error: {problem}", Location(file, mark.line + 1, mark.column + 1))
        return LoadError(f"YAML syntax error: {problem}", Location(file))
    return LoadError(f"YAML error: {e}", Location(file))


def load_text(text: str, file: str) -> Loaded:
    """The objects of one file's text (`file` names it in objects and errors)."""
    # the nodes and values of a document make no reference cycles (aliases are bounded): the
    # cyclic collector would only rescan the growing tree, which made large lists superlinear. The
    # collector is process-wide: it is paused only in a single-threaded process (the CLI), never
    # under a server's other threads
    enabled = gc.isenabled() and threading.active_count() == 1
    if enabled:
        gc.disable()
    try:
        return _load_text(text, file)
    finally:
        if enabled:
            gc.enable()


def _load_text(text: str, file: str) -> Loaded:
    out = Loaded(files=1)
    sources = _sources(text)
    next_source = 0  # documents come in order: the first Source comment not yet passed
    loader = _Loader(text)
    doc = -1
    seen_any = False
    prev_end = 0
    try:
        while True:
            try:
                if not loader.check_node():
                    break
                node = loader.get_node()
            except yaml.YAMLError as e:
                err = _error(e, file, text)
                if not seen_any and text.lstrip()[:1] in ("{", "["):
                    out.extend(_json_fallback(text, file, err))
                else:
                    out.errors.append(err)
                return out  # the stream cannot be read past a syntax error
            except RecursionError:
                out.errors.append(LoadError(f"nested deeper than {MAX_DEPTH} levels", Location(file)))
                return out
            doc += 1
            if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _NULL):
                continue  # an empty document (Helm renders them for templates that give nothing)
            seen_any = True
            start = node.start_mark.line + 1
            template = None
            while next_source < len(sources) and sources[next_source][0] <= start:
                if sources[next_source][0] > prev_end:
                    template = sources[next_source][1]
                next_source += 1
            prev_end = node.end_mark.line + 1
            value = _document(node, file, doc, out, loader)
            template = template or _origin(value)
            if template or file in out.templates:
                out.templates.setdefault(file, []).append((start, template))
    finally:
        loader.dispose()
    if not seen_any:
        what = "empty file" if not text.strip() else "no YAML document (only comments or empty documents)"
        out.errors.append(LoadError(f"{what}: no Kubernetes object", Location(file, 1)))
    return out


def _sources(text: str) -> list[tuple[int, str]]:
    """The line and template of each Helm ``# Source:`` comment (lines counted once, in order)."""
    out = []
    line, pos = 1, 0
    for m in _SOURCE.finditer(text):
        line += text.count("\n", pos, m.start())
        pos = m.start()
        out.append((line, m.group(1)))
    return out


def _origin(value: Any) -> str | None:
    """kustomize's ``config.kubernetes.io/origin`` annotation (``buildMetadata: [originAnnotations]``):
    the file the object came from (its ``path``)."""
    meta = value.get("metadata") if isinstance(value, dict) else None
    notes = meta.get("annotations") if isinstance(meta, dict) else None
    origin = notes.get(_ORIGIN) if isinstance(notes, dict) else None
    if not isinstance(origin, str):
        return None
    m = _ORIGIN_PATH.search(origin)
    return m.group(1).strip("'\"") if m else None


def _json_fallback(text: str, file: str, yaml_error: LoadError) -> Loaded:
    """JSON that YAML does not take (tabs as indentation): the objects without field lines."""
    import orjson

    out = Loaded(files=1)
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        out.errors.append(yaml_error)
        return out
    _admit(value, {(): 1}, file, 0, 1, out)
    return out


# -- nodes to values ------------------------------------------------------------------------------


class _TooMany(Exception):
    pass


class _Builder:
    """One document's nodes to Python values, recording the line of each path."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.lines: dict[Path, int] = {}
        self.seen: set[int] = set()
        self.again = 0  # nodes brought in again by aliases

    def value(self, node: yaml.Node, path: Path, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise RecursionError
        if id(node) in self.seen:  # an alias brings the node in again: each visit counts
            self.again += 1
            if self.again > MAX_ALIAS_NODES:
                raise _TooMany
        else:
            self.seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _STR:
                return node.value
            construct = self.loader.yaml_constructors.get(node.tag)
            if construct is None:  # an application tag (!Ref ...): the text
                return node.value
            return construct(self.loader, node)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for i, item in enumerate(node.value):
                p = (*path, i)
                self.lines[p] = item.start_mark.line + 1
                items.append(self.value(item, p, depth + 1))
            return items
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path, depth)
        return None

    def mapping(self, node: yaml.MappingNode, path: Path, depth: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        merged: list[dict[Any, Any]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                m = self.value(value_node, path, depth + 1)
                merged += [x for x in (m if isinstance(m, list) else [m]) if isinstance(x, dict)]
                continue
            key = self.value(key_node, path, depth + 1)
            if isinstance(key, (list, dict)):
                key = str(key)
            p = (*path, key)
            self.lines[p] = key_node.start_mark.line + 1
            out[key] = self.value(value_node, p, depth + 1)
        for m in merged:  # explicit keys win over merged ones, earlier merges over later
            for k, v in m.items():
                out.setdefault(k, v)
        return out


def _document(node: yaml.Node, file: str, doc: int, out: Loaded, loader: Any) -> Any:
    """Build one document and admit its object(s); its value (None when it could not be built)."""
    line = node.start_mark.line + 1
    b = _Builder(loader)
    try:
        value = b.value(node, (), 0)
    except _TooMany:
        out.errors.append(
            LoadError(
                f"aliases expand to more than {MAX_ALIAS_NODES} nodes: refused (a billion laughs?)",
                Location(file, line, node.start_mark.column + 1),
            )
        )
        return None
    except RecursionError:
        out.errors.append(LoadError(f"nested deeper than {MAX_DEPTH} levels", Location(file, line)))
        return None
    except yaml.YAMLError as e:  # a scalar its tag's constructor refuses (!!int abc)
        out.errors.append(_error(e, file))
        return None
    b.lines[()] = line
    _admit(value, b.lines, file, doc, line, out)
    return value


# -- values to objects ----------------------------------------------------------------------------


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def list_items(body: dict[str, Any]) -> list[Any] | None:
    """The items of a ``List`` (``kind: List`` or any ``...List`` with an ``items`` list), else None."""
    kind = body.get("kind")
    items = body.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        return items
    return None


def objects_of(value: Any, file: str, out: Loaded) -> None:
    """Add to `out` the object(s) of a parsed value without positions (the API server's lists,
    JSON): as a document of `file` would give them."""
    _admit(value, {}, file, 0, None, out)


def _admit(value: Any, lines: dict[Path, int], file: str, doc: int, line: int | None, out: Loaded) -> None:
    """Add `value` as an object (the items of a List each), or the reason it is none."""
    from stockade.k8s import schema

    if not isinstance(value, dict):
        what = "a list" if isinstance(value, list) else f"a scalar ({_short(value)})"
        out.errors.append(LoadError(f"not a Kubernetes object: {what}", Location(file, line)))
        return
    missing = [k for k in ("apiVersion", "kind") if not isinstance(value.get(k), str) or not value[k]]
    if missing:
        keys = ", ".join(str(k) for k in list(value)[:3])
        out.errors.append(
            LoadError(
                f"not a Kubernetes object: no {' or '.join(missing)} (keys: {keys or 'none'})",
                Location(file, line),
            )
        )
        return
    items = list_items(value)
    if items is not None:
        item_kind = value["kind"].removesuffix("List") if value["kind"] != "List" else None
        per_item: dict[Any, dict[Path, int]] = {}
        for p, n in lines.items():  # one pass: a list of thousands of items stays linear
            if len(p) > 2 and p[0] == "items":
                per_item.setdefault(p[1], {})[p[2:]] = n
        for i, item in enumerate(items):
            sub = per_item.get(i, {})
            item_line = lines.get(("items", i), line)
            if isinstance(item, dict) and item_kind:  # the API server's lists leave these out
                item.setdefault("kind", item_kind)
                item.setdefault("apiVersion", value["apiVersion"])
            _admit(item, sub, file, doc, item_line, out)
        return
    problems = schema.problems(value)
    if problems:
        for path, message in problems:
            where = _line_of(lines, path, line)
            out.errors.append(LoadError(f"{value['kind']} {_name(value)}: {message}", Location(file, where)))
        return
    out.objects.append(K8sObject(value, file=file, line=line, lines=lines, doc=doc))


def _name(body: dict[str, Any]) -> str:
    meta = body.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return repr(name) if name else "(no name)"


def _line_of(lines: dict[Path, int], path: Path, default: int | None) -> int | None:
    p = path
    while p:
        if p in lines:
            return lines[p]
        p = p[:-1]
    return default
