"""An AdmissionPolicy's label selectors, matched by the one matcher of :mod:`stockade.k8s.selectors`
(every ``matchLabels`` pair and every ``matchExpressions`` item must hold; empty matches all)."""

from __future__ import annotations

from collections.abc import Mapping

from stockade.k8s.admission.policy import LabelSelector
from stockade.k8s.selectors import selects as label_selects

__all__ = ["selects"]


def selects(selector: LabelSelector | None, labels: Mapping[str, str]) -> bool:
    """Whether `selector` (None: no selector) selects an object with `labels`."""
    return selector is None or label_selects(selector.model_dump(), labels)
