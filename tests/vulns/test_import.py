"""OSV, KEV and EPSS import: formats, broken records, idempotence, severities, aliases, status."""

from __future__ import annotations

import gzip
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from stockade.errors import UsageError
from stockade.model.package import Package
from stockade.storage.advisories import AdvisoryStore
from stockade.vulns.dbimport import import_paths, kind_of
from stockade.vulns.match import match_packages
from stockade.vulns.osv import parse_record


def record(ident: str, name: str, events: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    """A minimal OSV record for PyPI package `name` with one ECOSYSTEM range."""
    rec: dict[str, Any] = {
        "id": ident,
        "modified": "2024-01-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
            }
        ],
    }
    rec.update(extra)
    return rec


def pkg(name: str, version: str, eco: str = "PyPI", **kw: Any) -> Package:
    """A package as a cataloger would give it."""
    return Package(name, version, eco, f"pkg:{eco.lower()}/{name}@{version}", f"/site/{name}", **kw)


@pytest.mark.slow
def test_shared_osv_folder_imports_whole_and_again_changes_nothing(
    advisories: AdvisoryStore, osv_dir: Path
) -> None:
    """Every YAML record of ../shared/data/osv is read (none broken); a second import is a no-op."""
    n_files = sum(1 for _ in osv_dir.rglob("*.yaml"))
    first = import_paths(advisories, [osv_dir]).sources[0]
    assert (first.kind, first.records, first.changed, first.problem_count) == ("osv", n_files, n_files, 0)
    again = import_paths(advisories, [osv_dir]).sources[0]
    assert (again.records, again.changed) == (n_files, 0)
    st = advisories.status()
    assert st["advisories"] == n_files
    assert st["ecosystems"][0]["ecosystem"] == "PyPI"
    assert st["withdrawn"] >= 1
    assert [s["kind"] for s in st["sources"]] == ["osv"]


def test_zip_export_of_json_records_with_a_broken_member(
    advisories: AdvisoryStore, tmp_path: Path, osv_dir: Path
) -> None:
    """An ecosystem export (all.zip of JSON records): a broken member is named (zip and member)
    and counted; the others are imported."""
    z = tmp_path / "all.zip"
    recs = [yaml.safe_load(p.read_text()) for p in sorted((osv_dir / "pypa" / "django").glob("*.yaml"))]
    with zipfile.ZipFile(z, "w") as out:
        for r in recs:
            out.writestr(f"{r['id']}.json", json.dumps(r, default=str))
        out.writestr("BROKEN-1.json", "{not json")
        out.writestr("NOID-1.json", json.dumps({"modified": "2024-01-01T00:00:00Z"}))
    rep = import_paths(advisories, [z]).sources[0]
    assert rep.records == len(recs)
    assert rep.problem_count == 2
    assert any(f"{z}!BROKEN-1.json: not valid JSON" in p for p in rep.problems)
    assert any(f"{z}!NOID-1.json" in p and "no 'id'" in p for p in rep.problems)


def test_malformed_yaml_file_names_file_and_reason(advisories: AdvisoryStore, tmp_path: Path) -> None:
    """A record without a valid range or timestamp is reported with its path; the good one is kept."""
    d = tmp_path / "recs"
    d.mkdir()
    (d / "good.yaml").write_text(
        yaml.safe_dump(record("PYSEC-1", "a", [{"introduced": "0"}, {"fixed": "2"}]))
    )
    bad = record("PYSEC-2", "a", [{"introduced": "0"}])
    bad["modified"] = "yesterday"
    (d / "bad.yaml").write_text(yaml.safe_dump(bad))
    (d / "worse.yaml").write_text("id: [unclosed")
    rep = import_paths(advisories, [d]).sources[0]
    assert rep.records == 1
    assert sorted(p.split(":")[0] for p in rep.problems) == [
        str(d / "bad.yaml (PYSEC-2)"),
        str(d / "worse.yaml"),
    ]
    assert "'modified' is not an RFC 3339 timestamp" in " ".join(rep.problems)


def test_newer_modified_wins_older_is_ignored(advisories: AdvisoryStore, tmp_path: Path) -> None:
    """Re-importing an id replaces it only with a newer `modified`; the affected index follows."""
    f = tmp_path / "r.json"
    f.write_text(
        json.dumps(
            record("GHSA-x", "a", [{"introduced": "0"}, {"fixed": "2"}], modified="2024-02-01T00:00:00Z")
        )
    )
    import_paths(advisories, [f])
    older = record("GHSA-x", "b", [{"introduced": "0"}], modified="2024-01-01T00:00:00Z")
    f.write_text(json.dumps(older))
    assert import_paths(advisories, [f]).sources[0].changed == 0
    assert [x.id for x in match_packages([pkg("a", "1")], advisories)] == ["GHSA-x"]
    newer = record("GHSA-x", "b", [{"introduced": "0"}], modified="2024-03-01T00:00:00Z")
    f.write_text(json.dumps(newer))
    assert import_paths(advisories, [f]).sources[0].changed == 1
    assert match_packages([pkg("a", "1")], advisories) == []
    assert [x.id for x in match_packages([pkg("b", "1")], advisories)] == ["GHSA-x"]


