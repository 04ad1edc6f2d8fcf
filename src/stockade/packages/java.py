"""Java archives (``.jar``, ``.war``, ``.ear``, ``.par``): Maven coordinates from
``META-INF/maven/<group>/<artifact>/pom.properties``, ``MANIFEST.MF`` as a fallback, and archives
nested inside archives (``WEB-INF/lib``, Spring Boot's ``BOOT-INF/lib``, an ear's wars).

As Trivy does: every valid ``pom.properties`` in an archive is a package (a shaded jar carries
those of what it bundles); when none of them is the archive itself (its artifactId and version
do not match the file name ``artifact-version.jar``, nor its artifactId an unversioned name
``artifact.jar``, as Debian names its jars), the manifest's main section names it:
group from ``Implementation-Vendor-Id``, ``Bundle-SymbolicName`` (up to its last dot),
``Implementation-Vendor`` or ``Specification-Vendor``; artifact from ``Implementation-Title``,
``Specification-Title`` or ``Bundle-Name``; version from ``Implementation-Version``,
``Specification-Version`` or ``Bundle-Version``. Trivy then checks such coordinates against its
Java DB online; Stockade reports them as Trivy's offline mode does. Nested archives are read from
memory, down to :data:`MAX_DEPTH` levels; their path is ``/outer.war!/WEB-INF/lib/inner.jar``.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import zipfile
from collections.abc import Iterable
from typing import IO

from stockade.model.package import Package
from stockade.packages.cataloger import PartlyRead, Tree, UnreadableFile
from stockade.packages.purl import purl

__all__ = ["MAX_DEPTH", "JavaCataloger", "maven_package"]

ARCHIVES = (".jar", ".war", ".ear", ".par")
#: archive types read when nested (Trivy does not open a nested .par)
NESTED = (".jar", ".war", ".ear")
#: how deep nested archives are opened (the outer archive is depth 0)
MAX_DEPTH = 4
#: the largest nested archive read into memory
MAX_NESTED = 256 * 2**20
_FILE_NAME = re.compile(r"^([a-zA-Z0-9._-]*[^-*])-(\d\S*(?:-SNAPSHOT)?)\.jar$")


def maven_package(group: str, artifact: str, version: str, path: str) -> Package:
    """A Package for Maven ``group:artifact`` at `version` (OSV names Maven packages so)."""
    return Package(
        name=f"{group}:{artifact}",
        version=version,
        ecosystem="Maven",
        purl=purl("maven", artifact, version, namespace=group),
        path=path,
        # the file a JVM opens: the outermost archive
        files=(path.split("!/", 1)[0],),
        found_by="java",
    )


def _pom_properties(data: bytes) -> tuple[str, str, str]:
    props: dict[str, str] = {}
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        for key in ("groupId=", "artifactId=", "version="):
            if line.startswith(key):
                props[key[:-1]] = line[len(key) :]
    return props.get("groupId", ""), props.get("artifactId", ""), props.get("version", "")


def _manifest(data: bytes) -> tuple[str, str, str]:
    """(group, artifact, version) from a manifest's main section ('' where it names none)."""
    attrs: dict[str, str] = {}
    text = data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    lines: list[str] = []
    for line in text.split("\n"):
        if not line:
            break
        if line.startswith(" ") and lines:
            lines[-1] += line[1:]
        else:
            lines.append(line)
    for line in lines:
        key, sep, value = line.partition(":")
        value = value.strip()
        if sep and value and not value.startswith("%"):
            attrs[key] = value
    symbolic = attrs.get("Bundle-SymbolicName", "").split(";", 1)[0].strip()
    group = (
        attrs.get("Implementation-Vendor-Id")
        or (symbolic.rsplit(".", 1)[0] if symbolic else "")
        or attrs.get("Implementation-Vendor")
        or attrs.get("Specification-Vendor")
        or ""
    )
    artifact = (
        attrs.get("Implementation-Title")
        or attrs.get("Specification-Title")
        or attrs.get("Bundle-Name")
        or ""
    )
    version = (
        attrs.get("Implementation-Version")
        or attrs.get("Specification-Version")
        or attrs.get("Bundle-Version")
        or ""
    )
    return group, artifact, version


class JavaCataloger:
    """Java archives and the archives nested in them."""

    name = "java"

    def wants(self, inner: str, filename: str, entry: os.DirEntry[str]) -> bool:  # noqa: ARG002
        """Files ending in .jar, .war, .ear or .par."""
        return filename.endswith(ARCHIVES)

    def read(self, tree: Tree, inner: str) -> Iterable[Package]:
        """The packages in the archive at `inner` and in the archives inside it."""
        try:
            problems: list[tuple[str, str]] = []
            with open(tree.host_path(inner), "rb") as f:
                found = self._archive(f, inner, 0, problems)
        except OSError as e:
            raise UnreadableFile(f"{inner}: {e.strerror or e}") from e
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as e:
            raise UnreadableFile(f"{inner}: not a readable zip archive: {e}") from e
        if problems:
            raise PartlyRead(found, problems)
        return found

    def _archive(self, f: IO[bytes], path: str, depth: int, problems: list[tuple[str, str]]) -> list[Package]:

        out: list[Package] = []
        base_name = posixpath.basename(path.rsplit("!/", 1)[-1])
        own = _FILE_NAME.match(base_name)
        stem = base_name.rsplit(".", 1)[0]
        found_own = False
        manifest: bytes | None = None
        with zipfile.ZipFile(f) as z:
            for info in z.infolist():
                name = info.filename
                base = name.rsplit("/", 1)[-1]
                if base == "pom.properties":
                    group, artifact, version = _pom_properties(z.read(info))
                    if group and artifact and version:
                        out.append(maven_package(group, artifact, version, path))
                        if (own and own.group(1) == artifact and own.group(2) == version) or stem == artifact:
                            found_own = True
                elif base == "MANIFEST.MF":
                    manifest = z.read(info)
                elif base.endswith(NESTED) and not info.is_dir() and depth < MAX_DEPTH:
                    nested = f"{path}!/{name}"
                    if info.file_size > MAX_NESTED:
                        problems.append((nested, f"nested archive larger than {MAX_NESTED} bytes"))
                        continue
                    try:
                        out.extend(self._archive(io.BytesIO(z.read(info)), nested, depth + 1, problems))
                    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as e:
                        problems.append((nested, f"not a readable zip archive: {e}"))
        if not found_own and manifest is not None:
            group, artifact, version = _manifest(manifest)
            if group and artifact and version:
                out.append(maven_package(group, artifact, version, path))
        return out
