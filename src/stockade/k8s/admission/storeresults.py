"""Cached scan results from the Stockade store: the image package sets the inventory keeps
(``package_sets`` rows of kind ``image``, written by the runtime's vulnerability watch) matched
against the store's advisory database, indexed by the image reference the row names and by the
image's manifest digest, which the inventory's image records know (``image@sha256:...`` in a pod is
then found whatever its tag).

Matching runs in the refresh thread, never at admission; an image is matched again only when its
catalog (``scan_key``) or the advisory database (its import sources) changed.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from stockade.k8s.admission.images import parse_image
from stockade.k8s.admission.vulnindex import ImageResult, VulnIndex
from stockade.model.package import Package
from stockade.storage.advisories import AdvisoryStore
from stockade.storage.inventory import InventoryStore
from stockade.storage.packages import PackageSetStore
from stockade.storage.store import Store
from stockade.vulns.match import match_packages

__all__ = ["StoreResults"]

_FIELDS = frozenset(f.name for f in dataclasses.fields(Package))


def _package(d: dict[str, Any]) -> Package:
    p = {k: v for k, v in d.items() if k in _FIELDS}
    return Package(**{**p, "licenses": tuple(p.get("licenses") or ()), "files": ()})


class StoreResults:
    """Builds a :class:`VulnIndex` of the store's images (call it from a refresh thread)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[tuple[str, str], ImageResult] = {}
        self._advisories: object = None

    def __call__(self) -> VulnIndex:
        """The index now."""
        adv = AdvisoryStore(self.store)
        sources = tuple((s.get("source"), s.get("imported_ns")) for s in adv.status().get("sources", []))
        if sources != self._advisories:
            self._cache.clear()
            self._advisories = sources
        by_ref: dict[str, ImageResult] = {}
        by_digest: dict[str, ImageResult] = {}
        digests = self._digests()
        cache: dict[tuple[str, str], ImageResult] = {}
        for row in PackageSetStore(self.store).load(["image"]):
            try:
                ref = parse_image(str(row.get("image") or row.get("name") or ""))
            except ValueError:
                continue
            key = (str(row["asset"]), str(row.get("scan_key") or ""))
            result = self._cache.get(key)
            if result is None:
                findings = match_packages([_package(p) for p in row.get("packages") or []], adv)
                result = ImageResult(
                    f"store:{row['asset']}", tuple((f.severity, bool(f.fixed), f.kev) for f in findings)
                )
            cache[key] = result
            by_ref[ref.name] = result
            digest = digests.get(str(row["asset"]).removeprefix("image:"))
            if digest:
                by_digest[digest] = result
        self._cache = cache
        return VulnIndex(by_digest, by_ref)

    def _digests(self) -> dict[str, str]:
        """Image id -> manifest digest, from the inventory's image records (every node's)."""
        out: dict[str, str] = {}
        for image in InventoryStore(self.store).images():
            digest, iid = image.get("digest"), image.get("id")
            if isinstance(digest, str) and digest.startswith("sha256:") and isinstance(iid, str):
                out[iid] = digest
        return out
