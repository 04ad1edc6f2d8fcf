"""Version constraints of the emergency question (`stockade inventory find PKG --version RANGE`).

A RANGE is one or more alternatives separated by ``||``; each is constraints joined by ``,`` (all
must hold): ``<2.17``, ``>=1.0,<2.0``, ``==1.2.3`` (a bare version means ``==``), ``!=1.4``.
OSV's event form is accepted too: ``introduced:2.0.0,fixed:2.17.0`` (``last_affected:X`` is
``<=X``; ``introduced:0`` is any version). Versions compare as the package's ecosystem orders
them (:func:`stockade.vulns.versions.compare`), so ``<2.17`` holds for Debian's ``2.9-1`` and
not for PyPI's ``2.17.0rc1``'s successors.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from stockade.errors import UsageError

__all__ = ["VersionSpec"]

Compare = Callable[[str, str, str], int]

_OP = re.compile(r"^\s*(<=|>=|==|!=|<|>|=)?\s*(\S+)\s*$")
_OSV = {"introduced": ">=", "fixed": "<", "last_affected": "<=", "limit": "<"}


@dataclass(frozen=True, slots=True)
class VersionSpec:
    """A parsed RANGE (module docstring): alternatives of (operator, version) constraints."""

    text: str
    alternatives: tuple[tuple[tuple[str, str], ...], ...]

    @classmethod
    def parse(cls, text: str) -> VersionSpec:
        """Parse `text`; a UsageError naming the part that is not a constraint."""
        alts: list[tuple[tuple[str, str], ...]] = []
        for alt in text.split("||"):
            cons: list[tuple[str, str]] = []
            for part in alt.split(","):
                part = part.strip()
                if not part:
                    continue
                head, sep, rest = part.partition(":")
                if sep and head.strip() in _OSV:
                    ver = rest.strip()
                    if not ver:
                        raise UsageError(f"--version: {part!r}: no version after {head.strip()}:")
                    if head.strip() == "introduced" and ver == "0":
                        continue
                    cons.append((_OSV[head.strip()], ver))
                    continue
                m = _OP.match(part)
                if m is None or m.group(2)[0] in "<>=!":
                    raise UsageError(f"--version: {part!r} is not a constraint like <2.17, >=1.0 or ==1.2")
                op = m.group(1) or "=="
                cons.append(("==" if op == "=" else op, m.group(2)))
            alts.append(tuple(cons))
        if not any(alts) and text.strip() not in ("", "introduced:0"):
            raise UsageError(f"--version: {text!r} holds no constraint")
        return cls(text, tuple(alts))

    def matches(self, ecosystem: str, version: str, compare: Compare) -> bool:
        """Whether `version` (of `ecosystem`) satisfies the spec; a version the ecosystem's scheme
        cannot compare satisfies nothing."""
        for alt in self.alternatives:
            try:
                if all(_holds(op, compare(ecosystem, version, v)) for op, v in alt):
                    return True
            except (UsageError, ValueError, TypeError):
                continue
        return False


def _holds(op: str, c: int) -> bool:
    return {
        "<": c < 0,
        "<=": c <= 0,
        ">": c > 0,
        ">=": c >= 0,
        "==": c == 0,
        "!=": c != 0,
    }[op]
