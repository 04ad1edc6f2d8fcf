"""Symbols (syscall numbers, or any event kind) to small dense ids, so n-grams pack into one int."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["BITS", "MAX_SYMBOLS", "UNKNOWN", "Symbol", "Vocabulary"]

#: what a sequence is made of: a syscall number, or a name (an event kind)
Symbol = int | str

#: bits per symbol id in a packed n-gram
BITS = 10
#: the id of every symbol not learned (id 0), and how many symbols can be learned (1 .. 1023)
UNKNOWN = 0
MAX_SYMBOLS = (1 << BITS) - 1


class Vocabulary:
    """The symbols learned, each with an id in 1 .. :data:`MAX_SYMBOLS` in order of first sight;
    a symbol beyond the cap, or never learned, is :data:`UNKNOWN`."""

    __slots__ = ("_ids", "symbols")

    def __init__(self, symbols: Iterable[Symbol] = ()) -> None:
        self.symbols: list[Symbol] = []
        self._ids: dict[Symbol, int] = {}
        for s in symbols:
            self._add(s)

    def __len__(self) -> int:
        return len(self.symbols)

    def _add(self, s: Symbol) -> int:
        if len(self.symbols) >= MAX_SYMBOLS:
            return UNKNOWN
        self.symbols.append(s)
        i = self._ids[s] = len(self.symbols)
        return i

    def learn(self, seq: Sequence[Symbol]) -> list[int]:
        """The ids of `seq`, learning the symbols not seen yet (while there is room)."""
        ids = self._ids
        out = []
        for s in seq:
            i = ids.get(s)
            out.append(self._add(s) if i is None else i)
        return out

    def encode(self, seq: Sequence[Symbol]) -> list[int]:
        """The ids of `seq`; a symbol not learned is :data:`UNKNOWN`."""
        get = self._ids.get
        return [get(s, UNKNOWN) for s in seq]

    def decode(self, ids: Sequence[int]) -> list[Symbol | None]:
        """The symbols of `ids` (None for :data:`UNKNOWN`)."""
        return [self.symbols[i - 1] if i else None for i in ids]
