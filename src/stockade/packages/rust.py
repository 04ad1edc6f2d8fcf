"""Rust crates: ``cargo auditable`` data in binaries, and ``Cargo.lock``.

``cargo auditable`` embeds the dependency tree as zlib-compressed JSON in an ELF section named
``.dep-v0`` (``{"packages": [{"name", "version", "source", "kind", "root", ...}]}``); build
dependencies (``"kind": "build"``) are not in the binary and are left out, as Trivy does.
``Cargo.lock`` is read too: unlike npm's lock file, Trivy's rootfs scan reports it (checked with
Trivy 0.59), every ``[[package]]`` including the workspace's own crates.
"""

from __future__ import annotations

import json
import os
import tomllib
import zlib
from collections.abc import Iterable

from stockade.model.package import Package
from stockade.packages.cataloger import Tree, UnreadableFile
from stockade.packages.elf import ElfFile, elf_info, is_executable
from stockade.packages.purl import purl

__all__ = ["CargoLockCataloger", "RustBinaryCataloger", "crate"]

SECTION = ".dep-v0"


def crate(name: str, version: str, path: str, found_by: str, files: tuple[str, ...] = ()) -> Package:
    """A Package for crate `name` at `version`."""
    return Package(
        name=name,
        version=version,
        ecosystem="crates.io",
        purl=purl("cargo", name, version),
        path=path,
        files=files,
        found_by=found_by,
    )


class RustBinaryCataloger:
    """Binaries built with ``cargo auditable``."""

    name = "rustbinary"

    def wants(self, inner: str, filename: str, entry: os.DirEntry[str]) -> bool:  # noqa: ARG002
        """Regular files with an exec bit (the ELF magic and section are checked in read)."""
        return is_executable(entry)

    def read(self, tree: Tree, inner: str) -> Iterable[Package]:
        """The runtime crates recorded in the binary (nothing for a binary without the section)."""
        try:
            host = str(tree.host_path(inner))
            info = elf_info(host)
            sect = info.sections.get(SECTION) if info is not None else None
            if info is None or sect is None:
                return []
            with open(host, "rb") as f:
                raw = ElfFile(f, info).read_section(sect, limit=16 * 2**20)
        except OSError as e:
            raise UnreadableFile(f"{inner}: {e.strerror or e}") from e
        try:
            doc = json.loads(zlib.decompressobj().decompress(raw, 64 * 2**20))
        except (zlib.error, ValueError) as e:
            raise UnreadableFile(f"{inner}: unreadable {SECTION} section: {e}") from e
        pkgs = doc.get("packages") if isinstance(doc, dict) else None
        if not isinstance(pkgs, list):
            raise UnreadableFile(f"{inner}: {SECTION} section has no package list")
        out = []
        for p in pkgs:
            if not isinstance(p, dict) or p.get("kind", "runtime") != "runtime":
                continue
            name, version = p.get("name"), p.get("version")
            if isinstance(name, str) and isinstance(version, str) and name and version:
                out.append(crate(name, version, inner, self.name, (inner,)))
        return out


class CargoLockCataloger:
    """``Cargo.lock`` files (every locked package)."""

    name = "cargo-lock"

    def wants(self, inner: str, filename: str, entry: os.DirEntry[str]) -> bool:  # noqa: ARG002
        """Files named Cargo.lock."""
        return filename == "Cargo.lock"

    def read(self, tree: Tree, inner: str) -> Iterable[Package]:
        """The ``[[package]]`` entries."""
        try:
            doc = tomllib.loads(tree.read_text(inner, 32 * 2**20))
        except tomllib.TOMLDecodeError as e:
            raise UnreadableFile(f"{inner}: not TOML: {e}") from e
        out = []
        for p in doc.get("package", []):
            name, version = p.get("name"), p.get("version")
            if isinstance(name, str) and isinstance(version, str) and name and version:
                out.append(crate(name, version, inner, self.name))
        return out
