"""Go modules compiled into binaries, read from the build info the Go linker writes.

The ``.go.buildinfo`` section starts with the 14-byte magic ``\\xff Go buildinf:``, a pointer
size and a flags byte. Go 1.18 and later write the Go version and the module info inline after
the 32-byte header as varint-prefixed strings (flag bit 2); older linkers write two pointers to
Go string headers, followed through the program headers. The module info lists the main module
(``mod``), every dependency (``dep``) and replacements (``=>``, which replace the line before).

Reported as Trivy does: the Go toolchain as package ``stdlib`` (``v1.19.8``), the main module
with its version, or the one set with ``-ldflags -X ...version=`` when it is ``(devel)``, and
each dependency as its replacement when replaced. A dependency replaced by a local directory is
reported under the module path it replaces with no version (Trivy names it by the directory).
Only regular files with an exec bit are opened, and of those only the ELF headers and the one
section are read.
"""

from __future__ import annotations

import os
import re
import shlex
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from stockade.model.package import Package
from stockade.packages.cataloger import Tree, UnreadableFile
from stockade.packages.elf import ElfFile, elf_info, is_executable
from stockade.packages.purl import purl

__all__ = ["BuildInfo", "GoBinaryCataloger", "Module", "parse_buildinfo", "read_buildinfo"]

MAGIC = b"\xff Go buildinf:"
_SEMVER = re.compile(r"^v?\d+(\.\d+){0,2}(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


@dataclass(frozen=True, slots=True)
class Module:
    """One module line of the build info (with its replacement, if any)."""

    path: str
    version: str
    replace: Module | None = None


@dataclass(slots=True)
class BuildInfo:
    """What ``go version -m`` prints for a binary."""

    go_version: str
    path: str = ""
    main: Module | None = None
    deps: list[Module] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data):
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            break
    raise ValueError("bad varint")


def _strip_sentinels(mod: str) -> str:
    # the module info is framed by 16-byte sentinels
    if len(mod) >= 33 and mod[-17] == "\n":
        return mod[16:-16]
    return ""


def read_buildinfo(elf: ElfFile) -> tuple[str, str] | None:
    """(Go version, module info text) of an ELF Go binary, or None when it has no build info."""
    sect = elf.section(".go.buildinfo")
    if sect is None:
        return None
    # the section holds the header (and, from Go 1.18, both strings): small, read at once
    elf.f.seek(sect.offset)
    head = elf.f.read(min(sect.size, 4 * 2**20))
    if not head.startswith(MAGIC) or len(head) < 32:
        return None
    ptr_size, flags = head[14], head[15]
    if flags & 2:
        try:
            n, pos = _uvarint(head, 32)
            vers = head[pos : pos + n].decode("utf-8", "replace")
            m, pos = _uvarint(head, pos + n)
            mod = head[pos : pos + m].decode("utf-8", "replace")
        except ValueError:
            return None
        return vers, _strip_sentinels(mod)
    if ptr_size not in (4, 8):
        return None
    fmt = (">" if flags & 1 else "<") + ("Q" if ptr_size == 8 else "I")

    def string_at(addr: int) -> str:
        hdr = elf.read_at(addr, 2 * ptr_size)
        if len(hdr) != 2 * ptr_size:
            return ""
        (data_addr,) = struct.unpack_from(fmt, hdr, 0)
        (length,) = struct.unpack_from(fmt, hdr, ptr_size)
        if length > 2**22:
            return ""
        return elf.read_at(data_addr, length).decode("utf-8", "replace")

    (vaddr,) = struct.unpack_from(fmt, head, 16)
    (maddr,) = struct.unpack_from(fmt, head, 16 + ptr_size)
    return string_at(vaddr), _strip_sentinels(string_at(maddr))


