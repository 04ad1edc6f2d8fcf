"""Symbols (syscall numbers, or any event kind) to small dense ids, so n-grams pack into one int."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["DEFAULT_BITS", "MAX_BITS", "UNKNOWN", "Symbol", "Vocabulary", "capacity"]

#: what a sequence is made of: a syscall number, or a name (an event kind, a behaviour token)
Symbol = int | str

#: bits per symbol id in a packed n-gram: 10 for syscalls (1,023 symbols), up to 16 for names
#: (65,535: a workload's tokens)
DEFAULT_BITS = 10
MAX_BITS = 16
#: the id of every symbol not learned
UNKNOWN = 0


def capacity(bits: int) -> int:
    """How many symbols ids of `bits` bits can name (ids 1 .. 2**bits - 1; 0 is unknown)."""
    return (1 << bits) - 1


class Vocabulary:
    """The symbols learned, each with an id in 1 .. ``capacity(bits)`` in order of first sight;
    a symbol beyond the cap, or never learned, is :data:`UNKNOWN`."""

    __slots__ = ("_ids", "capacity", "symbols")

    def __init__(self, symbols: Iterable[Symbol] = (), bits: int = DEFAULT_BITS) -> None:
        if not 1 <= bits <= MAX_BITS:
            raise ValueError(f"bits must be 1 .. {MAX_BITS}, not {bits}")
        self.capacity = capacity(bits)
        self.symbols: list[Symbol] = []
        self._ids: dict[Symbol, int] = {}
        for s in symbols:
            self._add(s)

    def __len__(self) -> int:
        return len(self.symbols)

    def _add(self, s: Symbol) -> int:
        if len(self.symbols) >= self.capacity:
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

    def knows(self, symbol: Symbol) -> bool:
        """Whether `symbol` was learned."""
        return symbol in self._ids

    def encode(self, seq: Sequence[Symbol]) -> list[int]:
        """The ids of `seq`; a symbol not learned is :data:`UNKNOWN`."""
        get = self._ids.get
        return [get(s, UNKNOWN) for s in seq]

    def decode(self, ids: Sequence[int]) -> list[Symbol | None]:
        """The symbols of `ids` (None for :data:`UNKNOWN`)."""
        return [self.symbols[i - 1] if i else None for i in ids]
