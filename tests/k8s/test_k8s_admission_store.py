"""Vulnerability thresholds from the Stockade store: image package sets (as the runtime's
vulnerability watch saves them) matched against the store's advisories, by image reference and by
the manifest digest the inventory knows; matched again when the advisories change."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from admission_reviews import pod
from stockade.k8s.admission.images import parse_image
from stockade.k8s.admission.storeresults import StoreResults
from stockade.model.package import Package
from stockade.storage.advisories import AdvisoryStore
from stockade.storage.inventory import InventoryStore
from stockade.storage.packages import PackageSetStore
from stockade.storage.store import Store
from stockade.vulns.dbimport import import_paths

STOCKADE = str(Path(sys.executable).parent / "stockade")
IMAGE = "registry.example.com/team/app:1.0"
DIGEST = "sha256:" + "ab" * 32


def _osv(path: Path, ident: str, severity: str, fixed: str = "2.0") -> Path:
    record = {
        "schema_version": "1.6.0",
        "id": ident,
        "modified": "2026-01-01T00:00:00Z",
        "summary": f"{severity} in demo",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "demo-lib"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
            }
        ],
        "database_specific": {"severity": severity},
    }
    path.write_text(json.dumps(record))
    return path


def _row(asset: str, image: str, scan_key: str) -> dict[str, object]:
    pkg = Package("demo-lib", "1.0", "PyPI", "pkg:pypi/demo-lib@1.0", "/app/demo_lib-1.0.dist-info/METADATA")
    return {
        "asset": asset, "kind": "image", "name": image, "image": image, "workload": None, "scan_key": scan_key,
        "scanned_ns": 1, "running": False, "packages": [pkg.as_dict()], "errors": [],
    }  # fmt: skip


def test_store_results(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'stockade.db'}"
    with Store(url) as store:
        import_paths(AdvisoryStore(store), [_osv(tmp_path / "a.json", "GHSA-demo-0001", "HIGH")])
        PackageSetStore(store).save([_row("image:abc", IMAGE, "k1"), _row("image:def", "nginx:1.25", "k2")])
        # the inventory's record of image abc: its manifest digest
        InventoryStore(store).replace_images(
            "node-1", [{"id": "abc", "digest": DIGEST, "repo_tags": [IMAGE]}], 1
        )
        build = StoreResults(store)
        index = build()
        result = index.lookup(parse_image(IMAGE))
        assert result is not None and result.counts(False) == {"HIGH": 1}
        # by digest, with any name or tag (a pinned pod), and an unknown digest is unknown
        assert index.lookup(parse_image(f"registry.example.com/team/app@{DIGEST}")) is result
        assert index.lookup(parse_image(f"elsewhere.example/app:9@{DIGEST}")) is result
        assert index.lookup(parse_image(f"{IMAGE.rsplit(':', 1)[0]}@sha256:{'cd' * 32}")) is None
        assert index.lookup(parse_image("docker.io/library/nginx:1.25")) is not None
        assert index.lookup(parse_image("redis:7")) is None
        # a new advisory: matched again
        import_paths(AdvisoryStore(store), [_osv(tmp_path / "b.json", "GHSA-demo-0002", "CRITICAL")])
        result = build().lookup(parse_image(IMAGE))
        assert result is not None and result.counts(False) == {"HIGH": 1, "CRITICAL": 1}

    policy = tmp_path / "p.yaml"
    policy.write_text(
        "apiVersion: stockade.dev/v1alpha1\nkind: AdmissionPolicy\nmetadata: {name: vulns}\n"
        "spec:\n  vulnerabilities: {maxSeverity: HIGH, unknownImages: deny}\n"
    )
    obj = tmp_path / "pod.yaml"
    obj.write_text(yaml.safe_dump(pod(image=IMAGE)))
    r = subprocess.run(
        [STOCKADE, "k8s", "admission", "review", str(obj), "-p", str(policy), "--store-results", "--db", url],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert "1 CRITICAL above HIGH" in json.loads(r.stdout)["response"]["status"]["message"]