def parse_buildinfo(go_version: str, text: str) -> BuildInfo:
    """The module info text as written by the Go linker (``runtime/debug.BuildInfo.String``)."""
    info = BuildInfo(go_version=go_version)
    last: Module | None = None
    for line in text.splitlines():
        cols = line.split("\t")
        kind = cols[0]
        if kind == "path" and len(cols) > 1:
            info.path = cols[1]
        elif kind in ("mod", "dep") and len(cols) > 2:
            last = Module(cols[1], cols[2])
            if kind == "mod":
                info.main = last
            else:
                info.deps.append(last)
        elif kind == "=>" and len(cols) > 1 and last is not None:
            repl = Module(cols[1], cols[2] if len(cols) > 2 else "")
            last = Module(last.path, last.version, repl)
            if info.deps and info.deps[-1].path == last.path:
                info.deps[-1] = last
            elif info.main is not None and info.main.path == last.path:
                info.main = last
        elif kind == "build" and len(cols) > 1:
            key, _, value = cols[1].partition("=")
            info.settings[key] = value
    return info


def _ldflags_version(settings: dict[str, str]) -> str:
    """A version set with ``-X pkg.version=...`` (as Trivy reads it), or ''."""
    flags = settings.get("-ldflags", "")
    if not flags:
        return ""
    try:
        words = shlex.split(flags.strip('"') if flags.startswith('"') else flags)
    except ValueError:
        words = flags.split()
    for i, w in enumerate(words):
        arg = ""
        if w == "-X" and i + 1 < len(words):
            arg = words[i + 1]
        elif w.startswith("-X="):
            arg = w[3:]
        key, sep, value = arg.strip("'\"").partition("=")
        if sep and key.lower().endswith((".version", ".ver")) and _SEMVER.match(value):
            return value
    return ""


def _go_package(name: str, version: str, path: str) -> Package:
    # the purl lowercased, as Trivy writes it (module paths are case-sensitive; the name keeps its case)
    namespace, _, bare = name.lower().rpartition("/")
    return Package(
        name=name,
        version=version,
        ecosystem="Go",
        purl=purl("golang", bare, version, namespace=namespace),
        path=path,
        files=(path,),
        found_by="gobinary",
    )


def _version(v: str) -> str:
    return "" if v == "(devel)" else v


def packages_of(info: BuildInfo, inner: str) -> list[Package]:
    """The packages Trivy reports for a binary with this build info."""
    out: list[Package] = []
    std = info.go_version.removeprefix("go").split(" ", 1)[0]
    if std:
        out.append(_go_package("stdlib", "v" + std if std[0].isdigit() else std, inner))
    if info.main is not None and info.main.path:
        version = _version(info.main.version) or _ldflags_version(info.settings)
        out.append(_go_package(info.main.path, version, inner))
    for dep in info.deps:
        if dep.path == info.path:
            continue
        mod = dep.replace or dep
        if dep.replace is not None and mod.path.startswith((".", "/")):
            # a local directory: named by the module it stands for
            out.append(_go_package(dep.path, "", inner))
            continue
        out.append(_go_package(mod.path, _version(mod.version), inner))
    return out


class GoBinaryCataloger:
    """Go binaries (ELF, any architecture, Go 1.13 and later)."""

    name = "gobinary"

    def wants(self, inner: str, filename: str, entry: os.DirEntry[str]) -> bool:  # noqa: ARG002
        """Regular files with an exec bit (the ELF magic is checked in read)."""
        return is_executable(entry)

    def read(self, tree: Tree, inner: str) -> Iterable[Package]:
        """The modules in the binary's build info (nothing for a non-Go file)."""
        try:
            host = str(tree.host_path(inner))
            info = elf_info(host)
            if info is None or ".go.buildinfo" not in info.sections:
                return []
            with open(host, "rb") as f:
                found = read_buildinfo(ElfFile(f, info))
        except OSError as e:
            raise UnreadableFile(f"{inner}: {e.strerror or e}") from e
        except (struct.error, ValueError) as e:
            raise UnreadableFile(f"{inner}: broken Go build info: {e}") from e
        if found is None:
            return []
        return packages_of(parse_buildinfo(*found), inner)