def test_severity_from_cvss_v3_v4_labels_and_aliases(advisories: AdvisoryStore, tmp_path: Path) -> None:
    """CVSS v3 and v4 vectors give a score and its label; GitHub's MODERATE is MEDIUM; a record
    without severity takes its alias record's; none at all is UNKNOWN."""
    v3 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    v4 = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N"
    assert (
        parse_record(record("A", "a", [], severity=[{"type": "CVSS_V3", "score": v3}])).severity == "CRITICAL"
    )
    r4 = parse_record(record("B", "a", [], severity=[{"type": "CVSS_V4", "score": v4}]))
    assert (r4.severity, r4.cvss_score) == ("MEDIUM", 6.9)
    assert parse_record(record("C", "a", [], database_specific={"severity": "MODERATE"})).severity == "MEDIUM"
    assert parse_record(record("D", "a", [])).severity == "UNKNOWN"
    d = tmp_path / "r"
    d.mkdir()
    ev = [{"introduced": "0"}, {"fixed": "3.0"}]
    (d / "pysec.json").write_text(
        json.dumps(record("PYSEC-9", "lib", ev, aliases=["CVE-2024-1", "GHSA-aaaa"]))
    )
    (d / "ghsa.json").write_text(
        json.dumps(
            record(
                "GHSA-aaaa", "Lib", ev, aliases=["CVE-2024-1"], severity=[{"type": "CVSS_V3", "score": v3}]
            )
        )
    )
    (d / "other.json").write_text(json.dumps(record("PYSEC-10", "lib", [{"introduced": "0"}])))
    import_paths(advisories, [d])
    found = {f.id: f for f in match_packages([pkg("LIB", "2.0")], advisories)}
    assert set(found) == {"GHSA-aaaa", "PYSEC-10"}  # one vulnerability known by three ids: once
    merged = found["GHSA-aaaa"]
    assert set(merged.aliases) == {"PYSEC-9", "CVE-2024-1"}
    assert (merged.severity, merged.cvss_score, merged.fixed) == ("CRITICAL", 9.8, ("3.0",))
    assert (found["PYSEC-10"].severity, found["PYSEC-10"].fixed) == ("UNKNOWN", ())


def test_withdrawn_matches_nothing_and_os_release_suffix(advisories: AdvisoryStore, tmp_path: Path) -> None:
    """A withdrawn advisory matches nothing; Debian:12 applies to Debian 12 only, by binary or
    source package name, compared with the source version."""
    recs = [
        record("W-1", "a", [{"introduced": "0"}], withdrawn="2024-05-01T00:00:00Z"),
        {
            "id": "DSA-1",
            "modified": "2024-01-01T00:00:00Z",
            "aliases": ["CVE-2023-9"],
            "affected": [
                {
                    "package": {"ecosystem": "Debian:12", "name": "util-linux"},
                    "ranges": [
                        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.38.1-5+deb12u1"}]}
                    ],
                }
            ],
        },
    ]
    f = tmp_path / "recs.json"
    f.write_text(json.dumps(recs))
    assert import_paths(advisories, [f]).sources[0].records == 2
    assert match_packages([pkg("a", "1")], advisories) == []
    libmount = pkg(
        "libmount1", "2.38.1-5", "Debian", distro="12", source="util-linux", source_version="2.38.1-5"
    )
    fixed = pkg("libmount1", "2.38.1-5+deb12u3", "Debian", distro="12", source="util-linux")
    bullseye = pkg("libmount1", "2.36.1-8", "Debian", distro="11", source="util-linux")
    found = match_packages([libmount, fixed, bullseye], advisories)
    assert [(f.package.version, f.id, f.fixed) for f in found] == [
        ("2.38.1-5", "DSA-1", ("2.38.1-5+deb12u1",))
    ]


