"""Python distributions: ``*.dist-info/METADATA``, ``*.egg-info/PKG-INFO``, ``EGG-INFO/PKG-INFO``,
one-file ``*.egg-info`` (what distutils and Debian install) and zipped ``*.egg`` files.

The name is kept as the metadata writes it (``Django``); the purl carries it as purl-spec says
(``pkg:pypi/django@3.2``: lowercased, ``_`` as ``-``, dots kept, as Trivy writes it; PEP 503 would
also turn dots into dashes: :func:`pypi_name` gives that form, for matching advisories). The files a distribution installed come from ``RECORD``
(dist-info), ``installed-files.txt`` (pip's record for egg-info) or, failing that, ``SOURCES.txt``,
as absolute paths in the tree: the inventory maps a module a process imported to its package.
Only the metadata headers are parsed (up to the first blank line: the long description that
follows can be most of the file).
"""

from __future__ import annotations

import csv
import os
import posixpath
import re
import zipfile
from collections.abc import Iterable

from stockade.model.package import Package
from stockade.packages.cataloger import Tree, UnreadableFile
from stockade.packages.purl import purl

__all__ = ["PythonCataloger", "parse_metadata", "purl_name", "pypi_name"]

_PEP503 = re.compile(r"[-_.]+")

#: metadata files are small; the headers we need are at the top
_LIMIT = 8 * 2**20


def purl_name(name: str) -> str:
    """A distribution's name as purls spell it (purl-spec: lowercased, ``_`` as ``-``; dots kept,
    as Trivy writes them too)."""
    return name.lower().replace("_", "-")


def pypi_name(name: str) -> str:
    """A distribution's name normalised as PEP 503 (``Foo_Bar.baz`` -> ``foo-bar-baz``), as OSV and
    purls spell it."""
    return _PEP503.sub("-", name).lower()


def parse_metadata(text: str) -> dict[str, list[str]]:
    """The header fields of a METADATA / PKG-INFO document (RFC 822 style, continuation lines joined)."""
    fields: dict[str, list[str]] = {}
    last: str | None = None
    for line in text.splitlines():
        if not line.strip():
            break
        if line[0] in " \t" and last is not None:
            fields[last][-1] += "\n" + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        last = key.strip().lower()
        fields.setdefault(last, []).append(value.strip())
    return fields


def _licenses(fields: dict[str, list[str]]) -> tuple[str, ...]:
    expr = fields.get("license-expression")
    if expr:
        return (expr[0],)
    lic = [v for v in fields.get("license", []) if v and v.upper() != "UNKNOWN" and "\n" not in v]
    if lic:
        return (lic[0],)
    out = []
    for c in fields.get("classifier", []):
        if c.startswith("License ::"):
            name = c.rsplit("::", 1)[-1].strip()
            if name and name != "OSI Approved":
                out.append(name)
    return tuple(out)


class PythonCataloger:
    """Installed Python distributions (site-packages, dist-packages, project egg-info)."""

    name = "python"

    def wants(self, inner: str, filename: str, entry: os.DirEntry[str]) -> bool:  # noqa: ARG002
        """dist-info METADATA, egg-info PKG-INFO, EGG-INFO/PKG-INFO, one-file egg-info and zipped eggs."""
        if filename == "METADATA":
            return inner.endswith(".dist-info/METADATA")
        if filename == "PKG-INFO":
            return inner.endswith((".egg-info/PKG-INFO", "/EGG-INFO/PKG-INFO"))
        return filename.endswith((".egg-info", ".egg"))

    def read(self, tree: Tree, inner: str) -> Iterable[Package]:
        """The distribution described by the metadata file at `inner`."""
        if inner.endswith(".egg"):
            fields = parse_metadata(_zipped_pkg_info(tree, inner))
        else:
            fields = parse_metadata(tree.read_text(inner, _LIMIT))
        name = (fields.get("name") or [""])[0]
        version = (fields.get("version") or [""])[0]
        if not name or not version:
            raise UnreadableFile(f"{inner}: no Name or Version in the metadata")
        yield Package(
            name=name,
            version=version,
            ecosystem="PyPI",
            purl=purl("pypi", purl_name(name), version),
            path=inner,
            licenses=_licenses(fields),
            files=self._files(tree, inner) if not inner.endswith(".egg") else (inner,),
            found_by=self.name,
        )

    @staticmethod
    def _files(tree: Tree, inner: str) -> tuple[str, ...]:
        meta_dir = posixpath.dirname(inner)
        if inner.endswith(".dist-info/METADATA"):
            return _record(tree, meta_dir)
        if not inner.endswith("/PKG-INFO"):
            return ()
        try:
            listed = tree.read_text(f"{meta_dir}/installed-files.txt", _LIMIT)
        except UnreadableFile:
            listed = ""
        if listed:
            return _joined(meta_dir, listed.splitlines())
        try:
            sources = tree.read_text(f"{meta_dir}/SOURCES.txt", _LIMIT).splitlines()
        except UnreadableFile:
            return ()
        # SOURCES.txt is relative to the project (setup.py's directory): it lists the egg-info's
        # own files, whose relative path says where the project is (src/X.egg-info: one up)
        base = posixpath.dirname(meta_dir)
        own = posixpath.basename(meta_dir) + "/PKG-INFO"
        for entry in sources:
            entry = entry.strip()
            if entry == own or entry.endswith("/" + own):
                rel = posixpath.dirname(entry)
                if meta_dir.endswith("/" + rel):
                    base = meta_dir[: -len(rel) - 1] or "/"
                break
        return _joined(base, sources)


def _zipped_pkg_info(tree: Tree, inner: str) -> str:
    """EGG-INFO/PKG-INFO of a zipped egg."""
    try:
        with zipfile.ZipFile(tree.host_path(inner)) as z:
            info = z.getinfo("EGG-INFO/PKG-INFO")
            if info.file_size > _LIMIT:
                raise UnreadableFile(f"{inner}: EGG-INFO/PKG-INFO larger than {_LIMIT} bytes")
            return z.read(info).decode("utf-8", "replace")
    except KeyError as e:
        raise UnreadableFile(f"{inner}: no EGG-INFO/PKG-INFO in the egg") from e
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise UnreadableFile(f"{inner}: not a readable egg: {e}") from e


def _record(tree: Tree, dist_info: str) -> tuple[str, ...]:
    try:
        text = tree.read_text(f"{dist_info}/RECORD", _LIMIT)
    except UnreadableFile:
        return ()
    site = posixpath.dirname(dist_info)
    out = []
    for line in text.splitlines():
        if '"' in line:  # a quoted path (with a comma in it): the csv module, for this line only
            row = next(csv.reader([line]), [])
            rel = row[0] if row else ""
        else:
            rel = line.split(",", 1)[0]
        if rel:
            out.append(_join(site, rel))
    return tuple(out)


def _join(base: str, rel: str) -> str:
    if rel.startswith("/"):
        return posixpath.normpath(rel)
    if "./" in rel or rel.startswith("."):
        return posixpath.normpath(f"{base}/{rel}")
    return f"{base}/{rel}"


def _joined(base: str, rels: Iterable[str]) -> tuple[str, ...]:
    return tuple(_join(base, r.strip()) for r in rels if r.strip())
