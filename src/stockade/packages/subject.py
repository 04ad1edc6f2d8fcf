"""What an SBOM or a scan is about: a directory or an image, cataloged in one call.

:func:`catalog_target` takes what a user names on the command line (a root filesystem directory,
an image archive, an OCI layout, a podman image reference), catalogs it with
:func:`~stockade.packages.walk.catalog_tree` and returns the :class:`Catalog` with a
:class:`Subject` describing the target (its OS, :mod:`stockade.packages.osrelease`; for an image its digest,
id, tags, layers and, for each package's path, the layer that wrote it). ``stockade sbom`` and
``stockade scan rootfs|image`` both start here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from stockade.packages.cataloger import Cataloger, Tree
from stockade.packages.image import is_image_path, unpacked
from stockade.packages.osrelease import OsRelease, detect
from stockade.packages.walk import Catalog, catalog_tree

__all__ = ["Subject", "catalog_target", "os_release"]


@dataclass(slots=True)
class Subject:
    """The thing cataloged: a root filesystem directory or an image."""

    kind: Literal["rootfs", "image"]
    #: what the user named (a path or an image reference)
    target: str
    os: OsRelease | None = None
    #: images only: manifest digest (or config digest), image id, ``repo:tag`` names, layer diff_ids
    digest: str | None = None
    image_id: str | None = None
    repo_tags: list[str] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)
    #: images only: the image config document
    config: dict[str, Any] = field(default_factory=dict)
    #: images only: package path (inside the image) -> diff_id of the layer that wrote it
    layer_of: dict[str, str] = field(default_factory=dict)
    #: members of the image's layers that could not be unpacked: (member, reason)
    unpack_errors: list[tuple[str, str]] = field(default_factory=list)

    @property
    def name(self) -> str:
        """A name for documents: the image's first tag, else its digest, else the path."""
        if self.kind == "image":
            return (self.repo_tags[:1] or [self.digest or self.target])[0]
        return self.target


def os_release(root: str | Path) -> OsRelease | None:
    """The operating system of the tree at `root` (:func:`stockade.packages.osrelease.detect`)."""
    return detect(Tree(Path(root)))


def catalog_target(
    target: str | Path, catalogers: Sequence[Cataloger] | None = None
) -> tuple[Catalog, Subject]:
    """The packages of `target` (a directory, an image archive or layout, a podman image reference)
    and what `target` is."""
    path = Path(target)
    if path.is_dir() and not is_image_path(path):
        catalog = catalog_tree(path, catalogers)
        return catalog, Subject(kind="rootfs", target=str(target), os=os_release(path))
    with unpacked(target) as image:
        catalog = catalog_tree(image.root, catalogers)
        catalog.root = str(target)
        subject = Subject(
            kind="image",
            target=str(target),
            os=os_release(image.root),
            digest=image.digest,
            image_id=image.id,
            repo_tags=list(image.repo_tags),
            layers=list(image.layers),
            config=image.config,
            unpack_errors=list(image.errors),
        )
        for pkg in catalog.packages:
            layer = image.layer_of(pkg.path.partition("!")[0])
            if layer is not None:
                subject.layer_of[pkg.path] = layer
    return catalog, subject
