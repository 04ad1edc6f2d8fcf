"""SBOM documents of cataloged packages: CycloneDX 1.6 JSON and SPDX 2.3 JSON.

CycloneDX is written through cyclonedx-python-lib; SPDX 2.3 JSON directly (a flat document: a
package per component, no file list). In both, every package carries its purl, its version, its
licenses when known, and where it was found: in CycloneDX as component properties named like
Trivy's ``aquasecurity:trivy:*`` ones (``stockade:path``, ``stockade:found_by``,
``stockade:ecosystem``, ``stockade:distro``, ``stockade:source``, ``stockade:source_version``,
``stockade:layer`` for an image); in SPDX as annotations on the package whose comment is
``name=value`` with the same names. :mod:`stockade.packages.sbom_read` reads both back to the
same packages.

The document's subject (the root filesystem's path, or the image's digest, id, tags and layers)
and its OS (``os-release``) are in the metadata (CycloneDX) / the described package (SPDX).
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import orjson

from stockade import __version__
from stockade.errors import UsageError
from stockade.model.package import Package
from stockade.packages.subject import Subject

if TYPE_CHECKING:  # imported where used: the library takes a noticeable part of the CLI's start
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.dependency import Dependable
    from cyclonedx.model.license import License

__all__ = ["FORMATS", "PROP", "SbomFormat", "cyclonedx_json", "spdx_json", "write_sbom"]

SbomFormat = Literal["cyclonedx", "spdx"]
FORMATS: tuple[SbomFormat, ...] = ("cyclonedx", "spdx")
#: the prefix of Stockade's property names (CycloneDX properties, SPDX annotation comments)
PROP = "stockade:"
TOOL = "stockade"


def _props(pkg: Package, subject: Subject) -> list[tuple[str, str]]:
    """(name, value) of what a document says of `pkg` beyond name, version, purl and licenses."""
    out = [(PROP + "path", pkg.path), (PROP + "ecosystem", pkg.ecosystem)]
    if pkg.found_by:
        out.append((PROP + "found_by", pkg.found_by))
    if pkg.distro:
        out.append((PROP + "distro", pkg.distro))
    if pkg.source:
        out.append((PROP + "source", pkg.source))
    if pkg.source_version:
        out.append((PROP + "source_version", pkg.source_version))
    if layer := subject.layer_of.get(pkg.path):
        out.append((PROP + "layer", layer))
    return out


def _subject_props(subject: Subject) -> list[tuple[str, str]]:
    out = [(PROP + "subject:kind", subject.kind), (PROP + "subject:target", subject.target)]
    if subject.kind == "image":
        out += [(PROP + "image:digest", subject.digest or ""), (PROP + "image:id", subject.image_id or "")]
        out += [(PROP + "image:tag", t) for t in subject.repo_tags]
        out += [(PROP + "image:layer", d) for d in subject.layers]
        plat = [subject.config.get(k) for k in ("os", "architecture")]
        if all(isinstance(p, str) for p in plat):
            out.append((PROP + "image:platform", "/".join(str(p) for p in plat)))
    return out


def _bom_refs(packages: Sequence[Package]) -> list[str]:
    """A unique bom-ref per package: its purl, with its path when one purl is found at two places."""
    counts: dict[str, int] = {}
    for p in packages:
        counts[p.purl] = counts.get(p.purl, 0) + 1
    refs: list[str] = []
    used: set[str] = set()
    for i, p in enumerate(packages):
        ref = p.purl if counts[p.purl] == 1 else f"{p.purl}#{p.path}"
        if ref in used:
            ref = f"{ref}#{i}"
        used.add(ref)
        refs.append(ref)
    return refs


@functools.lru_cache(maxsize=4096)
def _spdx_id(text: str) -> str | None:
    """The SPDX license id `text` names (case fixed), or None."""
    from cyclonedx.spdx import fixup_id

    return fixup_id(text)


@functools.lru_cache(maxsize=4096)
def _is_expression(text: str) -> bool:
    from cyclonedx.spdx import is_expression

    return any(op in f" {text} " for op in (" AND ", " OR ", " WITH ")) and is_expression(text)


def _cdx_licenses(licenses: Sequence[str]) -> list[License]:
    from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression

    if len(licenses) == 1 and _spdx_id(licenses[0]) is None and _is_expression(licenses[0]):
        return [LicenseExpression(licenses[0])]
    out: list[License] = []
    for text in licenses:
        out.append(DisjunctiveLicense(id=text) if _spdx_id(text) == text else DisjunctiveLicense(name=text))
    return out


def _linear_dependencies(bom: Bom) -> None:
    """Make `bom`'s dependency registration linear once every component is registered up front.

    The library's output step registers each component again, looking each up in a list
    (quadratic: seconds for a thousand packages); ours are all registered already, so a set
    answers. Set on the instance: a subclass of Bom would not be serialized.
    """
    registered = frozenset(str(d.ref) for d in bom.dependencies)
    library_register = bom.register_dependency

    def register(target: Dependable, depends_on: Any = None) -> None:
        if depends_on is None and str(target.bom_ref) in registered:
            return
        library_register(target, depends_on)

    bom.register_dependency = register  # type: ignore[method-assign]


def cyclonedx_json(packages: Sequence[Package], subject: Subject) -> str:
    """A CycloneDX 1.6 JSON document of `packages` found in `subject`."""
    from cyclonedx.model import Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.dependency import Dependency
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    bom = Bom()
    bom.metadata.timestamp = datetime.now(UTC)
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name=TOOL, version=__version__, group="stockade")
    )
    root = Component(
        type=ComponentType.CONTAINER if subject.kind == "image" else ComponentType.APPLICATION,
        name=subject.name,
        version=(subject.digest or "") if subject.kind == "image" else None,
        bom_ref="subject",
        properties=[Property(name=n, value=v) for n, v in _subject_props(subject)],
    )
    bom.metadata.component = root
    comps: list[Component] = []
    for pkg, ref in zip(packages, _bom_refs(packages), strict=True):
        try:
            purl = PackageURL.from_string(pkg.purl)
        except ValueError as e:
            raise UsageError(
                f"{pkg.path}: package {pkg.name} {pkg.version} has a bad purl {pkg.purl!r}: {e}"
            ) from e
        comps.append(
            Component(
                type=ComponentType.LIBRARY,
                name=pkg.name,
                version=pkg.version,
                purl=purl,
                bom_ref=ref,
                licenses=_cdx_licenses(pkg.licenses),
                properties=[Property(name=n, value=v) for n, v in _props(pkg, subject)],
            )
        )
    if subject.os is not None:
        comps.append(
            Component(
                type=ComponentType.OPERATING_SYSTEM,
                name=subject.os.id,
                version=subject.os.version_id or None,
                description=subject.os.name or subject.os.id,
                bom_ref="os",
            )
        )
    bom.components.update(comps)
    bom.dependencies.add(
        Dependency(ref=root.bom_ref, dependencies=[Dependency(ref=c.bom_ref) for c in comps])
    )
    bom.dependencies.update(Dependency(ref=c.bom_ref) for c in comps)
    _linear_dependencies(bom)
    return JsonV1Dot6(bom).output_as_string(indent=None)


# -- SPDX 2.3 -----------------------------------------------------------------------------------


def _ref_id(text: str) -> str:
    """A LicenseRef for a license name that is not an SPDX id (letters, digits, ``.``, ``-``)."""
    return "LicenseRef-" + (re.sub(r"[^A-Za-z0-9.\-]+", "-", text).strip("-") or "unknown")


def _spdx_license(licenses: Sequence[str], extracted: dict[str, str]) -> str:
    """An SPDX license expression for `licenses` (several are ANDed); names that are not SPDX ids
    become LicenseRefs, recorded in `extracted` (ref -> name)."""
    if not licenses:
        return "NOASSERTION"
    parts: list[str] = []
    for text in licenses:
        if _spdx_id(text) == text:
            parts.append(text)
        elif _is_expression(text):
            parts.append(f"({text})" if len(licenses) > 1 else text)
        else:
            ref = _ref_id(text)
            extracted[ref] = text
            parts.append(ref)
    return " AND ".join(parts)


def _spdx_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.\-]+", "-", text).strip("-") or "subject"


def spdx_json(packages: Sequence[Package], subject: Subject) -> str:
    """An SPDX 2.3 JSON document of `packages` found in `subject`."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    tool = f"Tool: {TOOL}-{__version__}"
    extracted: dict[str, str] = {}

    def annotations(props: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
        return [
            {"annotationType": "OTHER", "annotator": tool, "annotationDate": now, "comment": f"{n}={v}"}
            for n, v in props
        ]

    subject_pkg: dict[str, Any] = {
        "name": subject.name,
        "SPDXID": "SPDXRef-Subject",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "primaryPackagePurpose": "CONTAINER" if subject.kind == "image" else "OTHER",
        "annotations": annotations(_subject_props(subject)),
    }
    if subject.kind == "image" and subject.digest:
        subject_pkg["versionInfo"] = subject.digest
    spdx_packages: list[dict[str, Any]] = [subject_pkg]
    relationships: list[dict[str, str]] = [
        {
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": "SPDXRef-Subject",
        }
    ]
    if subject.os is not None:
        os_pkg: dict[str, Any] = {
            "name": subject.os.id,
            "SPDXID": "SPDXRef-OperatingSystem",
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": False,
            "primaryPackagePurpose": "OPERATING-SYSTEM",
            "description": subject.os.name or subject.os.id,
        }
        if subject.os.version_id:
            os_pkg["versionInfo"] = subject.os.version_id
        spdx_packages.append(os_pkg)
        relationships.append(
            {
                "spdxElementId": "SPDXRef-Subject",
                "relationshipType": "CONTAINS",
                "relatedSpdxElement": "SPDXRef-OperatingSystem",
            }
        )
    for i, pkg in enumerate(packages):
        sid = f"SPDXRef-Package-{i}"
        license_declared = _spdx_license(pkg.licenses, extracted)
        spdx_packages.append(
            {
                "name": pkg.name,
                "SPDXID": sid,
                "versionInfo": pkg.version,
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": False,
                "licenseConcluded": "NOASSERTION",
                "licenseDeclared": license_declared,
                "copyrightText": "NOASSERTION",
                "primaryPackagePurpose": "LIBRARY",
                "externalRefs": [
                    {
                        "referenceCategory": "PACKAGE-MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": pkg.purl,
                    }
                ],
                "annotations": annotations(_props(pkg, subject)),
            }
        )
        relationships.append(
            {"spdxElementId": "SPDXRef-Subject", "relationshipType": "CONTAINS", "relatedSpdxElement": sid}
        )
    doc: dict[str, Any] = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": subject.name,
        "documentNamespace": f"https://stockade.dev/spdxdocs/{_spdx_name(subject.name)}-{uuid.uuid4()}",
        "creationInfo": {"created": now, "creators": [tool]},
        "packages": spdx_packages,
        "relationships": relationships,
    }
    if extracted:
        doc["hasExtractedLicensingInfos"] = [
            {"licenseId": ref, "name": name, "extractedText": name} for ref, name in sorted(extracted.items())
        ]
    return orjson.dumps(doc).decode()


def write_sbom(fmt: str, packages: Sequence[Package], subject: Subject) -> str:
    """The document of `packages` in `fmt` (``cyclonedx`` or ``spdx``)."""
    if fmt == "cyclonedx":
        return cyclonedx_json(packages, subject)
    if fmt == "spdx":
        return spdx_json(packages, subject)
    raise UsageError(f"--format {fmt!r}: one of {', '.join(FORMATS)}")
