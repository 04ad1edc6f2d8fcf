"""Discovery of certificate files under a root (tests/certs/conftest.py's tree): every format in the
known locations, trust stores counted apart, keys never opened, links not followed, a broken file
named with its path while the scan goes on; and `stockade certs --path` over the same tree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from stockade.certs.discover import Limits, is_trust_store, scan_root
from tlsgen import CertTree

STOCKADE = str(Path(sys.executable).parent / "stockade")


def test_a_scan_finds_every_format_and_counts_what_it_skipped(cert_tree: CertTree) -> None:
    scan = scan_root(str(cert_tree.root))
    found = {
        (r.place.location, r.place.format, r.place.entry, r.sha256)
        for r in scan.certs
        if not r.place.trust_store
    }
    assert found == cert_tree.expected
    trust = [r for r in scan.certs if r.place.trust_store]
    assert len(trust) == cert_tree.trust_store
    assert {r.place.location for r in trust} == {"/etc/ssl/certs/ca-certificates.crt"}
    assert scan.counts["keys_not_read"] == 1 and scan.counts["symlinks_skipped"] == 1
    assert scan.counts["unparsable"] == 1
    assert [p for p in scan.problems if p.startswith("/home/u/broken.pem: ")], scan.problems
    assert not any("/usr/share/doc" in r.place.location for r in scan.certs)


def test_the_scan_is_bounded(cert_tree: CertTree) -> None:
    small = scan_root(str(cert_tree.root), Limits(max_file_bytes=1024))
    assert small.counts["too_large"] >= 1 and any("larger than 1024 bytes" in p for p in small.problems)
    capped = scan_root(str(cert_tree.root), Limits(max_entries=3))
    assert capped.counts["entries_cap_reached"] == 1
    only = scan_root(str(cert_tree.root), Limits(locations=("/srv",)))
    assert {r.place.location for r in only.certs} == {"/srv/app/client.der"}


def test_trust_store_paths() -> None:
    assert is_trust_store("/etc/ssl/certs/ca-certificates.crt")
    assert is_trust_store("/usr/lib/python3/dist-packages/certifi/cacert.pem")
    assert is_trust_store("/usr/lib/jvm/java-17-openjdk-amd64/lib/security/cacerts")
    assert not is_trust_store("/etc/nginx/certs/web.pem")


def test_the_certs_command_scans_a_path_offline(cert_tree: CertTree) -> None:
    r = subprocess.run(
        [STOCKADE, "certs", "--path", str(cert_tree.root), "--output", "json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    items = [json.loads(line) for line in r.stdout.splitlines()]
    root = str(cert_tree.root)
    got = {(i["location"][len(root) :], i["format"], i["entry"], i["sha256"]) for i in items}
    # the whole tree, not only the known locations; trust stores only with --all
    assert got - {g for g in got if g[0] == "/usr/share/doc/elsewhere.pem"} == cert_tree.expected
    assert len(got) == len(cert_tree.expected) + 1
    assert "home/u/broken.pem" in r.stderr
    soon = subprocess.run(
        [STOCKADE, "certs", "--path", str(cert_tree.root), "--expiring", "30"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert soon.returncode == 0, soon.stderr
    assert "tree.test" in soon.stdout and "app.test" in soon.stdout and "expired" in soon.stdout
    assert "client.test" not in soon.stdout and "java.test" not in soon.stdout
    assert "3 certificates of trust stores (1 expired)" in soon.stdout
    bad = subprocess.run(
        [STOCKADE, "certs", "--path", "/nonexistent/x"], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and "--path: /nonexistent/x: no such file" in bad.stderr
