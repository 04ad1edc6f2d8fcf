"""Bounded n-gram counts: what a sequence model learns from normal sequences.

An n-gram of ids packs into one int, the oldest id in the high bits (``bits`` per id: 10 for
syscalls), so the last `k` ids of a packed history are ``h & mask(k, bits)``, a gram's context (all
but its last id) is ``g >> bits`` and its suffix (all but its first id) is ``g & mask(k - 1, bits)``.
One dict per order
maps a packed gram to its count.

Memory is bounded: at most ``max_ngrams`` distinct grams over all orders (about 100 bytes each in
CPython). Once the cap is reached a gram not seen yet is not learned (it is counted in
``dropped``): it stays unseen, so it scores as unusual; grams already learned keep counting.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from stockade.anomaly.vocab import DEFAULT_BITS, Symbol, Vocabulary

__all__ = ["DEFAULT_MAX_NGRAMS", "MAX_ORDER", "NgramCounts", "mask", "pack", "unpack"]

#: the default cap on distinct n-grams (all orders together): about 20 MB of CPython dicts
DEFAULT_MAX_NGRAMS = 200_000
#: the longest n-gram a model may count
MAX_ORDER = 16


def mask(k: int, bits: int = DEFAULT_BITS) -> int:
    """The bits of the last `k` ids of a packed history."""
    return (1 << (bits * k)) - 1


def unpack(gram: int, k: int, bits: int = DEFAULT_BITS) -> list[int]:
    """The `k` ids of a packed gram, oldest first."""
    m = (1 << bits) - 1
    return [(gram >> (bits * (k - 1 - j))) & m for j in range(k)]


def pack(ids: Sequence[int], bits: int = DEFAULT_BITS) -> int:
    """The packed gram of `ids` (oldest first)."""
    g = 0
    for i in ids:
        g = (g << bits) | i
    return g


class NgramCounts:
    """Counts of the n-grams of orders 1 .. ``order`` seen in the sequences observed, and of what
    was observed (``sequences``, ``symbols``) and not learned for the cap (``dropped``)."""

    __slots__ = ("bits", "dropped", "max_ngrams", "order", "sequences", "size", "symbols", "tables", "vocab")

    def __init__(self, order: int, max_ngrams: int = DEFAULT_MAX_NGRAMS, bits: int = DEFAULT_BITS) -> None:
        if not 1 <= order <= MAX_ORDER:
            raise ValueError(f"order must be 1 .. {MAX_ORDER}, not {order}")
        if max_ngrams < 1:
            raise ValueError(f"max_ngrams must be 1 or more, not {max_ngrams}")
        self.order = order
        self.max_ngrams = max_ngrams
        self.bits = bits
        self.vocab = Vocabulary(bits=bits)
        #: tables[k - 1]: packed k-gram -> count
        self.tables: list[dict[int, int]] = [{} for _ in range(order)]
        self.size = 0
        self.dropped = 0
        self.sequences = 0
        self.symbols = 0

    def observe(self, seq: Sequence[Symbol], start: int = 0) -> None:
        """Count the n-grams of `seq` that end at position `start` or later (the symbols before
        `start` are only history: the end of the previous window of the same stream)."""
        ids = self.vocab.learn(seq)
        self.sequences += 1
        self.symbols += max(0, len(ids) - start)
        bits = self.bits
        full = mask(self.order, bits)
        masks = [mask(k, bits) for k in range(self.order + 1)]
        tables, cap = self.tables, self.max_ngrams
        h = 0
        for i, s in enumerate(ids):
            h = ((h << bits) | s) & full
            if i < start:
                continue
            for k in range(1, min(i + 1, self.order) + 1):
                t = tables[k - 1]
                g = h & masks[k]
                c = t.get(g)
                if c is not None:
                    t[g] = c + 1
                elif self.size < cap:
                    t[g] = 1
                    self.size += 1
                else:
                    self.dropped += 1

    def grams(self, k: int) -> Iterator[tuple[list[int], int]]:
        """The k-grams (ids, oldest first) and their counts."""
        for g, c in self.tables[k - 1].items():
            yield unpack(g, k, self.bits), c

    def add(self, ids: Sequence[int], count: int) -> None:
        """Set the count of one gram (ids, oldest first), as read back from a model file."""
        t = self.tables[len(ids) - 1]
        g = pack(ids, self.bits)
        if g not in t:
            self.size += 1
        t[g] = count
