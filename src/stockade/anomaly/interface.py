"""What every sequence model gives: a score per window, and the part of the window that made it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from stockade.anomaly.ngram import NgramCounts
from stockade.anomaly.vocab import Symbol

__all__ = ["Calibration", "SequenceModel", "WindowScore"]


@dataclass(frozen=True, slots=True)
class WindowScore:
    """A window's score (higher = more unusual) and its most unusual part: the symbols
    ``seq[start:end]`` of the window scored (the least expected symbol with the history the model
    used to predict it, or the first unseen n-gram)."""

    score: float
    start: int
    end: int
    unusual: tuple[Symbol, ...]


@dataclass(frozen=True, slots=True)
class Calibration:
    """The alert threshold (a score above it is anomalous) and where it came from: the `quantile`
    of `scores` normal scores, computed as `method` says."""

    threshold: float
    quantile: float
    scores: int
    method: str


class SequenceModel(Protocol):
    """A model of normal sequences: learn (``observe``), then ``freeze``, then score."""

    kind: str
    #: what was learned (the model file saves these)
    counts: NgramCounts
    #: the alert threshold, learned from normal sequences only (None until calibrated)
    calibration: Calibration | None

    @property
    def order(self) -> int:
        """The longest n-gram the model uses."""
        ...

    def observe(self, seq: Sequence[Symbol], start: int = 0) -> None:
        """Learn from a normal sequence (positions before `start` are history only)."""
        ...

    def freeze(self) -> None:
        """Make what was observed ready to score (again, after more ``observe``)."""
        ...

    def score(self, seq: Sequence[Symbol], start: int = 0) -> float:
        """How unusual `seq` is (positions before `start` are history only)."""
        ...

    def score_window(self, seq: Sequence[Symbol], start: int = 0) -> WindowScore:
        """How unusual `seq` is, and its most unusual part."""
        ...
