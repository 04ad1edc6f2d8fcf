"""Every cataloger, in the order their packages are listed."""

from __future__ import annotations

from stockade.packages.cataloger import Cataloger

__all__ = ["catalogers"]


def catalogers() -> list[Cataloger]:
    """A fresh instance of every cataloger (some keep state across one walk)."""
    found: list[Cataloger] = []
    return found
