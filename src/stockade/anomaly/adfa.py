"""Reading ADFA-LD traces (Creech & Hu, UNSW 2013): one trace per file, syscall numbers separated by
white space.

A path may be a trace file, a directory (every file below it, in name order, hidden ones left out),
or a tar archive (``.tar``, ``.tar.gz``, ``.tgz``: every regular file in it, named
``ARCHIVE:MEMBER``), as the data set is distributed. A file that is not a trace is an error that
names it, with the line and column of the first bad token.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from stockade.errors import Location, SourceError

__all__ = ["Trace", "parse_trace", "read_traces", "trace_files"]

_ARCHIVES = (".tar", ".tar.gz", ".tgz")


@dataclass(frozen=True, slots=True)
class Trace:
    """One trace: where it came from, and its syscall numbers in order."""

    name: str
    syscalls: list[int]


def _bad_token(text: str, name: str) -> SourceError:
    for lineno, line in enumerate(text.splitlines(), 1):
        col = 1
        for tok in line.split():
            col = line.index(tok, col - 1) + 1
            if not tok.isdigit():
                shown = tok if len(tok) <= 20 else tok[:20] + "..."
                return SourceError(f"not a syscall number: '{shown}'", Location(name, lineno, col))
            col += len(tok)
    return SourceError("not an ADFA-LD trace", Location(name))  # pragma: no cover - split agrees


def parse_trace(data: bytes, name: str) -> list[int]:
    """The syscall numbers of one trace file's contents (`name` says where, in errors)."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as e:
        raise SourceError(
            f"not an ADFA-LD trace: byte 0x{data[e.start]:02x} at offset {e.start} is not text",
            Location(name),
        ) from None
    toks = text.split()
    if not toks:
        raise SourceError("not an ADFA-LD trace: no syscall numbers in it", Location(name))
    if not all(t.isdigit() for t in toks):  # ASCII digits only: no sign, no '_', no '0x'
        raise _bad_token(text, name)
    return [int(t) for t in toks]


def _is_archive(p: Path) -> bool:
    return p.is_file() and p.name.endswith(_ARCHIVES)


def trace_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """The trace files `paths` name: files as given, directories walked in name order."""
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            yield from (
                f
                for f in sorted(p.rglob("*"))
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
        elif p.exists():
            yield p
        else:
            raise SourceError("no such file or directory", Location(str(p)))


def _archive_traces(p: Path) -> Iterator[Trace]:
    found: list[tuple[str, bytes]] = []
    try:
        with tarfile.open(p) as tar:
            for m in tar:  # in archive order: a compressed archive reads in one pass
                f = tar.extractfile(m) if m.isfile() and not Path(m.name).name.startswith(".") else None
                if f is not None:
                    found.append((m.name, f.read()))
    except (tarfile.TarError, EOFError, OSError) as e:
        raise SourceError(f"not a readable tar archive: {e}", Location(str(p))) from None
    for member, data in sorted(found):
        name = f"{p}:{member}"
        yield Trace(name, parse_trace(data, name))


def read_traces(
    paths: Iterable[str | Path], on_error: Callable[[SourceError], None] | None = None
) -> Iterator[Trace]:
    """Every trace in `paths` (files, directories, tar archives), in order. A path or file that
    cannot be read raises :class:`SourceError`, or with `on_error` is handed to it and the rest are
    read."""
    for raw in paths:
        try:
            for f in trace_files([raw]):
                try:
                    yield from _file_traces(f)
                except SourceError as e:
                    if on_error is None:
                        raise
                    on_error(e)
        except SourceError as e:
            if on_error is None:
                raise
            on_error(e)


def _file_traces(f: Path) -> Iterator[Trace]:
    if _is_archive(f):
        yield from _archive_traces(f)
        return
    try:
        data = f.read_bytes()
    except OSError as e:
        raise SourceError(f"cannot read: {e.strerror or e}", Location(str(f))) from None
    yield Trace(str(f), parse_trace(data, str(f)))
