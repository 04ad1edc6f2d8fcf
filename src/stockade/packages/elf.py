"""Just enough ELF to find a named section or the bytes at a virtual address, reading only the
headers and the bytes asked for (Go build info and Rust ``cargo auditable`` data live in sections
of binaries that can be hundreds of MiB).

A cataloger calls :func:`is_executable` in ``wants`` (a stat the walk's entry caches), then
:func:`elf_info` (cached: the Go and Rust catalogers look at the same executables), and opens the
file with :class:`ElfFile` only when it has the section it reads.
"""

from __future__ import annotations

import os
import stat
import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import BinaryIO, Final

__all__ = ["SECTIONS", "ElfFile", "ElfInfo", "Section", "elf_info", "is_executable"]

MAGIC = b"\x7fELF"


#: names that are never ELF executables, checked before the stat (an exec bit on a Python or
#: JavaScript file is common; a stat per file is most of a walk's cost)
NOT_ELF = frozenset(
    [
        ".py",
        ".pyc",
        ".pyi",
        ".pyx",
        ".pxd",
        ".js",
        ".mjs",
        ".cjs",
        ".ts",
        ".map",
        ".json",
        ".md",
        ".txt",
        ".rst",
        ".html",
        ".htm",
        ".css",
        ".scss",
        ".h",
        ".hpp",
        ".c",
        ".cc",
        ".cpp",
        ".go",
        ".rs",
        ".java",
        ".class",
        ".jar",
        ".war",
        ".xml",
        ".yml",
        ".yaml",
        ".toml",
        ".ini",
        ".cfg",
        ".conf",
        ".sh",
        ".bash",
        ".pl",
        ".pm",
        ".rb",
        ".php",
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".svg",
        ".ico",
        ".mo",
        ".po",
        ".pem",
        ".crt",
        ".csv",
        ".lock",
        ".typed",
        ".gz",
        ".zip",
        ".xz",
        ".bz2",
    ]
)


def is_executable(entry: os.DirEntry[str]) -> bool:
    """Whether the walk's entry is a regular file with an exec bit (the stat is cached by the entry);
    names in :data:`NOT_ELF` are not even stat'ed."""
    name = entry.name
    dot = name.rfind(".")
    if dot > 0 and name[dot:].lower() in NOT_ELF:
        return False
    st = entry.stat(follow_symlinks=False)
    return stat.S_ISREG(st.st_mode) and bool(st.st_mode & 0o111) and st.st_size > 64


#: the sections catalogers read (Go build info, Rust cargo-auditable data): only these are kept
SECTIONS: Final = (".go.buildinfo", ".dep-v0")
_NAMES = tuple(n.encode() + b"\0" for n in SECTIONS)


@dataclass(frozen=True, slots=True)
class Section:
    """One section header: where it is in the file and where it is loaded."""

    name: str
    addr: int
    offset: int
    size: int
    nobits: bool


@dataclass(frozen=True, slots=True)
class _Segment:
    vaddr: int
    offset: int
    filesz: int


@dataclass(frozen=True, slots=True)
class ElfInfo:
    """What the headers of an ELF file say: the :data:`SECTIONS` it has and its loadable segments."""

    size: int
    sections: dict[str, Section]
    segments: tuple[_Segment, ...]


_cache: OrderedDict[tuple[str, int, int, int], ElfInfo | None] = OrderedDict()
_CACHE_SIZE = 64


def elf_info(path: str) -> ElfInfo | None:
    """The headers of the file at host `path`, or None when it is not an ELF file (or its headers
    are broken). Cached by file identity: the Go and Rust catalogers ask about the same files."""
    st = os.stat(path)
    key = (path, st.st_ino, st.st_size, st.st_mtime_ns)
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    with open(path, "rb") as f:
        info = _parse(f, st.st_size)
    _cache[key] = info
    if len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return info


