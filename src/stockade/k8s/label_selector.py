"""Kubernetes label selectors (``metav1.LabelSelector``) on an object's labels: used by ClusterRole
aggregation (:mod:`stockade.k8s.rbac.authorizer`) and fit for any other selector (namespace and
object selectors of webhooks, NetworkPolicy pod selectors)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["label_selector_matches"]


def label_selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels, matchExpressions In/NotIn/Exists/DoesNotExist) on
    `labels`; an empty selector matches everything."""
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not isinstance(match_labels, Mapping) or not isinstance(expressions, list):
        return False  # an invalid selector selects nothing
    for k, v in match_labels.items():
        if labels.get(k) != v:
            return False
    for e in expressions:
        if not isinstance(e, Mapping):
            return False
        key, op, values = str(e.get("key")), e.get("operator"), e.get("values") or []
        value = labels.get(key)
        if op == "In" and value not in values:
            return False
        if op == "NotIn" and value is not None and value in values:
            return False
        if op == "Exists" and value is None:
            return False
        if op == "DoesNotExist" and value is not None:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False  # an invalid selector selects nothing
    return True
