"""Packages out of an SBOM: CycloneDX JSON (1.4 to 1.6) and SPDX 2.3 JSON, Stockade's and Trivy's.

Every component (CycloneDX, nested ones included) or package (SPDX) with a purl becomes a
:class:`~stockade.model.package.Package`: ecosystem, name and version from the purl (the
document's own version string when it has one, which keeps a Debian epoch), licenses, and what
Stockade's own documents add (``stockade:*`` properties / annotations: path, ecosystem, distro,
source package). Trivy's ``aquasecurity:trivy:FilePath``, ``SrcName`` and ``SrcVersion``
properties are read too. Where the document does not say where a package was found, its path is
the SBOM file itself.

Components without a purl (the operating system, the subject, files) are not packages: they are
counted in :attr:`SbomContents.skipped`, with the OS taken as the distro of OS packages that do
not carry one. A document that is not JSON, not CycloneDX or SPDX, or has a malformed field is a
:class:`~stockade.errors.UsageError` naming the file and the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from packageurl import PackageURL

from stockade.errors import Location, UsageError
from stockade.model.package import Package
from stockade.packages.osrelease import OSV_ECOSYSTEMS, PURL_NAMESPACES, OsRelease

__all__ = ["SbomContents", "ecosystem_of", "load_sbom", "package_from_purl", "read_sbom"]

PROP = "stockade:"
TRIVY = "aquasecurity:trivy:"
CYCLONEDX_VERSIONS = ("1.4", "1.5", "1.6")
SPDX_VERSIONS = ("SPDX-2.2", "SPDX-2.3")

#: purl type (and namespace, for OS packages) -> OSV ecosystem
_BY_TYPE = {
    "pypi": "PyPI",
    "npm": "npm",
    "golang": "Go",
    "maven": "Maven",
    "cargo": "crates.io",
    "gem": "RubyGems",
    "nuget": "NuGet",
    "composer": "Packagist",
    "hex": "Hex",
    "pub": "Pub",
    "swift": "SwiftURL",
    "conan": "ConanCenter",
    "cran": "CRAN",
    "hackage": "Hackage",
    "bitnami": "Bitnami",
}
#: purl namespace of OS packages -> OSV ecosystem: the OS catalogers' table, plus the spellings
#: other tools use
_BY_DISTRO = {
    **{PURL_NAMESPACES.get(os_id, os_id): eco for os_id, eco in OSV_ECOSYSTEMS.items()},
    "rhel": "Red Hat",
    "centos": "Red Hat",
    "rocky-linux": "Rocky Linux",
    "alma": "AlmaLinux",
    "fedora": "Fedora",
    "amazon": "Amazon Linux",
    "amzn": "Amazon Linux",
    "openeuler": "openEuler",
}
#: purl namespaces (and distro qualifier prefixes) that are not the os-release ID
_OS_IDS = {"redhat": "rhel", "suse": "sles", "opensuse": "opensuse-leap"}
_OS_TYPES = ("deb", "apk", "rpm", "alpm")


@dataclass(slots=True)
class SbomContents:
    """What an SBOM says: its packages, its format, its OS, and what was not a package."""

    path: str
    format: str
    spec_version: str
    packages: list[Package] = field(default_factory=list)
    #: the operating system the document names (``debian 12.8``), if any
    os_name: str | None = None
    os_version: str | None = None
    #: (field, reason) of components that are not packages (no purl: the OS, files, the subject)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def ecosystem_of(purl: PackageURL) -> str:
    """The OSV ecosystem of a purl (``pkg:deb/debian/...`` is ``Debian``, ``pkg:pypi/...`` ``PyPI``);
    an unknown type is its own name."""
    if purl.type in _OS_TYPES:
        ns = (purl.namespace or "").lower()
        return _BY_DISTRO.get(ns, ns.capitalize() or purl.type)
    return _BY_TYPE.get(purl.type, purl.type)


def _name_of(purl: PackageURL) -> str:
    if purl.type == "maven":
        return f"{purl.namespace}:{purl.name}" if purl.namespace else purl.name
    if purl.type in ("golang", "npm", "composer", "swift") and purl.namespace:
        return f"{purl.namespace}/{purl.name}"
    return purl.name


def _version_of(purl: PackageURL) -> str:
    version = purl.version or ""
    quals = purl.qualifiers if isinstance(purl.qualifiers, dict) else {}
    epoch = str(quals.get("epoch") or "")
    if epoch and epoch != "0" and purl.type in _OS_TYPES and ":" not in version:
        version = f"{epoch}:{version}"
    return version


def _osv_release(os_id: str, version: str | None) -> str:
    """OSV's release suffix (``12`` of ``Debian:12``, ``v3.19``) of an OS release (``debian``, ``12.8``)."""
    os_id = os_id.lower()
    return OsRelease(id=_OS_IDS.get(os_id, os_id), version_id=version or None).osv_release or ""


