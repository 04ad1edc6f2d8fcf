"""Reading a BPF ring buffer straight from its memory mapping, in batches, without callbacks.

The kernel maps a ring buffer map as: one read-write page holding the consumer position, then a
read-only page holding the producer position, then the data area mapped twice in a row (so a
record that wraps around reads as one contiguous range). Each record starts with an 8-byte header:
``u32 len`` (bit 31 = still being written, bit 30 = discarded) and ``u32 page offset``; records are
8-byte aligned. This reader walks committed records from the consumer position, hands each to a
decoder while the memory is still valid, collects what it returns, and publishes the new consumer
position once per batch: no per-record ctypes callback and no per-record wrapper call, which is
what decides the ceiling in Python. A decoder with a native walker (``Decoder.native``, see
:mod:`stockade.sensor.ebpf.events`) walks the records in C instead, with the same semantics.
"""

from __future__ import annotations

import ctypes
import mmap
import select
from collections.abc import Callable
from typing import Any, TypeVar

from stockade.sensor.ebpf.libbpf import BpfError

__all__ = ["MemoryRing", "RingBuffer"]

_BUSY = 1 << 31
_DISCARD = 1 << 30
_HDR = 8
_PAGE = mmap.PAGESIZE

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_long,
]
_libc.munmap.restype = ctypes.c_int
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_MAP_FAILED = ctypes.c_void_p(-1).value
T = TypeVar("T")


def _map(fd: int, length: int, prot: int, offset: int) -> int:
    addr = _libc.mmap(None, length, prot, mmap.MAP_SHARED, fd, offset)
    if addr is None or addr == _MAP_FAILED:
        err = ctypes.get_errno()
        raise BpfError(f"mmap of the ring buffer failed: errno {err}", err)
    return int(addr)


class RingBuffer:
    """A BPF_MAP_TYPE_RINGBUF map of `size` bytes (a power of two) opened by its fd."""

    def __init__(self, fd: int, size: int) -> None:
        if size <= 0 or size & (size - 1):
            raise BpfError(f"ring buffer size {size} is not a power of two")
        self.fd = fd
        self.size = size
        self.mask = size - 1
        self._cons_addr = _map(fd, _PAGE, mmap.PROT_READ | mmap.PROT_WRITE, 0)
        self._prod_len = _PAGE + 2 * size
        try:
            self._prod_addr = _map(fd, self._prod_len, mmap.PROT_READ, _PAGE)
        except BpfError:
            _libc.munmap(self._cons_addr, _PAGE)
            raise
        self._cons = ctypes.c_uint64.from_address(self._cons_addr)
        self._prod = ctypes.c_uint64.from_address(self._prod_addr)
        # the data area (twice), as a buffer struct can read (never written through)
        self._data = memoryview((ctypes.c_char * (2 * size)).from_address(self._prod_addr + _PAGE)).cast("B")
        self._u32 = self._data.cast("I")
        self._poller = select.poll()
        self._poller.register(fd, select.POLLIN)
        self._closed = False

    def pending(self) -> int:
        """Bytes written and not yet consumed."""
        return int(self._prod.value - self._cons.value)

    def wait(self, timeout_s: float) -> bool:
        """Wait until the kernel signals data (or `timeout_s` passes); True if data is there."""
        if self._prod.value != self._cons.value:
            return True
        self._poller.poll(max(int(timeout_s * 1000), 0))
        return self._prod.value != self._cons.value

    def consume(
        self,
        decode: Callable[[Any, int, int], T | None],
        out: list[T],
        max_records: int = 1 << 30,
        on_error: Callable[[Exception], None] | None = None,
    ) -> int:
        """Call ``decode(buffer, offset, size)`` for each committed record (up to `max_records`)
        and append what it returns, unless None, to `out`; returns the number of records read.
        Discarded records are skipped. A record `decode` raises on is skipped and the exception
        given to `on_error` (without one, it propagates once the records up to it are consumed).
        """
        if self._closed:
            return 0
        owner = getattr(decode, "__self__", None)
        native = getattr(owner, "native", None)
        if native is not None and getattr(decode, "__func__", None) is getattr(type(owner), "decode", None):
            # the decoder's own decode (not a wrapper of it): its native walker does the same walk
            n: int = native.consume(
                self._data,
                ctypes.addressof(self._cons),
                ctypes.addressof(self._prod),
                self.mask,
                max_records,
                decode,
                out,
                on_error,
            )
            return n
        cons = self._cons.value
        prod = self._prod.value
        mask = self.mask
        u32 = self._u32
        data = self._data
        append = out.append
        n = 0
        try:
            while cons < prod and n < max_records:
                off = cons & mask
                hlen = u32[off >> 2]
                if hlen & _BUSY:
                    break
                size = hlen & ~(_BUSY | _DISCARD)
                nxt = cons + ((size + _HDR + 7) & ~7)
                if not hlen & _DISCARD:
                    n += 1
                    try:
                        ev = decode(data, off + _HDR, size)
                    except Exception as e:
                        if on_error is None:
                            cons = nxt
                            raise
                        on_error(e)
                    else:
                        if ev is not None:
                            append(ev)
                cons = nxt
                if cons >= prod:
                    prod = self._prod.value
        finally:
            self._cons.value = cons
        return n

    def close(self) -> None:
        """Unmap the ring buffer (safe twice)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._poller.unregister(self.fd)
        except (KeyError, ValueError):
            pass
        self._data.release()
        self._u32.release()
        _libc.munmap(self._prod_addr, self._prod_len)
        _libc.munmap(self._cons_addr, _PAGE)


class MemoryRing(RingBuffer):
    """Records laid out as the kernel lays out a ring buffer (8-byte headers, 8-byte aligned), in
    ordinary memory, for :meth:`RingBuffer.consume` to walk: captured records replayed by tests and
    benchmarks. `discard`: indexes of records marked discarded (skipped by the walk)."""

    def __init__(self, records: list[bytes], discard: frozenset[int] = frozenset()) -> None:  # no map
        total = sum((len(r) + _HDR + 7) & ~7 for r in records)
        size = _PAGE
        while size < total + _HDR:
            size <<= 1
        self._buf = bytearray(2 * size)
        p = 0
        for i, r in enumerate(records):
            hlen = len(r) | (_DISCARD if i in discard else 0)
            self._buf[p : p + 4] = hlen.to_bytes(4, "little")
            self._buf[p + _HDR : p + _HDR + len(r)] = r
            p += (len(r) + _HDR + 7) & ~7
        self.fd = -1
        self.size = size
        self.mask = size - 1
        self._end = p
        self._cons = ctypes.c_uint64(0)
        self._prod = ctypes.c_uint64(p)
        self._data = memoryview(self._buf).cast("B")
        self._u32 = self._data.cast("I")
        self._closed = False

    def rewind(self) -> None:
        """Read the records again from the first."""
        self._cons.value = 0

    def close(self) -> None:
        """Release the memory views (safe twice)."""
        if not self._closed:
            self._closed = True
            self._u32.release()
            self._data.release()
