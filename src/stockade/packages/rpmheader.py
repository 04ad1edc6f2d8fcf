"""RPM header blobs, as rpm stores them in its databases (sqlite, ndb and Berkeley DB alike).

A blob is the header without its 8-byte magic: the entry count and the data length (32-bit big
endian), then that many 16-byte index entries (tag, type, offset, count) and the data they point
into (rpm's doc/manual/format.md). Only the tags a package needs are decoded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["RpmHeader", "parse_header"]

NAME, VERSION, RELEASE, EPOCH = 1000, 1001, 1002, 1003
LICENSE, ARCH, SOURCERPM = 1014, 1022, 1044
OLDFILENAMES, DIRINDEXES, BASENAMES, DIRNAMES = 1027, 1116, 1117, 1118
_WANTED = frozenset(
    {NAME, VERSION, RELEASE, EPOCH, LICENSE, ARCH, SOURCERPM, OLDFILENAMES, DIRINDEXES, BASENAMES, DIRNAMES}
)
_INT32, _STRING, _BIN, _STRING_ARRAY, _I18NSTRING = 4, 6, 7, 8, 9
#: more entries or data than any real header has: a blob claiming it is corrupt
_MAX_ENTRIES, _MAX_DATA = 1 << 16, 256 << 20


@dataclass(frozen=True, slots=True)
class RpmHeader:
    """What a package's header says about it."""

    name: str
    version: str
    release: str
    epoch: int | None
    arch: str
    license: str
    sourcerpm: str
    files: tuple[str, ...]

    @property
    def evr(self) -> str:
        """``[epoch:]version-release``, the form rpm and OSV compare."""
        vr = f"{self.version}-{self.release}" if self.release else self.version
        return f"{self.epoch}:{vr}" if self.epoch is not None else vr

    @property
    def source(self) -> tuple[str, str] | None:
        """(name, version-release) of the source rpm (``bash-5.1.8-6.el9.src.rpm``)."""
        s = self.sourcerpm
        for suffix in (".src.rpm", ".nosrc.rpm"):
            if s.endswith(suffix):
                s = s[: -len(suffix)]
                break
        else:
            return None
        parts = s.rsplit("-", 2)
        if len(parts) != 3:
            return None
        return parts[0], f"{parts[1]}-{parts[2]}"


def _strings(data: bytes, offset: int, count: int) -> list[str]:
    out = []
    pos = offset
    for _ in range(count):
        end = data.find(b"\0", pos)
        if end < 0:
            raise ValueError("string runs past the header's data")
        out.append(data[pos:end].decode("utf-8", "replace"))
        pos = end + 1
    return out


def parse_header(blob: bytes) -> RpmHeader:
    """The package in one header blob; ValueError when the blob is not a well-formed header."""
    if len(blob) < 8:
        raise ValueError(f"header blob of {len(blob)} bytes is too short")
    il, dl = struct.unpack_from(">II", blob, 0)
    if il > _MAX_ENTRIES or dl > _MAX_DATA or 8 + il * 16 + dl > len(blob):
        raise ValueError(f"header claims {il} entries and {dl} data bytes, blob has {len(blob)}")
    data = blob[8 + il * 16 : 8 + il * 16 + dl]
    strs: dict[int, list[str]] = {}
    ints: dict[int, list[int]] = {}
    for i in range(il):
        tag, typ, off, count = struct.unpack_from(">IIiI", blob, 8 + i * 16)
        if tag not in _WANTED:
            continue
        if off < 0 or off > dl:
            raise ValueError(f"tag {tag} points outside the header's data")
        if typ in (_STRING, _STRING_ARRAY, _I18NSTRING):
            strs[tag] = _strings(data, off, 1 if typ == _STRING else count)
        elif typ == _INT32:
            if off + 4 * count > dl:
                raise ValueError(f"tag {tag} runs past the header's data")
            ints[tag] = list(struct.unpack_from(f">{count}i", data, off))

    def one(tag: int) -> str:
        v = strs.get(tag)
        return v[0] if v else ""

    name = one(NAME)
    if not name:
        raise ValueError("header has no package name")
    if BASENAMES in strs:
        dirs, bases, idx = strs.get(DIRNAMES, []), strs[BASENAMES], ints.get(DIRINDEXES, [])
        files = tuple(dirs[i] + b for i, b in zip(idx, bases, strict=False) if 0 <= i < len(dirs))
    else:
        files = tuple(strs.get(OLDFILENAMES, []))
    epoch = ints.get(EPOCH)
    return RpmHeader(
        name=name,
        version=one(VERSION),
        release=one(RELEASE),
        epoch=epoch[0] if epoch else None,
        arch=one(ARCH),
        license=one(LICENSE),
        sourcerpm=one(SOURCERPM),
        files=files,
    )
