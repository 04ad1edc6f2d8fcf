"""`stockade sbom PATH [--format cyclonedx|spdx]`: the document on stdout, valid, with every package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from image_archives import Entry, docker_archive, layer
from stockade.packages.subject import catalog_target

STOCKADE = str(Path(sys.executable).parent / "stockade")


def sbom(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKADE_")}
    return subprocess.run(
        [STOCKADE, "sbom", *args], capture_output=True, text=True, timeout=300, env=env, check=False
    )


def check_document(out: str, fmt: str, tmp_path: Path) -> dict[str, Any]:
    """`out` is one valid document in `fmt`; its purls."""
    if fmt == "cyclonedx":
        assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(out) is None
    else:
        path = tmp_path / "out.spdx.json"
        path.write_text(out)
        assert [m.validation_message for m in validate_full_spdx_document(parse_file(str(path)))] == []
    doc: dict[str, Any] = json.loads(out)
    return doc


def purls(doc: dict[str, Any]) -> list[str]:
    """Every package purl of a CycloneDX or SPDX document."""
    if "components" in doc:
        return sorted(c["purl"] for c in doc["components"] if "purl" in c)
    return sorted(r["referenceLocator"] for p in doc["packages"] for r in p.get("externalRefs", []))


@pytest.mark.parametrize("fmt", ["cyclonedx", "spdx"])
def test_the_sbom_of_an_image_archive(tmp_path: Path, fmt: str) -> None:
    meta = b"Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\nLicense: MIT\n"
    base = layer([Entry("etc/", "dir"), Entry("etc/os-release", data=b"ID=debian\nVERSION_ID=12\n")])
    app = layer(
        [
            Entry("usr/lib/python3/dist-packages/six-1.16.0.dist-info/", "dir"),
            Entry("usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA", data=meta),
        ]
    )
    archive = tmp_path / "app.tar"
    image_id = docker_archive(archive, [base, app], tags=["localhost/app:1"])
    r = sbom(str(archive), "--format", fmt)
    assert r.returncode == 0, r.stderr
    doc = check_document(r.stdout, fmt, tmp_path)
    catalog, _ = catalog_target(archive)
    assert purls(doc) == sorted(p.purl for p in catalog.packages)
    if fmt == "cyclonedx":
        assert doc["metadata"]["component"]["type"] == "container"
        assert doc["metadata"]["component"]["version"] == image_id
    else:
        assert doc["packages"][0]["versionInfo"] == image_id


@pytest.mark.root
def test_the_sbom_of_a_debian_tree(debian_rootfs: Path, tmp_path: Path) -> None:
    # SPDX of the same tree: tests/packages/test_sbom.py (in-process, no second start-up)
    fmt = "cyclonedx"
    r = sbom(str(debian_rootfs), "-f", fmt)
    assert r.returncode == 0, r.stderr
    doc = check_document(r.stdout, fmt, tmp_path)
    catalog, subject = catalog_target(debian_rootfs)
    assert purls(doc) == sorted(p.purl for p in catalog.packages)
    assert subject.os is not None and subject.os.id == "debian"


def test_bad_arguments_are_one_line_errors(tmp_path: Path) -> None:
    r = sbom(str(tmp_path), "--format", "xml")
    assert (
        r.returncode == 2
        and "stockade: error: --format must be one of cyclonedx, spdx, not 'xml'" in r.stderr
    )
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\0" * 100)
    r = sbom(str(junk))
    assert r.returncode == 2 and f"stockade: error: {junk}: not an image archive" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