def _parse(f: BinaryIO, size: int) -> ElfInfo | None:
    head = f.read(64)
    if len(head) < 52 or head[:4] != MAGIC or head[4] not in (1, 2) or head[5] not in (1, 2):
        return None
    e = ">" if head[5] == 2 else "<"
    is64 = head[4] == 2
    try:
        if is64:
            phoff, shoff = struct.unpack_from(e + "QQ", head, 32)
            phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(e + "HHHHH", head, 54)
        else:
            phoff, shoff = struct.unpack_from(e + "II", head, 28)
            phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(e + "HHHHH", head, 42)
        segments = _segments(f, e, is64, phoff, phentsize, phnum, size)
        sections = _sections(f, e, is64, shoff, shentsize, shnum, shstrndx, size)
    except struct.error:
        return None
    return ElfInfo(size, sections, tuple(segments))


def _table(f: BinaryIO, off: int, entsize: int, num: int, size: int) -> bytes:
    if not off or not num or entsize <= 0 or off + entsize * num > size or num > 65535:
        return b""
    f.seek(off)
    return f.read(entsize * num)


def _segments(f: BinaryIO, e: str, is64: bool, off: int, entsize: int, num: int, size: int) -> list[_Segment]:
    raw = _table(f, off, entsize, num, size)
    out: list[_Segment] = []
    fmt = e + ("IIQQQQ" if is64 else "IIIII")
    for i in range(len(raw) // entsize if entsize else 0):
        if is64:
            ptype, _flags, poff, vaddr, _paddr, filesz = struct.unpack_from(fmt, raw, i * entsize)
        else:
            ptype, poff, vaddr, _paddr, filesz = struct.unpack_from(fmt, raw, i * entsize)
        if ptype == 1:  # PT_LOAD
            out.append(_Segment(vaddr, poff, filesz))
    return out


def _sections(
    f: BinaryIO, e: str, is64: bool, off: int, entsize: int, num: int, strndx: int, size: int
) -> dict[str, Section]:
    raw = _table(f, off, entsize, num, size)
    if not raw or strndx >= num:
        return {}
    fmt = e + ("IIQQQQ" if is64 else "IIIIII")
    rows = [struct.unpack_from(fmt, raw, i * entsize) for i in range(num)]
    _n, _t, _fl, _a, stroff, strsize = rows[strndx]
    if stroff + strsize > size or strsize > 16 * 2**20:
        return {}
    f.seek(stroff)
    strtab = f.read(strsize)
    out = {}
    for name, stype, _flags, addr, soff, ssize in rows:
        for want, label in zip(_NAMES, SECTIONS, strict=True):
            if strtab.startswith(want, name):
                out[label] = Section(label, addr, soff, ssize, stype == 8)  # SHT_NOBITS
    return out


class ElfFile:
    """An ELF file opened for reading its sections and mapped bytes (`f` stays the caller's to close)."""

    def __init__(self, f: BinaryIO, info: ElfInfo):
        self.f = f
        self.info = info

    @classmethod
    def open(cls, f: BinaryIO) -> ElfFile | None:
        """The headers of the open file `f`, or None when it is not an ELF file."""
        size = f.seek(0, os.SEEK_END)
        f.seek(0)
        info = _parse(f, size)
        return cls(f, info) if info is not None else None

    def section(self, name: str) -> Section | None:
        """The section called `name` (one of :data:`SECTIONS`), if the file has one."""
        return self.info.sections.get(name)

    def read_section(self, s: Section, limit: int = 64 * 2**20) -> bytes:
        """The bytes of `s` (empty for a NOBITS section or one past the end of the file)."""
        if s.nobits or s.offset + s.size > self.info.size or s.size > limit:
            return b""
        self.f.seek(s.offset)
        return self.f.read(s.size)

    def read_at(self, vaddr: int, n: int) -> bytes:
        """`n` bytes at virtual address `vaddr` (through the loadable segments; empty if unmapped)."""
        for seg in self.info.segments:
            if seg.vaddr <= vaddr and vaddr + n <= seg.vaddr + seg.filesz:
                self.f.seek(seg.offset + vaddr - seg.vaddr)
                return self.f.read(n)
        return b""
