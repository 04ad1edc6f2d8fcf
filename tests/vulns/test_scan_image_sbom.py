"""`stockade scan image` of a docker-archive (layers, whiteouts) and `stockade scan sbom` of the
CycloneDX and SPDX documents `stockade sbom` writes: the same findings as the tree they describe."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from image_archives import Entry, docker_archive, layer
from stockade.cli import common
from stockade.cli.main import main

SITE = "usr/local/lib/python3.11/site-packages"


@pytest.fixture(autouse=True)
def fresh_cli_state() -> Iterator[None]:
    common.STATE = common.CliState()
    yield
    common.STATE = common.CliState()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, Any]], str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, [orjson.loads(x) for x in out.splitlines() if x.strip()], err


def _metadata(name: str, version: str) -> bytes:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()


def test_scan_image_sees_the_flattened_layers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, osv_db: str
) -> None:
    """Django and bottle installed in one layer, bottle removed by a whiteout in the next: the
    image's findings are Django's only, located in the image's tree; --exit-code applies."""
    lower = layer(
        [
            Entry(f"{SITE}/Django-3.2.dist-info/METADATA", data=_metadata("Django", "3.2")),
            Entry(f"{SITE}/bottle-0.12.18.dist-info/METADATA", data=_metadata("bottle", "0.12.18")),
        ]
    )
    upper = layer([Entry(f"{SITE}/.wh.bottle-0.12.18.dist-info")])
    archive = tmp_path / "app.tar"
    docker_archive(archive, [lower, upper])
    code, found, err = run(
        capsys, "-o", "json", "scan", "image", str(archive), "--db", osv_db, "--exit-code", "5"
    )
    assert code == 5, err
    assert {f["package"] for f in found} == {"Django"}
    assert len(found) >= 20 and "PYSEC-2021-98" in {f["id"] for f in found}
    assert {f["path"] for f in found} == {f"/{SITE}/Django-3.2.dist-info/METADATA"}
    assert f"{archive}: 1 packages" in err
    code, _, err = run(capsys, "scan", "image", str(tmp_path / "missing.tar"), "--db", osv_db)
    assert code == 2 and "missing.tar: not a file, a directory or a podman image" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("fmt", ["cyclonedx", "spdx"])
def test_scan_sbom_gives_the_findings_of_the_tree(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, old_venv: Path, osv_db: str, fmt: str
) -> None:
    """An SBOM of the old venv, scanned, gives the same (package, version, advisory) findings as
    scanning the venv itself."""
    assert main(["sbom", str(old_venv), "--format", fmt]) == 0
    doc = tmp_path / f"venv.{fmt}.json"
    doc.write_text(capsys.readouterr().out)
    code, tree, _ = run(capsys, "-o", "json", "scan", "rootfs", str(old_venv), "--db", osv_db)
    assert code == 0
    code, from_sbom, err = run(capsys, "-o", "json", "scan", "sbom", str(doc), "--db", osv_db)
    assert code == 0, err

    def key(f: dict[str, Any]) -> tuple[str, str, str]:
        return (f["package"].lower(), f["version"], f["id"])

    assert len(tree) >= 30
    assert sorted(map(key, from_sbom)) == sorted(map(key, tree))
