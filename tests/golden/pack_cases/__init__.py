"""Golden cases of the pack's technique families, one module per family file of the pack
(src/stockade/rules/builtin/stockade_NN_<family>.yaml): each module's ``CASES`` (a list of
:class:`pack_events.PackCase`) is gathered by test_rule_pack.py (:data:`FAMILY_CASES`)."""

from __future__ import annotations

import importlib
import pkgutil

from pack_events import PackCase

__all__ = ["FAMILY_CASES"]


def _gather() -> list[PackCase]:
    out: list[PackCase] = []
    for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        cases = importlib.import_module(f"{__name__}.{m.name}").CASES
        assert isinstance(cases, list) and all(isinstance(c, PackCase) for c in cases), m.name
        out.extend(cases)
    return out


#: every family module's cases, in module name order
FAMILY_CASES: list[PackCase] = _gather()
