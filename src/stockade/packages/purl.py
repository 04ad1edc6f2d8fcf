"""Package URLs (purl, https://github.com/package-url/purl-spec) for the catalogers.

One function, :func:`purl`, so every cataloger quotes names the same way: ``@`` in a scoped npm
name is ``%40``, ``/`` separates namespace segments, and the version is percent-encoded.
"""

from __future__ import annotations

import re
from urllib.parse import quote

__all__ = ["purl", "pypi_name"]

_PEP503 = re.compile(r"[-_.]+")


def _seg(s: str) -> str:
    return quote(s, safe="")


def purl(
    kind: str, name: str, version: str, namespace: str = "", qualifiers: dict[str, str] | None = None
) -> str:
    """``pkg:kind/namespace/name@version`` (namespace segments split on ``/``; empty parts left out)."""
    parts = [_seg(p) for p in namespace.split("/") if p] if namespace else []
    parts.append(_seg(name))
    out = f"pkg:{kind}/{'/'.join(parts)}"
    if version:
        out += "@" + quote(version, safe="")
    if qualifiers:
        out += "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in sorted(qualifiers.items()) if v)
    return out


def pypi_name(name: str) -> str:
    """A Python distribution's name normalised as PEP 503 (``Foo_Bar.baz`` -> ``foo-bar-baz``)."""
    return _PEP503.sub("-", name).lower()
