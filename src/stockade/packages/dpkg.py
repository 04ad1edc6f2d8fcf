"""Debian packages: ``/var/lib/dpkg/status`` and distroless ``/var/lib/dpkg/status.d/*``.

Only stanzas whose ``Status`` says ``installed`` are packages (``deinstall ok config-files`` is a
removed package whose configuration stayed); a ``status.d`` stanza has no Status (distroless
writes only installed ones). The version keeps its epoch (``1:3.8-4``: OSV's Debian ranges
compare with it); the source package and its version come from ``Source: name (version)``,
the binary's version standing in when the source gives none (as dpkg itself does). Files come
from ``info/<name>[:<arch>].list`` (``status.d/<name>.md5sums`` for distroless), directories
left out. Licenses are the ``License:`` fields of a machine-readable (DEP-5)
``/usr/share/doc/<name>/copyright``, as written there (``GPL-2+``, not normalised to SPDX); a
free-form copyright file gives none.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Iterator

from stockade.model.package import Package
from stockade.packages.cataloger import Tree, UnreadableFile
from stockade.packages.osrelease import OsRelease, detect
from stockade.packages.purl import purl

__all__ = ["DpkgCataloger", "copyright_licenses", "parse_control"]

STATUS = "/var/lib/dpkg/status"
STATUS_D = "/var/lib/dpkg/status.d/"
INFO = "/var/lib/dpkg/info"
DOC = "/usr/share/doc"
_SOURCE = re.compile(r"^(\S+)(?:\s+\((\S+)\))?$")


def parse_control(text: str) -> Iterator[dict[str, str]]:
    """The stanzas of a deb822 file (dpkg status, control files): field -> value, continuation
    lines joined with newlines."""
    fields: dict[str, str] = {}
    last: str | None = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, last = {}, None
        elif line[0] in " \t":
            if last is not None:
                fields[last] += "\n" + line.strip()
        else:
            key, sep, value = line.partition(":")
            if sep:
                last = key.strip()
                fields[last] = value.strip()
    if fields:
        yield fields


#: copyright files are read up to this size (the License fields come first in all but a few)
COPYRIGHT_LIMIT = 512 * 1024


def copyright_licenses(text: str) -> tuple[str, ...]:
    """The distinct ``License:`` values of a DEP-5 copyright file, in order; () for free-form."""
    if not text.startswith("Format:"):
        return ()
    seen: dict[str, None] = {}
    for line in text.splitlines():
        if line.startswith("License:"):
            value = line[8:].strip()
            if value:
                seen.setdefault(value, None)
    return tuple(seen)


def _dirs_dropped(paths: list[str]) -> tuple[str, ...]:
    """`paths` (a dpkg file list) without the directories: the entries another entry is in."""
    parents = {p[: p.rfind("/")] for p in paths}
    parents.update(("/.", "/", ""))
    return tuple(p for p in paths if p not in parents)


def _read_child(tree: Tree, base: str | None, inner_dir: str, rel: str, limit: int) -> bytes | None:
    """The file `rel` (``name`` or ``name/file``) under `inner_dir`, whose host path `base` was
    resolved once (None: no such directory): opened directly where no component of `rel` is a
    link, through the tree's own resolution where one is (links resolve inside the tree); None
    when absent or unreadable."""
    if base is None:
        return None  # the directory is not there
    head, _, _ = rel.partition("/")
    try:
        if "/" in rel and stat.S_ISLNK(os.lstat(os.path.join(base, head)).st_mode):
            raise IsADirectoryError  # a link: resolved in the tree below
        fd = os.open(os.path.join(base, rel), os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError:
        pass
    else:
        with os.fdopen(fd, "rb") as f:
            return f.read(limit)
    try:
        return tree.read_bytes(f"{inner_dir}/{rel}", limit)
    except UnreadableFile:
        return None


class DpkgCataloger:
    """Installed Debian and Ubuntu packages from dpkg's database."""

    name = "dpkg"

    def __init__(self) -> None:
        self._os: dict[str, OsRelease | None] = {}
        self._info: dict[str, frozenset[str]] = {}
        self._dirs: dict[tuple[str, str], str | None] = {}

    def wants(self, inner: str, filename: str, entry: os.DirEntry[str]) -> bool:  # noqa: ARG002
        """dpkg's status file, and each file of status.d but its .md5sums."""
        if inner == STATUS:
            return True
        return (
            inner.startswith(STATUS_D)
            and not filename.endswith(".md5sums")
            and "/" not in inner[len(STATUS_D) :]
        )

    def _release(self, tree: Tree) -> OsRelease | None:
        key = str(tree.root)
        if key not in self._os:
            self._os[key] = detect(tree)
        return self._os[key]

    def _info_names(self, tree: Tree) -> frozenset[str]:
        key = str(tree.root)
        if key not in self._info:
            try:
                self._info[key] = frozenset(os.listdir(tree.host_path(INFO)))
            except (OSError, UnreadableFile):
                self._info[key] = frozenset()
        return self._info[key]

    def _dir(self, tree: Tree, inner_dir: str) -> str | None:
        """The host path of a directory of the tree, resolved once per walk."""
        key = (str(tree.root), inner_dir)
        if key not in self._dirs:
            try:
                path = tree.host_path(inner_dir)
                self._dirs[key] = str(path) if path.is_dir() else None
            except UnreadableFile:
                self._dirs[key] = None
        return self._dirs[key]

    def _files(self, tree: Tree, inner: str, name: str, arch: str) -> tuple[str, ...]:
        if inner.startswith(STATUS_D):
            try:
                text = tree.read_text(f"{inner}.md5sums")
            except UnreadableFile:
                return ()
            return tuple(
                "/" + line.split(None, 1)[1].lstrip("/") for line in text.splitlines() if " " in line
            )
        names = self._info_names(tree)
        for cand in (f"{name}.list", f"{name}:{arch}.list"):
            if cand in names:
                data = _read_child(tree, self._dir(tree, INFO), INFO, cand, 64 * 2**20)
                return _dirs_dropped(data.decode("utf-8", "replace").splitlines()) if data else ()
        return ()

    def _licenses(self, tree: Tree, name: str) -> tuple[str, ...]:
        head = _read_child(tree, self._dir(tree, DOC), DOC, f"{name}/copyright", COPYRIGHT_LIMIT)
        return copyright_licenses(head.decode("utf-8", "replace")) if head else ()

    def read(self, tree: Tree, inner: str) -> Iterable[Package]:
        """The installed packages of one status file."""
        text = tree.read_text(inner)
        rel = self._release(tree)
        in_status_d = inner.startswith(STATUS_D)
        ecosystem = (
            rel.ecosystem if rel is not None and rel.id in ("debian", "ubuntu") else None
        ) or "Debian"
        namespace = rel.purl_namespace if rel is not None and rel.id in ("debian", "ubuntu") else "debian"
        out: list[Package] = []
        for st in parse_control(text):
            name, version = st.get("Package"), st.get("Version")
            if not name or not version:
                continue
            status = st.get("Status")
            if status is None and not in_status_d:
                continue
            if status is not None and status.split()[-1:] != ["installed"]:
                continue
            arch = st.get("Architecture", "")
            src_name: str | None = name
            src_version: str | None = version
            if "Source" in st:
                m = _SOURCE.match(st["Source"])
                if m:
                    src_name = m.group(1)
                    src_version = m.group(2) or version
            epoch, _, plain = version.rpartition(":")
            out.append(
                Package(
                    name=name,
                    version=version,
                    ecosystem=ecosystem,
                    purl=purl(
                        "deb",
                        name,
                        plain,
                        namespace=namespace,
                        qualifiers={
                            "arch": arch,
                            "distro": rel.purl_distro if rel is not None else None,
                            "epoch": epoch or None,
                        },
                    ),
                    path=inner,
                    distro=rel.osv_release if rel is not None else None,
                    source=src_name,
                    source_version=src_version,
                    licenses=self._licenses(tree, name),
                    files=self._files(tree, inner, name, arch),
                    found_by=self.name,
                )
            )
        return out
