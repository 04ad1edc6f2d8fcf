"""Package URLs (https://github.com/package-url/purl-spec), built one way for every cataloger."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

__all__ = ["purl"]


def _enc(s: str, safe: str = "") -> str:
    return quote(s, safe=safe)


def purl(
    type_: str,
    name: str,
    version: str | None = None,
    namespace: str | None = None,
    qualifiers: Mapping[str, str | None] | None = None,
    subpath: str | None = None,
) -> str:
    """``pkg:type/namespace/name@version?qualifiers#subpath``, each part percent-encoded as the
    spec says (qualifiers sorted by key, empty ones left out)."""
    out = f"pkg:{type_.lower()}/"
    if namespace:
        out += "/".join(_enc(seg) for seg in namespace.split("/") if seg) + "/"
    out += _enc(name)
    if version:
        out += "@" + _enc(version)
    quals = sorted((k.lower(), v) for k, v in (qualifiers or {}).items() if v)
    if quals:
        out += "?" + "&".join(f"{k}={_enc(v, safe='/:')}" for k, v in quals)
    if subpath:
        out += "#" + "/".join(_enc(seg) for seg in subpath.split("/") if seg not in ("", ".", ".."))
    return out
