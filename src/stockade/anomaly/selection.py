"""Choosing the order from normal sequences only: held-out normal likelihood.

A model that predicts normal sequences it has not seen better is a better model of normal; an order
is judged by the bits per symbol of held-out normal sequences (cross-validated), never by attacks.
"""

from __future__ import annotations

from collections.abc import Sequence

from stockade.anomaly.ngram import DEFAULT_MAX_NGRAMS
from stockade.anomaly.smoothed import KneserNeyModel
from stockade.anomaly.threshold import DEFAULT_FOLDS
from stockade.anomaly.vocab import Symbol

__all__ = ["heldout_bits"]


def heldout_bits(
    seqs: Sequence[Sequence[Symbol]],
    max_order: int,
    folds: int = DEFAULT_FOLDS,
    max_ngrams: int = DEFAULT_MAX_NGRAMS,
) -> list[float]:
    """For each order 1 .. `max_order`, the mean surprisal (bits per symbol) of every sequence of
    `seqs` under a Kneser-Ney model trained on the other folds (sequence ``i`` in fold
    ``i % folds``), with at most `max_ngrams` n-grams."""
    if folds < 2 or len(seqs) < folds:
        raise ValueError(f"{folds} folds need at least {max(folds, 2)} sequences, not {len(seqs)}")
    bits = [0.0] * max_order
    symbols = 0
    for f in range(folds):
        m = KneserNeyModel(max_order, max_ngrams)
        for i, s in enumerate(seqs):
            if i % folds != f:
                m.observe(s)
        held = seqs[f::folds]
        symbols += sum(len(s) for s in held)
        for k in range(1, max_order + 1):
            m.freeze(k)
            bits[k - 1] += sum(sum(m.surprisals(s)) for s in held)
    return [b / symbols for b in bits]
