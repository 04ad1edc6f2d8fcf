"""STIDE (Forrest et al. 1996; Warrender, Forrest & Pearlmutter 1999), the baseline: the n-grams of
normal sequences, kept; a sequence scores the share of its n-grams never seen (a sequence shorter
than n counts as one gram of its length)."""

from __future__ import annotations

from collections.abc import Sequence

from stockade.anomaly.interface import Calibration, WindowScore
from stockade.anomaly.ngram import DEFAULT_MAX_NGRAMS, NgramCounts, mask
from stockade.anomaly.vocab import DEFAULT_BITS, Symbol

__all__ = ["DEFAULT_WINDOW", "StideModel"]

#: n, the n-gram length: the classic STIDE window
DEFAULT_WINDOW = 6


class StideModel:
    """STIDE over n-grams of length ``order`` (see the module).

    Cost: ``observe`` is O(order) dict updates per symbol (every shorter gram is kept too, for
    sequences shorter than n); ``score_window`` is one set look-up per symbol."""

    kind = "stide"

    def __init__(
        self, order: int = DEFAULT_WINDOW, max_ngrams: int = DEFAULT_MAX_NGRAMS, bits: int = DEFAULT_BITS
    ) -> None:
        self.counts = NgramCounts(order, max_ngrams, bits)
        self.calibration: Calibration | None = None

    @property
    def order(self) -> int:
        """n, the n-gram length."""
        return self.counts.order

    def observe(self, seq: Sequence[Symbol], start: int = 0) -> None:
        """Learn the n-grams of a normal sequence (those ending before `start` are not counted)."""
        self.counts.observe(seq, start)

    def freeze(self) -> None:
        """Nothing to compile: the n-grams are looked up as they are."""

    def unseen(self, seq: Sequence[Symbol], start: int = 0) -> tuple[int, int, int]:
        """How many of the n-grams of `seq` ending at `start` or later were never seen, out of how
        many, and where the first unseen one ends (-1: none)."""
        ids = self.counts.vocab.encode(seq)
        n = min(self.order, len(ids))
        if n == 0:
            return 0, 0, -1
        bits = self.counts.bits
        table, m = self.counts.tables[n - 1], mask(n, bits)
        h, missed, total, first = 0, 0, 0, -1
        for i, s in enumerate(ids):
            h = ((h << bits) | s) & m
            if i + 1 < n or i < start:
                continue
            total += 1
            if h not in table:
                missed += 1
                if first < 0:
                    first = i
        return missed, total, first

    def score(self, seq: Sequence[Symbol], start: int = 0) -> float:
        """The share of the n-grams of `seq` never seen (0.0 .. 1.0)."""
        missed, total, _ = self.unseen(seq, start)
        return missed / total if total else 0.0

    def score_window(self, seq: Sequence[Symbol], start: int = 0) -> WindowScore:
        """The share of unseen n-grams, and the first unseen n-gram."""
        missed, total, first = self.unseen(seq, start)
        if first < 0:
            return WindowScore(0.0, start, start, ())
        lo = max(0, first - self.order + 1)
        return WindowScore(missed / total, lo, first + 1, tuple(seq[lo : first + 1]))
