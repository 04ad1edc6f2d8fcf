"""The alert threshold, learned from normal sequences only.

Scores of the sequences a model was trained on are optimistic (it has seen them), so the threshold
comes from scores of normal sequences the model did not see: ``out_of_fold`` trains one model per
fold on the other folds and scores the fold (cross-fitting), and the threshold is a high quantile of
those scores (the 99th percentile by default: about 1 % of normal sequences above it).

Online (a model learning from a stream, as the agent's), :class:`HeldOut` keeps every k-th window
out of training, bounded, to score once the model is frozen.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence

from stockade.anomaly.interface import Calibration, SequenceModel
from stockade.anomaly.vocab import Symbol

__all__ = ["DEFAULT_FOLDS", "DEFAULT_QUANTILE", "HeldOut", "calibrate", "out_of_fold", "quantile"]

DEFAULT_QUANTILE = 0.99
DEFAULT_FOLDS = 5


def quantile(scores: Sequence[float], q: float) -> float:
    """The smallest score with at least `q` (0..1) of `scores` at or below it."""
    if not scores:
        raise ValueError("a quantile of no scores")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} is not in 0..1")
    ordered = sorted(scores)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def out_of_fold(
    make: Callable[[], SequenceModel], seqs: Sequence[Sequence[Symbol]], folds: int = DEFAULT_FOLDS
) -> list[float]:
    """Each sequence's score by a model (from `make`) trained on the other folds (sequence ``i``
    is in fold ``i % folds``); in the order of `seqs`."""
    if folds < 2 or len(seqs) < folds:
        raise ValueError(f"{folds} folds need at least {max(folds, 2)} sequences, not {len(seqs)}")
    out = [0.0] * len(seqs)
    for f in range(folds):
        m = make()
        for i, s in enumerate(seqs):
            if i % folds != f:
                m.observe(s)
        m.freeze()
        for i in range(f, len(seqs), folds):
            out[i] = m.score(seqs[i])
    return out


def calibrate(scores: Sequence[float], q: float = DEFAULT_QUANTILE, method: str = "") -> Calibration:
    """The threshold that leaves about 1 - `q` of the normal `scores` above it."""
    return Calibration(quantile(scores, q), q, len(scores), method)


class HeldOut:
    """Normal windows kept out of training to learn the threshold from: every `every`-th window
    offered, the last `keep` of them (with the history each was offered with)."""

    __slots__ = ("_n", "every", "windows")

    def __init__(self, every: int = DEFAULT_FOLDS, keep: int = 1000) -> None:
        if every < 2 or keep < 1:
            raise ValueError(f"every must be 2 or more and keep 1 or more, not {every} and {keep}")
        self.every = every
        self._n = 0
        self.windows: deque[tuple[Sequence[Symbol], int]] = deque(maxlen=keep)

    def offer(self, seq: Sequence[Symbol], start: int = 0) -> bool:
        """True when the window is kept out (do not train on it); False: train on it."""
        self._n += 1
        if self._n % self.every:
            return False
        self.windows.append((seq, start))
        return True

    def calibrate(self, model: SequenceModel, q: float = DEFAULT_QUANTILE) -> Calibration:
        """The threshold from the windows kept, scored by `model` (frozen, trained on the others)."""
        scores = [model.score(seq, start) for seq, start in self.windows]
        return calibrate(scores, q, f"{len(scores)} held-out windows (1 in {self.every})")