def test_kev_csv_json_and_epss(advisories: AdvisoryStore, tmp_path: Path) -> None:
    """KEV (CSV and JSON) and EPSS (CSV, gzipped) are told apart by content and mark findings."""
    kev_csv = tmp_path / "known_exploited_vulnerabilities.csv"
    kev_csv.write_text(
        "cveID,vendorProject,product,vulnerabilityName,dateAdded,shortDescription,requiredAction,dueDate,"
        "knownRansomwareCampaignUse,notes\n"
        "CVE-2021-44228,Apache,Log4j2,Log4Shell,2021-12-10,d,a,2021-12-24,Known,n\n"
        ",broken,row,,,,,,,\n"
    )
    kev_json = tmp_path / "kev.json"
    kev_json.write_text(
        json.dumps(
            {
                "title": "CISA Catalog of Known Exploited Vulnerabilities",
                "catalogVersion": "2026.12.01",
                "dateReleased": "2026-12-01T12:00:00.000Z",
                "vulnerabilities": [{"cveID": "CVE-2024-1", "dateAdded": "2024-02-02", "vendorProject": "x"}],
            }
        )
    )
    epss = tmp_path / "epss_scores-2026-12-06.csv.gz"
    epss.write_bytes(
        gzip.compress(
            b"#model_version:v2025.03.14,score_date:2026-12-06T00:00:00+0000\n"
            b"cve,epss,percentile\nCVE-2024-1,0.97,0.999\nCVE-2021-44228,0.94,0.99\nbad,row\n"
        )
    )
    assert [kind_of(p) for p in (kev_csv, kev_json, epss)] == ["kev", "kev", "epss"]
    f = tmp_path / "r.json"
    f.write_text(json.dumps(record("GHSA-k", "lib", [{"introduced": "0"}], aliases=["CVE-2024-1"])))
    rep = import_paths(advisories, [f, kev_csv, kev_json, epss])
    assert [(s.kind, s.records, s.problem_count) for s in rep.sources] == [
        ("osv", 1, 0),
        ("kev", 1, 1),
        ("kev", 1, 0),
        ("epss", 2, 1),
    ]
    st = advisories.status()
    assert st["kev"]["entries"] == 2 and st["kev"]["date"] == "2026-12-01T12:00:00.000Z"
    assert st["epss"]["scores"] == 2 and st["epss"]["date"] == "2026-12-06T00:00:00+0000"
    (finding,) = match_packages([pkg("lib", "1.0")], advisories)
    assert (finding.kev, finding.epss) == (True, 0.97)


def test_not_a_feed_is_a_usage_error(tmp_path: Path) -> None:
    """A path that is missing, or a file that is none of the feeds, is an error naming it."""
    with pytest.raises(UsageError, match="no such file"):
        kind_of(tmp_path / "missing")
    odd = tmp_path / "notes.txt"
    odd.write_text("hello")
    with pytest.raises(UsageError, match=r"notes\.txt: not OSV records"):
        kind_of(odd)


@pytest.mark.slow
def test_bulk_import_of_a_zip_export(advisories: AdvisoryStore, tmp_path: Path, osv_dir: Path) -> None:
    """3,000 JSON records in a zip (the shared records under new ids) import in bulk, in far less
    than a record per 10 ms even on a loaded machine (benchmarks/osv_import.py measures 15,000)."""
    base = [yaml.load(p.read_bytes(), Loader=yaml.CSafeLoader) for p in sorted(osv_dir.rglob("*.yaml"))[:300]]
    z = tmp_path / "all.zip"
    with zipfile.ZipFile(z, "w") as out:
        for i in range(3000):
            r = dict(base[i % len(base)])
            r["id"] = f"TEST-{i}"
            out.writestr(f"TEST-{i}.json", json.dumps(r, default=str))
    t0 = time.monotonic()
    rep = import_paths(advisories, [z]).sources[0]
    took = time.monotonic() - t0
    print(f"imported {rep.records} OSV records in {took:.1f} s ({rep.records / took:.0f}/s)")
    assert rep.records == 3000 and rep.problem_count == 0
    assert took < 30


def test_alias_records_lend_severity_only_about_the_same_package(
    advisories: AdvisoryStore, tmp_path: Path
) -> None:
    """A CVE record naming no package lends its score to a PYSEC record without one; a GHSA record
    of the same CVE about another package lends nothing (neither severity nor its id)."""
    low = "CVSS:3.1/AV:N/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N"
    crit = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    recs = [
        record("PYSEC-20", "lib", [{"introduced": "0"}], aliases=["CVE-2024-20"]),
        {
            "id": "CVE-2024-20",
            "modified": "2024-01-01T00:00:00Z",
            "severity": [{"type": "CVSS_V3", "score": low}],
        },
        record(
            "GHSA-other",
            "fork-of-lib",
            [{"introduced": "0"}],
            aliases=["CVE-2024-20"],
            severity=[{"type": "CVSS_V3", "score": crit}],
        ),
    ]
    f = tmp_path / "r.json"
    f.write_text(json.dumps(recs))
    import_paths(advisories, [f])
    (finding,) = match_packages([pkg("lib", "1")], advisories)
    assert (finding.id, finding.aliases, finding.severity, finding.cvss_score) == (
        "PYSEC-20",
        ("CVE-2024-20",),
        "LOW",
        2.0,
    )
