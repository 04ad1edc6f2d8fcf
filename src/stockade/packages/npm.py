"""npm packages: every ``package.json`` with a name and a version (what is installed in
``node_modules``, and the project's own manifest, as Trivy reports it), and ``package-lock.json``
(lockfileVersion 1, 2 and 3) for scans of source trees.

Trivy's rootfs and image scans read ``package.json`` files and leave lock files out (a lock file
says what would be installed, ``node_modules`` what is): :class:`NpmCataloger` does the same and
is in the default list; :class:`NpmLockCataloger` is added for lock-file scans
(:func:`stockade.packages.registry.catalogers` with ``lockfiles=True``). Dev dependencies in a
lock file are left out, as Trivy does by default (they are not deployed); installed packages have
no dev marker and are all reported.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

from stockade.model.package import Package
from stockade.packages.cataloger import Tree, UnreadableFile
from stockade.packages.purl import purl

__all__ = ["NpmCataloger", "NpmLockCataloger", "npm_package"]


def npm_package(name: str, version: str, path: str, found_by: str, licenses: tuple[str, ...] = ()) -> Package:
    """A Package for npm `name` (``@scope/name`` or ``name``) at `version`."""
    scope, _, bare = name.rpartition("/")
    return Package(
        name=name,
        version=version,
        ecosystem="npm",
        purl=purl("npm", bare, version, namespace=scope),
        path=path,
        licenses=licenses,
        found_by=found_by,
    )


def _json(tree: Tree, inner: str) -> Any:
    try:
        return json.loads(tree.read_bytes(inner, 64 * 2**20))
    except (ValueError, UnicodeDecodeError) as e:
        raise UnreadableFile(f"{inner}: not JSON: {e}") from e


def _license(doc: dict[str, Any]) -> tuple[str, ...]:
    lic = doc.get("license")
    if isinstance(lic, str) and lic:
        return (lic,)
    if isinstance(lic, dict) and isinstance(lic.get("type"), str):
        return (lic["type"],)
    many = doc.get("licenses")
    if isinstance(many, list):
        return tuple(x["type"] for x in many if isinstance(x, dict) and isinstance(x.get("type"), str))
    return ()


class NpmCataloger:
    """``package.json`` files with a name and a version."""

    name = "npm"

    def wants(self, inner: str, filename: str, entry: os.DirEntry[str]) -> bool:  # noqa: ARG002
        """Every package.json."""
        return filename == "package.json"

    def read(self, tree: Tree, inner: str) -> Iterable[Package]:
        """The package the manifest names (nothing for one without a name or a version: a
        ``{"type": "module"}`` marker inside a package, a workspace root)."""
        doc = _json(tree, inner)
        if not isinstance(doc, dict):
            return
        name, version = doc.get("name"), doc.get("version")
        if isinstance(name, str) and isinstance(version, str) and name and version:
            yield npm_package(name, version, inner, self.name, _license(doc))


class NpmLockCataloger:
    """``package-lock.json`` (v1 ``dependencies`` tree, v2/v3 ``packages`` map); dev dependencies
    left out, links resolved, the root project left out."""

    name = "npm-lock"

    def __init__(self, include_dev: bool = False) -> None:
        self.include_dev = include_dev

    def wants(self, inner: str, filename: str, entry: os.DirEntry[str]) -> bool:  # noqa: ARG002
        """package-lock.json outside node_modules (npm's hidden node_modules/.package-lock.json is not one)."""
        return filename == "package-lock.json" and "/node_modules/" not in inner

    def read(self, tree: Tree, inner: str) -> Iterable[Package]:
        """The locked packages."""
        doc = _json(tree, inner)
        if not isinstance(doc, dict):
            raise UnreadableFile(f"{inner}: not a package-lock.json object")
        if isinstance(doc.get("packages"), dict):
            yield from self._v2(doc["packages"], inner)
        elif isinstance(doc.get("dependencies"), dict):
            yield from self._v1(doc["dependencies"], inner)

    def _v2(self, packages: dict[str, Any], inner: str) -> Iterator[Package]:
        for key, meta in packages.items():
            if not key or "node_modules/" not in key or not isinstance(meta, dict):
                continue
            if meta.get("link"):
                target = packages.get(meta.get("resolved", ""))
                if not isinstance(target, dict):
                    continue
                meta = {**target, "dev": meta.get("dev", target.get("dev"))}
            if meta.get("dev") and not self.include_dev:
                continue
            name = meta.get("name") or key.rsplit("node_modules/", 1)[-1]
            version = meta.get("version")
            if isinstance(name, str) and isinstance(version, str) and version:
                yield npm_package(name, version, inner, self.name, _license(meta))

    def _v1(self, deps: dict[str, Any], inner: str) -> Iterator[Package]:
        stack = list(deps.items())
        while stack:
            name, meta = stack.pop()
            if not isinstance(meta, dict):
                continue
            nested = meta.get("dependencies")
            if isinstance(nested, dict):
                stack.extend(nested.items())
            if meta.get("dev") and not self.include_dev:
                continue
            version = meta.get("version")
            if not isinstance(version, str) or not version or version.startswith(("file:", "link:")):
                continue
            if "://" in version or version.startswith("git"):
                continue
            yield npm_package(name, version, inner, self.name)
