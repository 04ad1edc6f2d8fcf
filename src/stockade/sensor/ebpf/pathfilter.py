"""The interest filter's maps: an :class:`~stockade.rules.interest.InterestPlan` as the eBPF program
reads it (``pf_fwd``, ``pf_rev``, ``pf_bits`` and the ``pf_classes`` of each syscall's spec row).

``pf_fwd`` is a longest-prefix-match trie of exact names (with their NUL) and prefixes, ``pf_rev``
one of reversed suffixes; each entry's value is the classes (bit mask) in which a path it matches
is kept, including those of every shorter entry that is a prefix of it (a trie lookup returns
only the longest match). ``pf_bits`` holds the byte pairs and hashed 4-byte windows of the
CONTAINS needles. Needles longer than :data:`~stockade.rules.interest.MAX_PATH` are left out:
the kernel keeps every longer path anyway.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from stockade.rules.interest import CONTAINS, EXACT, MAX_PATH, PREFIX, SUFFIX, InterestPlan

__all__ = ["KEY_DATA", "PathFilterMaps", "encode"]

#: bytes of path in a trie key (struct pf_key.data)
KEY_DATA = 256
_HALF = 8192  # bytes of each bitmap in struct pf_bits
_U32 = struct.Struct("<I")


def _key(data: bytes) -> bytes:
    return _U32.pack(8 * len(data)) + data.ljust(KEY_DATA, b"\0")


def _inherit(entries: dict[bytes, int]) -> dict[bytes, int]:
    """Each entry's classes with those of every entry that is a prefix of it."""
    out: dict[bytes, int] = {}
    for data, mask in entries.items():
        for other, m in entries.items():
            if data.startswith(other):
                mask |= m
        out[data] = mask
    return out


def _bitmap(bits: frozenset[int]) -> bytearray:
    out = bytearray(_HALF)
    for b in bits:
        out[b >> 3] |= 1 << (b & 7)
    return out


@dataclass(frozen=True, slots=True)
class PathFilterMaps:
    """The map contents: trie keys (struct pf_key) -> class mask, and the pf_bits value."""

    fwd: dict[bytes, int]
    rev: dict[bytes, int]
    bits: bytes


def encode(plan: InterestPlan) -> PathFilterMaps:
    """The maps that make the program drop what `plan` drops."""
    fwd: dict[bytes, int] = {}
    rev: dict[bytes, int] = {}
    for needle, mask in plan.needles.items():
        raw = needle.raw
        if len(raw) > MAX_PATH or needle.kind == CONTAINS:
            continue
        if needle.kind == EXACT:
            fwd[raw + b"\0"] = fwd.get(raw + b"\0", 0) | mask
        elif needle.kind == PREFIX:
            fwd[raw] = fwd.get(raw, 0) | mask
        elif needle.kind == SUFFIX:
            rev[raw[::-1]] = rev.get(raw[::-1], 0) | mask
    return PathFilterMaps(
        fwd={_key(d): m for d, m in _inherit(fwd).items()},
        rev={_key(d): m for d, m in _inherit(rev).items()},
        bits=bytes(_bitmap(plan.pairs) + _bitmap(plan.quads)),
    )
