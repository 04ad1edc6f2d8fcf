"""How well scores separate anomalous from normal: ROC AUC, and the detection rate at a false-alarm
rate (the threshold set on the normal scores alone)."""

from __future__ import annotations

from collections.abc import Sequence

from stockade.anomaly.threshold import quantile

__all__ = ["auc", "detection_at"]


def auc(normal: Sequence[float], anomalous: Sequence[float]) -> float:
    """The area under the ROC curve: the chance that an anomalous score is above a normal one (ties
    count one half); Mann-Whitney's U over the product of the sizes."""
    if not normal or not anomalous:
        raise ValueError("AUC needs normal and anomalous scores")
    ranked = sorted([(s, 0) for s in normal] + [(s, 1) for s in anomalous])
    rank_sum = 0.0
    i = 0
    while i < len(ranked):
        j = i
        while j < len(ranked) and ranked[j][0] == ranked[i][0]:
            j += 1
        mid = (i + j + 1) / 2  # the mean 1-based rank of the tie group i .. j-1
        rank_sum += mid * sum(lab for _, lab in ranked[i:j])
        i = j
    n1 = len(anomalous)
    return (rank_sum - n1 * (n1 + 1) / 2) / (n1 * len(normal))


def detection_at(normal: Sequence[float], anomalous: Sequence[float], false_alarms: float) -> float:
    """The share of anomalous scores above the threshold that lets `false_alarms` (0..1) of the
    normal scores through (the normal scores' 1 - `false_alarms` quantile)."""
    t = quantile(normal, 1.0 - false_alarms)
    return sum(s > t for s in anomalous) / len(anomalous) if anomalous else 0.0
