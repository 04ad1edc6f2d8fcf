"""Just enough ELF to find a named section or the bytes at a virtual address, reading only the
headers and the bytes asked for (Go build info and Rust ``cargo auditable`` data live in sections
of binaries that can be hundreds of MiB).

A cataloger calls :func:`is_executable` in ``wants`` (a stat the walk's entry caches), then opens
the file with :class:`ElfFile`, which returns None for anything that is not an ELF file.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from typing import BinaryIO

__all__ = ["ElfFile", "Section", "is_executable"]

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


class ElfFile:
    """An opened ELF file's section and program headers (`f` stays the caller's to close)."""

    def __init__(
        self, f: BinaryIO, size: int, ident: bytes, sections: list[Section], segments: list[_Segment]
    ):
        self.f = f
        self.size = size
        self.is64 = ident[4] == 2
        self.big_endian = ident[5] == 2
        self.sections = sections
        self.segments = segments

    @classmethod
    def open(cls, f: BinaryIO) -> ElfFile | None:
        """The headers of `f`, or None when it is not an ELF file (or its headers are broken)."""
        head = f.read(64)
        if len(head) < 52 or head[:4] != MAGIC or head[4] not in (1, 2) or head[5] not in (1, 2):
            return None
        size = f.seek(0, os.SEEK_END)
        e = ">" if head[5] == 2 else "<"
        try:
            if head[4] == 2:
                phoff, shoff = struct.unpack_from(e + "QQ", head, 32)
                phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(e + "HHHHH", head, 54)
            else:
                phoff, shoff = struct.unpack_from(e + "II", head, 28)
                phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(e + "HHHHH", head, 42)
        except struct.error:
            return None
        segments = cls._segments(f, e, head[4] == 2, phoff, phentsize, phnum, size)
        sections = cls._sections(f, e, head[4] == 2, shoff, shentsize, shnum, shstrndx, size)
        return cls(f, size, head[:16], sections, segments)

    @staticmethod
    def _table(f: BinaryIO, off: int, entsize: int, num: int, size: int) -> bytes:
        if not off or not num or entsize <= 0 or off + entsize * num > size or num > 65535:
            return b""
        f.seek(off)
        return f.read(entsize * num)

    @classmethod
    def _segments(
        cls, f: BinaryIO, e: str, is64: bool, off: int, entsize: int, num: int, size: int
    ) -> list[_Segment]:
        raw = cls._table(f, off, entsize, num, size)
        out: list[_Segment] = []
        for i in range(len(raw) // entsize if entsize else 0):
            b = i * entsize
            if is64:
                ptype, _flags, poff, vaddr, _paddr, filesz = struct.unpack_from(e + "IIQQQQ", raw, b)
            else:
                ptype, poff, vaddr, _paddr, filesz = struct.unpack_from(e + "IIIII", raw, b)
            if ptype == 1:  # PT_LOAD
                out.append(_Segment(vaddr, poff, filesz))
        return out

    @classmethod
    def _sections(
        cls, f: BinaryIO, e: str, is64: bool, off: int, entsize: int, num: int, strndx: int, size: int
    ) -> list[Section]:
        raw = cls._table(f, off, entsize, num, size)
        if not raw or strndx >= num:
            return []
        rows: list[tuple[int, int, int, int, int]] = []
        for i in range(num):
            b = i * entsize
            if is64:
                name, stype, _fl, addr, soff, ssize = struct.unpack_from(e + "IIQQQQ", raw, b)
            else:
                name, stype, _fl, addr, soff, ssize = struct.unpack_from(e + "IIIIII", raw, b)
            rows.append((name, stype, addr, soff, ssize))
        _n, _t, _a, stroff, strsize = rows[strndx]
        if stroff + strsize > size or strsize > 16 * 2**20:
            return []
        f.seek(stroff)
        strtab = f.read(strsize)
        out = []
        for name, stype, addr, soff, ssize in rows:
            end = strtab.find(b"\0", name)
            label = strtab[name : end if end >= 0 else len(strtab)].decode("latin-1")
            out.append(Section(label, addr, soff, ssize, stype == 8))  # SHT_NOBITS
        return out

    def section(self, name: str) -> Section | None:
        """The section called `name`, if the file has one."""
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def read_section(self, s: Section, limit: int = 64 * 2**20) -> bytes:
        """The bytes of `s` (empty for a NOBITS section or one past the end of the file)."""
        if s.nobits or s.offset + s.size > self.size or s.size > limit:
            return b""
        self.f.seek(s.offset)
        return self.f.read(s.size)

    def read_at(self, vaddr: int, n: int) -> bytes:
        """`n` bytes at virtual address `vaddr` (through the loadable segments; empty if unmapped)."""
        for seg in self.segments:
            if seg.vaddr <= vaddr and vaddr + n <= seg.vaddr + seg.filesz:
                self.f.seek(seg.offset + vaddr - seg.vaddr)
                return self.f.read(n)
        for s in self.sections:
            if s.addr and not s.nobits and s.addr <= vaddr and vaddr + n <= s.addr + s.size:
                self.f.seek(s.offset + vaddr - s.addr)
                return self.f.read(n)
        return b""
