"""The header blobs of an rpm database, in each of its three formats, read without rpm.

* **sqlite** (``rpmdb.sqlite``, rpm >= 4.16: Fedora 33+, RHEL 9): table ``Packages(hnum, blob)``.
  The database and its write-ahead log are copied to a private directory first, so a scan never
  writes to (or needs write access to) the scanned tree.
* **ndb** (``Packages.db``, SUSE): rpm's own format (lib/backend/ndb/rpmpkg.c): a 32-byte header
  (``RpmP``, version 0, generation, slot pages), 16-byte slots (``Slot``, package index, block
  offset, block count) filling the slot pages, each blob at its block offset (16-byte blocks)
  between a ``BlbS`` head and a ``BlbE`` tail.
* **Berkeley DB** hash (``Packages``, RHEL <= 8, CentOS, Amazon Linux 2): the metadata page, then
  hash pages of key/value items; a header is a value stored on a chain of overflow pages (or
  inline when small). Read-only, either byte order, no checksummed or encrypted databases (rpm
  never made those).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

__all__ = ["RpmDbError", "bdb_blobs", "ndb_blobs", "sniff", "sqlite_blobs"]


class RpmDbError(ValueError):
    """The database is not in the format its name says."""


def sqlite_blobs(path: Path) -> list[bytes]:
    """The blobs of an rpmdb.sqlite at host path `path` (its -wal beside it read too)."""
    # imported here: most trees have no rpm database, and a scan's start-up should not pay for them
    import shutil
    import sqlite3
    import tempfile

    with tempfile.TemporaryDirectory(prefix="stockade-rpmdb-") as tmp:
        copy = Path(tmp) / "rpmdb.sqlite"
        shutil.copyfile(path, copy)
        wal = path.with_name(path.name + "-wal")
        if wal.is_file():
            shutil.copyfile(wal, copy.with_name(copy.name + "-wal"))
        try:
            db = sqlite3.connect(copy)
            try:
                return [bytes(row[0]) for row in db.execute("SELECT blob FROM Packages ORDER BY hnum")]
            finally:
                db.close()
        except sqlite3.Error as e:
            raise RpmDbError(f"not an rpm sqlite database: {e}") from e


_NDB_MAGIC, _NDB_SLOT, _NDB_HEAD, _NDB_TAIL = b"RpmP", b"Slot", b"BlbS", b"BlbE"
_PAGE, _SLOT, _BLK = 4096, 16, 16


def ndb_blobs(data: bytes) -> Iterator[bytes]:
    """The blobs of an ndb ``Packages.db``."""
    if len(data) < 32 or data[:4] != _NDB_MAGIC:
        raise RpmDbError("no ndb header (RpmP)")
    version, _generation, npages = struct.unpack_from("<III", data, 4)
    if version != 0:
        raise RpmDbError(f"ndb version {version}, only 0 is known")
    if npages * _PAGE > len(data):
        raise RpmDbError(f"ndb claims {npages} slot pages, the file is {len(data)} bytes")
    for off in range(32, npages * _PAGE, _SLOT):
        magic, pkgidx, blkoff, blkcnt = struct.unpack_from("<4sIII", data, off)
        if magic != _NDB_SLOT:
            raise RpmDbError(f"bad ndb slot at offset {off}")
        if blkoff == 0:
            continue
        start = blkoff * _BLK
        if start + 16 > len(data) or (blkoff + blkcnt) * _BLK > len(data):
            raise RpmDbError(f"ndb package {pkgidx}: blob beyond the end of the file")
        head, idx, _gen, length = struct.unpack_from("<4sIII", data, start)
        if head != _NDB_HEAD or idx != pkgidx:
            raise RpmDbError(f"ndb package {pkgidx}: bad blob head at offset {start}")
        tail = start + blkcnt * _BLK - 12
        if start + 16 + length > tail or struct.unpack_from("<I4s", data, tail + 4) != (length, _NDB_TAIL):
            raise RpmDbError(f"ndb package {pkgidx}: bad blob tail")
        yield data[start + 16 : start + 16 + length]


_HASH_MAGIC = 0x061561
_P_HASH_UNSORTED, _P_OVERFLOW, _P_HASH = 2, 7, 13
_H_KEYDATA, _H_OFFPAGE = 1, 3
_PAGE_HEADER = 26


class _Bdb:
    """A Berkeley DB hash database's pages, in the byte order its metadata page says."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 72:
            raise RpmDbError("too short for a Berkeley DB")
        for order in ("<", ">"):
            if struct.unpack_from(order + "I", data, 12)[0] == _HASH_MAGIC:
                break
        else:
            raise RpmDbError("not a Berkeley DB hash database")
        self.data, self.order = data, order
        (self.pagesize,) = struct.unpack_from(order + "I", data, 20)
        (last_pgno,) = struct.unpack_from(order + "I", data, 32)
        if data[24]:
            raise RpmDbError("encrypted Berkeley DB")
        if self.pagesize < 512 or self.pagesize > 65536 or self.pagesize & (self.pagesize - 1):
            raise RpmDbError(f"bad page size {self.pagesize}")
        self.npages = min(last_pgno + 1, len(data) // self.pagesize)

    def page(self, no: int) -> bytes:
        """Page `no`."""
        return self.data[no * self.pagesize : (no + 1) * self.pagesize]

    def u16(self, buf: bytes, off: int) -> int:
        """The 16-bit number at `off` in `buf`."""
        return int(struct.unpack_from(self.order + "H", buf, off)[0])

    def u32(self, buf: bytes, off: int) -> int:
        """The 32-bit number at `off` in `buf`."""
        return int(struct.unpack_from(self.order + "I", buf, off)[0])

    def overflow(self, pgno: int, total: int) -> bytes:
        """The `total` bytes stored on the chain of overflow pages starting at `pgno`."""
        chunks: list[bytes] = []
        got, hops = 0, 0
        while pgno and got < total:
            hops += 1
            if pgno >= self.npages or hops > self.npages:
                raise RpmDbError(f"overflow chain leaves the file at page {pgno}")
            p = self.page(pgno)
            if p[25] != _P_OVERFLOW:
                raise RpmDbError(f"page {pgno} is not an overflow page")
            length = self.u16(p, 22)
            chunks.append(p[_PAGE_HEADER : _PAGE_HEADER + length])
            got += length
            pgno = self.u32(p, 16)
        blob = b"".join(chunks)
        if len(blob) < total:
            raise RpmDbError(f"overflow chain ends after {len(blob)} of {total} bytes")
        return blob[:total]

    def values(self, no: int) -> Iterator[bytes]:
        """The values on hash page `no` (even items are keys, odd ones their values)."""
        p = self.page(no)
        entries = self.u16(p, 20)
        if _PAGE_HEADER + 2 * entries > self.pagesize:
            raise RpmDbError(f"page {no} claims {entries} entries")
        inp = struct.unpack_from(f"{self.order}{entries}H", p, _PAGE_HEADER)
        for i in range(1, entries, 2):
            off = inp[i]
            if off >= self.pagesize:
                raise RpmDbError(f"page {no}: item {i} outside the page")
            if p[off] == _H_OFFPAGE:
                yield self.overflow(self.u32(p, off + 4), self.u32(p, off + 8))
            elif p[off] == _H_KEYDATA:
                yield p[off + 1 : inp[i - 1]]


def bdb_blobs(data: bytes) -> Iterator[bytes]:
    """The values of a Berkeley DB hash database (rpm's ``Packages``)."""
    db = _Bdb(data)
    for no in range(1, db.npages):
        if db.page(no)[25] in (_P_HASH, _P_HASH_UNSORTED):
            yield from db.values(no)


def sniff(data: bytes) -> str | None:
    """Which format a database file's first bytes are: ``ndb``, ``bdb``, ``sqlite`` or None."""
    if data[:4] == _NDB_MAGIC:
        return "ndb"
    if data[:16] == b"SQLite format 3\0":
        return "sqlite"
    if len(data) >= 16 and _HASH_MAGIC in (
        struct.unpack_from("<I", data, 12)[0],
        struct.unpack_from(">I", data, 12)[0],
    ):
        return "bdb"
    return None
