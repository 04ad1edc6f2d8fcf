"""Which package a file belongs to, in one root filesystem.

Built from a catalog's packages: every file a package database lists (dpkg's ``.list``, Python's
``RECORD``, ...) maps to its package; so does the file a package was found in when that file is
the package itself (a jar, a Go or Rust binary: ``path`` before any ``!``). Language packages
also own their directories (a Python package's top-level module directories, an npm package's
``node_modules/<name>``), so a module file that a RECORD does not list (a ``.pyc`` written later)
still maps to its package. Lookups are by the path as a process in the root sees it.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable

from stockade.model.package import Package

__all__ = ["FileIndex"]

#: catalogers whose ``path`` is the package's own file (the binary or archive)
_SELF_FILE = frozenset({"gobinary", "go", "rust", "cargo-auditable", "java", "jar"})
#: directories never owned by one package (shared by many)
_SHARED_DIRS = frozenset(
    {
        "/",
        "/bin",
        "/sbin",
        "/lib",
        "/lib64",
        "/usr",
        "/usr/bin",
        "/usr/sbin",
        "/usr/lib",
        "/usr/lib64",
        "/usr/share",
        "/usr/share/doc",
        "/usr/local",
        "/usr/local/bin",
        "/usr/local/lib",
        "/etc",
        "/var",
        "/opt",
        "/app",
    }
)


def _norm(path: str) -> str:
    return posixpath.normpath("/" + path.lstrip("/"))


class FileIndex:
    """File path -> packages of one root (module docstring)."""

    def __init__(self, packages: Iterable[Package]) -> None:
        self.files: dict[str, list[Package]] = {}
        self.dirs: dict[str, list[Package]] = {}
        for p in packages:
            self.add(p)

    def add(self, p: Package) -> None:
        """Index one package's files (and directories, for a language package)."""
        own: set[str] = {_norm(f) for f in p.files}
        head = p.path.split("!", 1)[0]
        if p.found_by in _SELF_FILE or "!" in p.path or head.endswith((".jar", ".war", ".ear")):
            own.add(_norm(head))
        for f in own:
            self.files.setdefault(f, []).append(p)
        for d in self._dirs_of(p, own):
            self.dirs.setdefault(d, []).append(p)

    @staticmethod
    def _dirs_of(p: Package, own: set[str]) -> set[str]:
        """The directories a language package owns wholly."""
        if p.ecosystem == "npm":
            d = posixpath.dirname(_norm(p.path))
            return {d} if "/node_modules/" in d + "/" and posixpath.basename(d) != "node_modules" else set()
        if p.ecosystem != "PyPI":
            return set()
        meta_dir = posixpath.dirname(_norm(p.path))  # .../x.dist-info or .../x.egg-info
        site = posixpath.dirname(meta_dir)
        out: set[str] = set()
        for f in own:
            if not f.startswith(site + "/"):
                continue
            top = f[len(site) + 1 :].split("/", 1)
            if (
                len(top) == 2
                and not top[0].endswith((".dist-info", ".egg-info", ".data"))
                and top[0] not in ("__pycache__", "bin", "..")
            ):
                out.add(f"{site}/{top[0]}")
        return {d for d in out if d not in _SHARED_DIRS}

    def lookup(self, path: str) -> list[Package]:
        """The packages `path` belongs to (empty when none)."""
        path = _norm(path)
        hit = self.files.get(path)
        if hit:
            return hit
        if path.endswith(".pyc") and "/__pycache__/" in path:
            # a.cpython-311.pyc in __pycache__ is a.py's
            d, name = path.rsplit("/__pycache__/", 1)
            hit = self.files.get(f"{d}/{name.split('.', 1)[0]}.py")
            if hit:
                return hit
        d = posixpath.dirname(path)
        while d not in ("/", ""):
            hit = self.dirs.get(d)
            if hit:
                return hit
            d = posixpath.dirname(d)
        return []

    def __len__(self) -> int:
        return len(self.files) + len(self.dirs)
