"""A Debian minbase tree scanned against Debian advisories written for its real versions: OS
advisories name source packages, carry the release (``Debian:12``), and compare as dpkg does."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from stockade.cli import common
from stockade.cli.main import main


@pytest.fixture(autouse=True)
def fresh_cli_state() -> Iterator[None]:
    common.STATE = common.CliState()
    yield
    common.STATE = common.CliState()


def _stanzas(root: Path) -> list[dict[str, str]]:
    out = []
    for block in (root / "var/lib/dpkg/status").read_text().split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", block, re.M))
        if fields.get("Package") and "installed" in fields.get("Status", ""):
            out.append(fields)
    return out


def _source(st: dict[str, str]) -> tuple[str, str]:
    src = st.get("Source", st["Package"])
    m = re.match(r"^(\S+)(?: \((\S+)\))?$", src)
    assert m is not None
    return m.group(1), m.group(2) or st["Version"]


def _record(ident: str, eco: str, name: str, events: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "id": ident,
        "modified": "2026-01-01T00:00:00Z",
        "affected": [
            {"package": {"ecosystem": eco, "name": name}, "ranges": [{"type": "ECOSYSTEM", "events": events}]}
        ],
    }


@pytest.mark.root
def test_source_advisories_meet_every_binary_of_the_source(
    debian_rootfs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An advisory on util-linux fixed just above the installed version meets every binary built
    from util-linux (expected set from the status file); one fixed at the installed version, one
    for Debian 11, and one with the fix below behind a tilde meet nothing."""
    stanzas = _stanzas(debian_rootfs)
    util = [s for s in stanzas if _source(s)[0] == "util-linux"]
    assert len(util) >= 4  # util-linux, libmount1, libblkid1, libsmartcols1, ...
    installed = _source(util[0])[1]
    above, at = f"{installed}+x1", installed
    recs = [
        _record("DEBIAN-CVE-TEST-1", "Debian:12", "util-linux", [{"introduced": "0"}, {"fixed": above}]),
        _record("DEBIAN-CVE-TEST-2", "Debian:12", "util-linux", [{"introduced": "0"}, {"fixed": at}]),
        _record("DEBIAN-CVE-TEST-3", "Debian:11", "util-linux", [{"introduced": "0"}, {"fixed": above}]),
        _record(
            "DEBIAN-CVE-TEST-4", "Debian", "util-linux", [{"introduced": "0"}, {"fixed": f"{installed}~rc1"}]
        ),
    ]
    f = tmp_path / "debian.json"
    f.write_text(json.dumps(recs))
    db = f"sqlite:///{tmp_path / 'stockade.db'}"
    assert main(["db", "import", str(f), "--db", db]) == 0
    capsys.readouterr()
    code = main(["-o", "json", "scan", "rootfs", str(debian_rootfs), "--db", db, "--exit-code", "4"])
    out, err = capsys.readouterr()
    assert code == 4, err
    found = [orjson.loads(x) for x in out.splitlines()]
    assert {f["id"] for f in found} == {"DEBIAN-CVE-TEST-1"}
    assert sorted(f["package"] for f in found) == sorted(s["Package"] for s in util)
    for x in found:
        assert x["ecosystem"] == "Debian" and x["fixed"] == [above] and x["path"] == "/var/lib/dpkg/status"
        assert x["purl"].startswith("pkg:deb/debian/")
