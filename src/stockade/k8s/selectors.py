"""Kubernetes label selectors (``matchLabels`` and ``matchExpressions``), as the API server
evaluates them: one place for NetworkPolicy coverage, RBAC aggregation and admission matching."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["selects"]


def selects(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """Whether a LabelSelector (matchLabels and matchExpressions; empty selects all) selects
    `labels`."""
    ml = selector.get("matchLabels")
    if isinstance(ml, Mapping) and any(labels.get(k) != v for k, v in ml.items()):
        return False
    exprs = selector.get("matchExpressions")
    for e in exprs if isinstance(exprs, list) else []:
        if not isinstance(e, Mapping):
            return False
        key, op = str(e.get("key")), e.get("operator")
        raw = e.get("values")
        values: list[Any] = raw if isinstance(raw, list) else []
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }.get(str(op), False)
        if not ok:
            return False
    return True