def _purl_distro(purl: PackageURL) -> str:
    quals = purl.qualifiers if isinstance(purl.qualifiers, dict) else {}
    raw = str(quals.get("distro") or "")
    if not raw:
        return ""
    # ``debian-12.8``, ``alpine-3.19.1`` (the OS catalogers', Trivy's); else only a version
    m = re.match(r"^([A-Za-z][A-Za-z-]*?)-(\d.*)$", raw)
    return _osv_release(m.group(1), m.group(2)) if m else _osv_release(purl.namespace or "", raw)


def package_from_purl(
    purl_text: str,
    path: str,
    *,
    name: str | None = None,
    version: str | None = None,
    props: dict[str, str] | None = None,
    licenses: tuple[str, ...] = (),
    os: tuple[str, str] | None = None,
) -> Package:
    """A Package from a purl (raises ValueError for a malformed one), with what the document adds."""
    purl = PackageURL.from_string(purl_text)
    props = props or {}
    ecosystem = props.get(PROP + "ecosystem") or ecosystem_of(purl)
    distro = props.get(PROP + "distro") or (
        (_purl_distro(purl) or (_osv_release(*os) if os else "")) if purl.type in _OS_TYPES else ""
    )
    source = props.get(PROP + "source") or props.get(TRIVY + "SrcName") or None
    source_version = props.get(PROP + "source_version") or _trivy_source_version(props)
    return Package(
        name=_document_name(purl, name, props),
        version=version or _version_of(purl),
        ecosystem=ecosystem,
        purl=purl_text,
        path=props.get(PROP + "path") or _trivy_path(props) or path,
        distro=distro or None,
        source=source,
        source_version=source_version,
        licenses=licenses,
        found_by=props.get(PROP + "found_by") or "sbom",
    )


