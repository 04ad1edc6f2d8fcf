"""Container image references: ``registry:5000/ns/app:1.2@sha256:...``."""

from __future__ import annotations


def split_image(ref: str | None) -> tuple[str | None, str | None, str | None]:
    """(repository, tag, digest) of an image reference; a registry port is not a tag; missing parts
    are None."""
    if not ref:
        return None, None, None
    name, _, digest = ref.partition("@")
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :] or None, digest or None
    return name, None, digest or None
