"""Advisory matching on ../shared/data/osv against a venv of real old PyPI releases.

The expected advisories are computed here independently of stockade.vulns: straight from the
YAML records, with ``packaging`` for PEP 440 and each range read as its events' pairs in order.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from packaging.version import Version

from stockade.model.package import Package
from stockade.storage.advisories import AdvisoryStore
from stockade.storage.store import Store
from stockade.vulns.match import MatchProblems, match_packages


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _in_events(v: Version, events: list[dict[str, str]]) -> bool:
    start: Version | None = None
    for ev in events:
        ((kind, ver),) = ev.items()
        if kind == "introduced":
            start = Version("0") if ver == "0" else Version(ver)
        elif start is not None:
            end = Version(ver)
            if start <= v and (v < end if kind == "fixed" else v <= end):
                return True
            start = None
    return start is not None and v >= start


def expected_ids(osv_dir: Path, pkg: Package) -> set[str]:
    """The ids of the advisories that affect `pkg`, from the YAML (withdrawn ones excluded)."""
    v = Version(pkg.version)
    found = set()
    for path in (osv_dir / "pypa" / _norm(pkg.name)).glob("*.yaml"):
        rec: dict[str, Any] = yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)
        if rec.get("withdrawn"):
            continue
        for aff in rec.get("affected") or []:
            if aff["package"]["ecosystem"] != "PyPI" or _norm(aff["package"]["name"]) != _norm(pkg.name):
                continue
            listed = any(Version(x) == v for x in aff.get("versions") or [] if re.match(r"^[0-9]", str(x)))
            ranged = any(
                _in_events(v, r["events"])
                for r in aff.get("ranges") or []
                if r["type"] in ("ECOSYSTEM", "SEMVER")
            )
            if listed or ranged:
                found.add(rec["id"])
    return found


def test_every_expected_advisory_found_and_no_fixed_one(
    old_venv_packages: list[Package], osv_dir: Path, osv_db: str
) -> None:
    """Each package of the venv gets exactly the advisories the YAML says (one finding per id or
    alias group), and no finding names a fix at or below the installed version."""
    packages = old_venv_packages
    assert {_norm(p.name) for p in packages} >= {"django", "flask", "bleach", "certifi", "babel"}
    problems = MatchProblems()
    with Store(osv_db) as store:
        findings = match_packages(packages, AdvisoryStore(store), problems)
    assert problems.items == []
    for p in packages:
        mine = [f for f in findings if f.package is p]
        expected = expected_ids(osv_dir, p)
        got_ids = {f.id for f in mine}
        named = got_ids | {a for f in mine for a in f.aliases}
        assert expected <= named, (p.name, sorted(expected - named))
        assert got_ids <= expected, (p.name, sorted(got_ids - expected))
        for f in mine:
            assert all(Version(x) > Version(p.version) for x in f.fixed), (f.id, f.fixed, p.version)
            assert f.as_dict()["fixed"] is None or f.as_dict()["fixed"] == list(f.fixed)
    total = sum(len(expected_ids(osv_dir, p)) for p in packages)
    assert total >= 30  # django 3.2 alone has over twenty
    django = {f.id: f for f in findings if f.package.name == "Django"}
    assert django["PYSEC-2021-98"].fixed == ("3.2.4",)
    assert "CVE-2021-33203" in django["PYSEC-2021-98"].aliases