def _pep503(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _document_name(purl: PackageURL, name: str | None, props: dict[str, str]) -> str:
    """The package's name: as the document's own tool wrote it where that is the same package
    (a document of ours; a PyPI name whose purl is its normalised form: ``Django``), else the purl's."""
    if name and (
        PROP + "ecosystem" in props or (purl.type == "pypi" and _pep503(name) == _pep503(purl.name))
    ):
        return name
    return _name_of(purl)


def _trivy_source_version(props: dict[str, str]) -> str | None:
    """Trivy's source version in the package manager's spelling: ``[SrcEpoch:]SrcVersion[-SrcRelease]``."""
    version = props.get(TRIVY + "SrcVersion")
    if not version:
        return None
    epoch, release = props.get(TRIVY + "SrcEpoch"), props.get(TRIVY + "SrcRelease")
    if epoch and epoch != "0" and ":" not in version:
        version = f"{epoch}:{version}"
    return f"{version}-{release}" if release else version


def _doc_os(contents: SbomContents) -> tuple[str, str] | None:
    """(ID, version) of the operating system a document names, if it names one."""
    return (contents.os_name, contents.os_version or "") if contents.os_name else None


def _trivy_path(props: dict[str, str]) -> str | None:
    fp = props.get(TRIVY + "FilePath")
    if not fp:
        return None
    return fp if fp.startswith("/") else "/" + fp


# -- CycloneDX ----------------------------------------------------------------------------------


def _err(path: str, item: str, message: str) -> UsageError:
    return UsageError(message, Location(file=path, item=item))


def _walk_components(comps: Any, where: str, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if comps is None:
        return
    if not isinstance(comps, list):
        raise _err(path, where, "not a list")
    for i, c in enumerate(comps):
        item = f"{where}[{i}]"
        if not isinstance(c, dict):
            raise _err(path, item, "not an object")
        yield item, c
        yield from _walk_components(c.get("components"), f"{item}.components", path)


def _cdx_props(c: dict[str, Any], item: str, path: str) -> dict[str, str]:
    props = c.get("properties") or []
    if not isinstance(props, list):
        raise _err(path, f"{item}.properties", "not a list")
    out: dict[str, str] = {}
    for j, p in enumerate(props):
        if not isinstance(p, dict) or not isinstance(p.get("name"), str):
            raise _err(path, f"{item}.properties[{j}]", "a property without a name")
        out.setdefault(p["name"], str(p.get("value", "")))
    return out


def _cdx_licenses(c: dict[str, Any], item: str, path: str) -> tuple[str, ...]:
    lics = c.get("licenses") or []
    if not isinstance(lics, list):
        raise _err(path, f"{item}.licenses", "not a list")
    out: list[str] = []
    for j, entry in enumerate(lics):
        if not isinstance(entry, dict):
            raise _err(path, f"{item}.licenses[{j}]", "not an object")
        if isinstance(entry.get("expression"), str):
            out.append(entry["expression"])
            continue
        lic = entry.get("license")
        if not isinstance(lic, dict):
            raise _err(path, f"{item}.licenses[{j}]", "neither a license nor an expression")
        text = lic.get("id") or lic.get("name")
        if isinstance(text, str) and text:
            out.append(text)
    return tuple(out)


def _read_cyclonedx(doc: dict[str, Any], path: str) -> SbomContents:
    spec = str(doc.get("specVersion", ""))
    if spec not in CYCLONEDX_VERSIONS:
        raise _err(
            path,
            "specVersion",
            f"CycloneDX {spec or '(none)'} is not read (only {', '.join(CYCLONEDX_VERSIONS)})",
        )
    out = SbomContents(path=path, format="cyclonedx", spec_version=spec)
    comps = list(_walk_components(doc.get("components"), "components", path))
    for _item, c in comps:
        if c.get("type") == "operating-system":
            out.os_name, out.os_version = str(c.get("name") or ""), str(c.get("version") or "")
    for item, c in comps:
        purl = c.get("purl")
        if purl is None:
            out.skipped.append((item, f"{c.get('type', 'component')} {c.get('name', '')!s}: no purl"))
            continue
        if not isinstance(purl, str):
            raise _err(path, f"{item}.purl", "not a string")
        version = c.get("version")
        if version is not None and not isinstance(version, str):
            raise _err(path, f"{item}.version", "not a string")
        try:
            pkg = package_from_purl(
                purl,
                path,
                name=str(c.get("name") or ""),
                version=version or None,
                props=_cdx_props(c, item, path),
                licenses=_cdx_licenses(c, item, path),
                os=_doc_os(out),
            )
        except ValueError as e:
            raise _err(path, f"{item}.purl", f"not a package URL ({purl!r}: {e})") from e
        out.packages.append(pkg)
    return out


# -- SPDX ---------------------------------------------------------------------------------------


def _split_and(expr: str) -> list[str]:
    """The ANDed parts of a license expression; one part when it has parentheses or OR."""
    if "(" in expr or " OR " in expr:
        return [expr]
    return [p.strip() for p in expr.split(" AND ") if p.strip()]


def _spdx_licenses(p: dict[str, Any], refs: dict[str, str]) -> tuple[str, ...]:
    for key in ("licenseDeclared", "licenseConcluded"):
        expr = p.get(key)
        if isinstance(expr, str) and expr not in ("NOASSERTION", "NONE", ""):
            return tuple(refs.get(part, part) for part in _split_and(expr))
    return ()


def _spdx_props(p: dict[str, Any], item: str, path: str) -> dict[str, str]:
    anns = p.get("annotations") or []
    if not isinstance(anns, list):
        raise _err(path, f"{item}.annotations", "not a list")
    out: dict[str, str] = {}
    for a in anns:
        comment = a.get("comment") if isinstance(a, dict) else None
        if not isinstance(comment, str):
            continue
        if comment.startswith(PROP) and "=" in comment:
            name, _, value = comment.partition("=")
            out.setdefault(name, value)
        elif str(a.get("annotator", "")).startswith("Tool: trivy") and ": " in comment:
            # Trivy's annotations are its CycloneDX properties: ``FilePath: /app/x.jar``
            name, _, value = comment.partition(": ")
            out.setdefault(TRIVY + name, value)
    # Trivy: ``built package from: shadow 1:4.13+dfsg1-1``
    source = str(p.get("sourceInfo") or "").removeprefix("built package from: ").split()
    if str(p.get("sourceInfo") or "").startswith("built package from: ") and len(source) == 2:
        out.setdefault(TRIVY + "SrcName", source[0])
        out.setdefault(TRIVY + "SrcVersion", source[1])
    return out


def _read_spdx(doc: dict[str, Any], path: str) -> SbomContents:
    spec = str(doc.get("spdxVersion", ""))
    if spec not in SPDX_VERSIONS:
        raise _err(path, "spdxVersion", f"{spec or '(none)'} is not read (only {', '.join(SPDX_VERSIONS)})")
    out = SbomContents(path=path, format="spdx", spec_version=spec)
    pkgs = doc.get("packages") or []
    if not isinstance(pkgs, list):
        raise _err(path, "packages", "not a list")
    refs: dict[str, str] = {}
    for info in doc.get("hasExtractedLicensingInfos") or []:
        if isinstance(info, dict) and isinstance(info.get("licenseId"), str):
            refs[info["licenseId"]] = str(info.get("name") or info.get("extractedText") or info["licenseId"])
    for p in pkgs:
        if isinstance(p, dict) and p.get("primaryPackagePurpose") == "OPERATING-SYSTEM":
            out.os_name, out.os_version = str(p.get("name") or ""), str(p.get("versionInfo") or "")
    for i, p in enumerate(pkgs):
        item = f"packages[{i}]"
        if not isinstance(p, dict):
            raise _err(path, item, "not an object")
        pkg = _spdx_package(p, item, path, refs, _doc_os(out))
        if pkg is None:
            out.skipped.append(
                (item, f"{p.get('primaryPackagePurpose', 'package')} {p.get('name', '')!s}: no purl")
            )
        else:
            out.packages.append(pkg)
    return out


def _spdx_package(
    p: dict[str, Any], item: str, path: str, refs: dict[str, str], os: tuple[str, str] | None
) -> Package | None:
    ext = p.get("externalRefs") or []
    if not isinstance(ext, list):
        raise _err(path, f"{item}.externalRefs", "not a list")
    purls = [
        (j, r.get("referenceLocator"))
        for j, r in enumerate(ext)
        if isinstance(r, dict) and r.get("referenceType") == "purl"
    ]
    if not purls:
        return None
    j, purl = purls[0]
    if not isinstance(purl, str):
        raise _err(path, f"{item}.externalRefs[{j}].referenceLocator", "not a string")
    version = p.get("versionInfo")
    if version is not None and not isinstance(version, str):
        raise _err(path, f"{item}.versionInfo", "not a string")
    try:
        return package_from_purl(
            purl,
            path,
            name=str(p.get("name") or ""),
            version=version or None,
            props=_spdx_props(p, item, path),
            licenses=_spdx_licenses(p, refs),
            os=os,
        )
    except ValueError as e:
        raise _err(
            path, f"{item}.externalRefs[{j}].referenceLocator", f"not a package URL ({purl!r}: {e})"
        ) from e


def load_sbom(path: str | Path) -> SbomContents:
    """Everything :func:`read_sbom` reads from the SBOM at `path`, and what it skipped."""
    where = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read the SBOM: {e.strerror or e}", Location(file=where)) from e
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise UsageError(
            f"not JSON ({e}); SBOMs are read as CycloneDX or SPDX JSON", Location(file=where)
        ) from e
    if not isinstance(doc, dict):
        raise UsageError("not an SBOM: the document is not a JSON object", Location(file=where))
    if doc.get("bomFormat") == "CycloneDX":
        return _read_cyclonedx(doc, where)
    if "spdxVersion" in doc:
        return _read_spdx(doc, where)
    raise UsageError(
        "not an SBOM: neither CycloneDX (bomFormat) nor SPDX (spdxVersion) JSON", Location(file=where)
    )


def read_sbom(path: str | Path) -> list[Package]:
    """The packages of the CycloneDX or SPDX JSON document at `path`."""
    return load_sbom(path).packages
