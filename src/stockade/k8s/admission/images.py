"""Image references as kube-apiserver passes them, normalised the way the container runtime reads
them: ``nginx`` is ``docker.io/library/nginx:latest``; a first component with a dot or a port, or
``localhost``, is a registry; ``index.docker.io`` is ``docker.io``.

Prefixes (``allowedRegistries``, the ``images`` of a signature rule) are read the same way and
match on whole components: ``registry.example.com:5000/team`` matches
``registry.example.com:5000/team/app`` but neither ``registry.example.com:5000/teams`` nor
``registry.example.com/team/app`` (another port is another registry), and ``docker.io/library``
matches ``nginx``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ImageRef", "matches_prefix", "parse_image"]

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_HUB_ALIASES = {"index.docker.io": "docker.io", "registry-1.docker.io": "docker.io"}


@dataclass(frozen=True, slots=True)
class ImageRef:
    """A normalised reference: registry, repository path, tag (None with a digest only), digest."""

    registry: str
    path: str
    tag: str | None
    digest: str | None  # sha256:<hex>

    @property
    def repository(self) -> str:
        """``registry/path``."""
        return f"{self.registry}/{self.path}"

    @property
    def name(self) -> str:
        """The full normalised reference (``docker.io/library/nginx:1.25@sha256:...``)."""
        tag = f":{self.tag}" if self.tag else ""
        dig = f"@{self.digest}" if self.digest else ""
        return f"{self.repository}{tag}{dig}"


def _split_registry(text: str) -> tuple[str, str]:
    first, sep, rest = text.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        reg = first.lower()
        return _HUB_ALIASES.get(reg, reg), rest
    return "docker.io", text


def parse_image(text: str) -> ImageRef:
    """`text` normalised (a ValueError saying why when it is no image reference)."""
    ref = text.strip()
    if not ref or any(c.isspace() for c in ref) or "://" in ref:
        raise ValueError(f"{text!r} is not an image reference")
    ref, _, digest = ref.partition("@")
    if digest and not _DIGEST.match(digest):
        raise ValueError(f"{text!r}: {digest!r} is not a sha256 digest")
    registry, rest = _split_registry(ref)
    path, tag = rest, None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        path, tag = rest[:colon], rest[colon + 1 :]
    if not path or path.startswith("/") or path.endswith("/") or "//" in path:
        raise ValueError(f"{text!r} is not an image reference")
    if registry == "docker.io" and "/" not in path:
        path = f"library/{path}"
    if tag is None and not digest:
        tag = "latest"
    return ImageRef(registry, path, tag, digest or None)


def _prefix(text: str) -> str:
    if "/" not in text and ("." in text or ":" in text or text == "localhost"):
        reg = text.lower()  # a registry alone
        return _HUB_ALIASES.get(reg, reg)
    registry, rest = _split_registry(text)
    if rest == text and "/" not in rest:  # no registry written: a Docker Hub official image
        rest = f"library/{rest}"
    return f"{registry}/{rest}"


def matches_prefix(image: ImageRef, prefix: str) -> bool:
    """Whether `image` is under `prefix` (whole components; module docstring)."""
    p = _prefix(prefix)
    repo = image.repository
    return repo == p or repo.startswith(p + "/")
