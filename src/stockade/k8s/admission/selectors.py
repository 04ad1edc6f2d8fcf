"""Kubernetes label selectors: every ``matchLabels`` pair and every ``matchExpressions`` item
must hold (``In``/``NotIn`` over values, ``Exists``/``DoesNotExist`` over the key); an empty
selector matches everything."""

from __future__ import annotations

from collections.abc import Mapping

from stockade.k8s.admission.policy import LabelSelector

__all__ = ["selects"]


def selects(selector: LabelSelector | None, labels: Mapping[str, str]) -> bool:
    """Whether `selector` (None: no selector) selects an object with `labels`."""
    if selector is None:
        return True
    for k, v in selector.matchLabels.items():
        if labels.get(k) != v:
            return False
    for e in selector.matchExpressions:
        present = e.key in labels
        if e.operator == "In" and not (present and labels[e.key] in e.values):
            return False
        if e.operator == "NotIn" and present and labels[e.key] in e.values:
            return False
        if e.operator == "Exists" and not present:
            return False
        if e.operator == "DoesNotExist" and present:
            return False
    return True
