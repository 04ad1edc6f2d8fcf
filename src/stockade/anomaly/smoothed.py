"""The interpolated Kneser-Ney n-gram model (modified discounts, Chen & Goodman 1998).

The probability of the next symbol mixes every order from the longest history seen down to a
uniform distribution::

    P_k(w | h) = max(c(hw) - D_k(c(hw)), 0) / c(h.) + gamma_k(h) * P_{k-1}(w | h')

where ``h'`` drops the oldest symbol of ``h``, ``P_0`` is uniform over every id a symbol can have
(``2**bits``: a syscall never seen is one of the 1,024 possible), the highest order counts n-grams and the lower ones
count distinct left contexts (Kneser-Ney's continuation counts: a symbol that follows many
histories is a likely continuation of an unseen one), and the three discounts per order come from
the counts of counts (no parameter to tune). A history never seen at order ``k`` backs off to
``k - 1``.

A sequence's score is its mean surprisal, ``-log2 P`` per symbol, in bits: the per-symbol negative
log-likelihood that Kim et al. (2016) score traces with, here from a model that trains in one pass
and scores with two dict look-ups per order and symbol.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from stockade.anomaly.interface import Calibration, WindowScore
from stockade.anomaly.ngram import DEFAULT_MAX_NGRAMS, MAX_ORDER, NgramCounts, mask
from stockade.anomaly.vocab import DEFAULT_BITS, Symbol

__all__ = ["DEFAULT_ORDER", "KneserNeyModel", "discounts"]

#: the default order (longest n-gram): chosen by held-out normal likelihood (docs/anomaly.md)
DEFAULT_ORDER = 6

_LN2 = math.log(2.0)
_DISCOUNT_SHARE = (0.05, 0.95)


def discounts(counts: Iterable[int]) -> tuple[float, float, float]:
    """The modified Kneser-Ney discounts D1, D2, D3+ from the counts of `counts` (Chen & Goodman's
    estimates from n1..n4, the numbers of grams seen once .. four times). Each is kept within 5 % ..
    95 % of the count it discounts: never 0, so that every history seen leaves some probability to
    what it was never seen with, and never all of it. Too few grams to count n1..n4 (one is 0):
    the usual 0.5, 1.0, 1.5."""
    n = [0, 0, 0, 0, 0]
    for c in counts:
        if c <= 4:
            n[c] += 1
    n1, n2, n3, n4 = n[1], n[2], n[3], n[4]
    if not (n1 and n2 and n3 and n4):
        return (0.5, 1.0, 1.5)
    y = n1 / (n1 + 2 * n2)
    raw = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    lo, hi = _DISCOUNT_SHARE
    d1, d2, d3 = (min(max(d, lo * c), hi * c) for c, d in enumerate(raw, 1))
    return (d1, d2, d3)


@dataclass(slots=True)
class _Order:
    """One order compiled: each gram's discounted share, and each context's back-off weight."""

    alpha: dict[int, float]
    gamma: dict[int, float]


def _continuation(lower: dict[int, int], higher: dict[int, int], k: int, bits: int) -> dict[int, int]:
    """Kneser-Ney's counts for the k-grams: how many distinct symbols came before each, plus one
    when it was also seen with nothing before it (at the start of a sequence)."""
    distinct: dict[int, int] = {}
    total: dict[int, int] = {}
    m = mask(k, bits)
    for g, c in higher.items():
        s = g & m
        distinct[s] = distinct.get(s, 0) + 1
        total[s] = total.get(s, 0) + c
    return {g: distinct.get(g, 0) + (c > total.get(g, 0)) for g, c in lower.items()}


def _compile(counts: dict[int, int], bits: int) -> _Order:
    d = (0.0, *discounts(counts.values()))
    ctx_total: dict[int, int] = {}
    ctx_mass: dict[int, float] = {}
    for g, c in counts.items():
        h = g >> bits
        ctx_total[h] = ctx_total.get(h, 0) + c
        ctx_mass[h] = ctx_mass.get(h, 0.0) + d[min(c, 3)]
    alpha = {g: (c - d[min(c, 3)]) / ctx_total[g >> bits] for g, c in counts.items()}
    gamma = {h: ctx_mass[h] / t for h, t in ctx_total.items()}
    return _Order(alpha, gamma)


class KneserNeyModel:
    """An interpolated, modified Kneser-Ney n-gram model of normal sequences (see the module).

    Cost: ``observe`` is O(order) dict updates per symbol; ``freeze`` is O(n-grams);
    ``score_window`` is at most 2 x order dict look-ups per symbol (fewer where a history was never
    seen). Memory: the counts (at most ``max_ngrams``) and, once frozen, one float per n-gram and
    per context.
    """

    kind = "kneser-ney"

    def __init__(
        self, order: int = DEFAULT_ORDER, max_ngrams: int = DEFAULT_MAX_NGRAMS, bits: int = DEFAULT_BITS
    ) -> None:
        self.counts = NgramCounts(order, max_ngrams, bits)
        self._masks = [mask(k, bits) for k in range(MAX_ORDER + 1)]
        self.calibration: Calibration | None = None
        self._orders: list[_Order] = []
        self._floor = 0.0
        self._known: dict[int, float] = {}

    @property
    def order(self) -> int:
        """The longest n-gram the model counts."""
        return self.counts.order

    def observe(self, seq: Sequence[Symbol], start: int = 0) -> None:
        """Learn from a normal sequence (positions before `start` are history only); call
        :meth:`freeze` before scoring again."""
        self.counts.observe(seq, start)
        self._orders = []

    def freeze(self, order: int | None = None) -> None:
        """Compile the probabilities from the counts, using n-grams up to `order` (default: all)."""
        top = self.order if order is None else order
        if not 1 <= top <= self.order:
            raise ValueError(f"order {top} is not in 1..{self.order}")
        tables, bits = self.counts.tables, self.counts.bits
        compiled = [_compile(tables[top - 1], bits)]
        for k in range(top - 1, 0, -1):
            compiled.append(_compile(_continuation(tables[k - 1], tables[k], k, bits), bits))
        self._orders = compiled[::-1]
        # any symbol, learned or not, keeps a share: uniform over every id a symbol can have
        self._floor = 1.0 / (1 << bits)
        # the surprisal after every full history seen, ready: normal streams mostly take this path
        self._known = {}
        self._known = {g: self._surprisal(g, top) for g in tables[top - 1]}

    def _surprisal(self, h: int, n: int) -> float:
        """``-log2 P`` of the last id of the packed history `h` of `n` ids, given the others."""
        known = self._known.get(h) if n == len(self._orders) else None
        if known is not None:
            return known
        p, bits = self._floor, self.counts.bits
        for k in range(1, n + 1):
            o = self._orders[k - 1]
            g = h & self._masks[k]
            w = o.gamma.get(g >> bits)
            if w is None:
                break  # a history never seen: no longer one was seen either
            p = o.alpha.get(g, 0.0) + w * p
        return -math.log(p) / _LN2

    def surprisals(self, seq: Sequence[Symbol], start: int = 0) -> list[float]:
        """``-log2 P(symbol | history)`` for each position from `start` on."""
        if not self._orders:
            self.freeze()
        ids = self.counts.vocab.encode(seq)
        top = len(self._orders)
        full, known, surprisal, bits = self._masks[top], self._known, self._surprisal, self.counts.bits
        out: list[float] = []
        h = 0
        for i, s in enumerate(ids):
            h = ((h << bits) | s) & full
            if i >= start:
                v = known.get(h) if i + 1 >= top else None
                out.append(surprisal(h, min(i + 1, top)) if v is None else v)
        return out

    def score(self, seq: Sequence[Symbol], start: int = 0) -> float:
        """The mean surprisal of `seq` in bits per symbol (0.0 for nothing to score)."""
        s = self.surprisals(seq, start)
        return sum(s) / len(s) if s else 0.0

    def score_window(self, seq: Sequence[Symbol], start: int = 0) -> WindowScore:
        """The window's mean surprisal, and its least expected symbol with the history the model
        predicted it from."""
        s = self.surprisals(seq, start)
        if not s:
            return WindowScore(0.0, start, start, ())
        worst = max(range(len(s)), key=s.__getitem__) + start
        lo = max(0, worst - self.order + 1)
        return WindowScore(sum(s) / len(s), lo, worst + 1, tuple(seq[lo : worst + 1]))
