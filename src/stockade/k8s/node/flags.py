"""How a flag or configuration setting is judged, for every component: the rules (equals,
includes, lacks, set, unset, not zero, a subset of allowed values), an item that applies one rule
to one setting, and the verdict with its evidence.

A setting that is not written anywhere takes the component's default, which the item names (the
kubelet's defaults differ between its flags and its configuration file: ``--anonymous-auth``
defaults to true, ``authentication.anonymous.enabled`` to false); the evidence then says
``(default)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stockade.k8s.node.result import Evidence, NodeResult

__all__ = [
    "Item",
    "Rule",
    "at_least",
    "equals",
    "includes",
    "is_set",
    "lacks",
    "not_false",
    "not_set",
    "not_zero",
    "subset_of",
    "verdict",
]

#: a rule: the effective value (None: not set and no default) -> (status, message)
Rule = Callable[[str | None], tuple[str, str]]

_TRUE = ("true", "1", "yes", "on")


def _norm(v: str | None) -> str | None:
    return None if v is None else v.strip().strip("\"'")


def equals(expected: str, status_if_not: str = "fail") -> Rule:
    """Pass when the value is `expected` (booleans compared as true/false)."""

    def rule(v: str | None) -> tuple[str, str]:
        v = _norm(v)
        if v is not None and expected in ("true", "false"):
            v = "true" if v.lower() in _TRUE else "false" if v.lower() in ("false", "0", "no", "off") else v
        if v == expected:
            return "pass", f"is {expected}"
        return status_if_not, f"is {v if v is not None else 'not set'}, not {expected}"

    return rule


def _items(v: str | None) -> list[str]:
    return [x.strip() for x in (_norm(v) or "").split(",") if x.strip()]


def _membership(item: str, wanted: bool) -> Rule:
    """Pass when the comma-separated value includes `item` (`wanted`) or does not (not `wanted`)."""

    def rule(v: str | None) -> tuple[str, str]:
        has = item in _items(v)
        shown = f"{_norm(v) or 'not set'}: " if has != wanted else ""
        return (
            "pass" if has == wanted else "fail"
        ), f"{shown}{'includes' if has else 'does not include'} {item}"

    return rule


def includes(wanted: str) -> Rule:
    """Pass when the comma-separated value includes `wanted`."""
    return _membership(wanted, True)


def lacks(unwanted: str) -> Rule:
    """Pass when the comma-separated value does not include `unwanted`."""
    return _membership(unwanted, False)


def is_set(status_if_not: str = "fail") -> Rule:
    """Pass when the setting is given (with a non-empty value)."""

    def rule(v: str | None) -> tuple[str, str]:
        return ("pass", f"is set ({_norm(v)})") if _norm(v) else (status_if_not, "is not set")

    return rule


def not_set(status_if_set: str = "fail") -> Rule:
    """Pass when the setting is not given."""

    def rule(v: str | None) -> tuple[str, str]:
        return ("pass", "is not set") if not _norm(v) else (status_if_set, f"is set ({_norm(v)})")

    return rule


def not_false() -> Rule:
    """Pass unless the value is false (unset passes: the default is taken as safe)."""

    def rule(v: str | None) -> tuple[str, str]:
        n = _norm(v)
        return (
            ("fail", "is false")
            if n is not None and n.lower() == "false"
            else ("pass", f"is {n or 'not set'}")
        )

    return rule


def not_zero() -> Rule:
    """Pass when the value (a number or Go duration) is not zero: ``0``, ``0s``, ``0m0s`` fail."""

    def rule(v: str | None) -> tuple[str, str]:
        n = _norm(v)
        if n is None:
            return "pass", "is not set"
        zero = all(ch in "0.hms" for ch in n) and not any(ch in "123456789" for ch in n)
        return ("fail", f"is {n}: no limit") if zero else ("pass", f"is {n}")

    return rule


def at_least(minimum: int, status_if_less: str = "fail") -> Rule:
    """Pass when the value is an integer >= `minimum`."""

    def rule(v: str | None) -> tuple[str, str]:
        n = _norm(v)
        try:
            ok = n is not None and int(n) >= minimum
        except ValueError:
            ok = False
        return ("pass", f"is {n}") if ok else (status_if_less, f"is {n or 'not set'}, not >= {minimum}")

    return rule


def subset_of(allowed: Sequence[str], status_if_unset: str = "warn") -> Rule:
    """Pass when every comma-separated value is one of `allowed`; `status_if_unset` when unset."""

    def rule(v: str | None) -> tuple[str, str]:
        got = _items(v)
        if not got:
            return status_if_unset, "is not set (the Go defaults include weaker suites)"
        bad = [x for x in got if x not in allowed]
        return ("fail", f"weak: {','.join(bad)}") if bad else ("pass", "only strong suites")

    return rule


@dataclass(frozen=True, slots=True)
class Item:
    """What a node item is: its id, CIS id, component, title, severity, remediation."""

    id: str
    cis: str
    component: str
    title: str
    severity: str
    remediation: str

    def result(self, status: str, message: str, *evidence: Evidence) -> NodeResult:
        """This item's verdict."""
        return NodeResult(
            self.id, self.cis, self.component, self.title, self.severity, status, message,
            self.remediation, tuple(evidence),
        )  # fmt: skip


def verdict(
    item: Item, rule: Rule, name: str, value: str | None, where: Evidence | None, default: str | None
) -> NodeResult:
    """Apply `rule` to a setting `name`: its value as found at `where`, else its `default`."""
    if where is None:
        status, msg = rule(default)
        return item.result(
            status, f"{name} {msg}", Evidence("(not set)" if default is None else "(default)", None, default)
        )
    status, msg = rule(value)
    return item.result(status, f"{name} {msg}", where)
