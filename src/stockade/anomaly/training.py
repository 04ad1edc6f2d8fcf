"""Training a sequence model on normal sequences, its threshold included (what ``stockade anomaly
train`` and the ADFA-LD benchmark run)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from stockade.anomaly.interface import Calibration
from stockade.anomaly.kinds import DEFAULT_KIND, Model, make_model
from stockade.anomaly.ngram import DEFAULT_MAX_NGRAMS
from stockade.anomaly.threshold import DEFAULT_FOLDS, DEFAULT_QUANTILE, calibrate, out_of_fold
from stockade.anomaly.vocab import DEFAULT_BITS, Symbol
from stockade.errors import UsageError

__all__ = ["Trained", "train"]


@dataclass(frozen=True, slots=True)
class Trained:
    """A model trained, and what it took: seconds to learn, seconds to learn the threshold."""

    model: Model
    fit_s: float
    calibrate_s: float

    @property
    def calibration(self) -> Calibration | None:
        """The threshold learned (None when none was)."""
        return self.model.calibration


def train(
    seqs: Sequence[Sequence[Symbol]],
    kind: str = DEFAULT_KIND,
    order: int | None = None,
    max_ngrams: int = DEFAULT_MAX_NGRAMS,
    quantile: float = DEFAULT_QUANTILE,
    folds: int = DEFAULT_FOLDS,
    bits: int = DEFAULT_BITS,
) -> Trained:
    """A model of `kind` learned from the normal `seqs`, frozen, with its threshold: the `quantile`
    of the scores of each sequence by a model trained without its fold (`folds` 0: no threshold)."""
    if not seqs:
        raise UsageError("no normal sequences to learn from")
    if folds and (folds < 2 or len(seqs) < folds):
        raise UsageError(
            f"learning the threshold with {folds} folds needs at least {max(folds, 2)} normal "
            f"sequences, and there are {len(seqs)} (--folds 0: no threshold)"
        )
    t0 = time.process_time()
    model = make_model(kind, order, max_ngrams, bits)
    for s in seqs:
        model.observe(s)
    model.freeze()
    t1 = time.process_time()
    if folds:
        scores = out_of_fold(lambda: make_model(kind, model.order, max_ngrams, bits), seqs, folds)
        method = f"{folds}-fold out-of-fold scores of the normal sequences trained on"
        model.calibration = calibrate(scores, quantile, method)
    return Trained(model, t1 - t0, time.process_time() - t1)
