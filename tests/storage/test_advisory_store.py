"""The advisory repository on SQLite and PostgreSQL: bulk import, newer wins, lookups, status."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from helpers import SHARED_DATA, need_file
from stockade.model.advisory import EpssScore, KevEntry
from stockade.storage.advisories import AdvisoryStore
from stockade.storage.store import Store
from stockade.vulns.osv import parse_record


def test_import_lookup_and_status(db_url: str) -> None:
    """Django's shared records stored in bulk, found by normalised name and by alias; a second
    import changes nothing, a newer record replaces its row; KEV and EPSS by CVE; status counts."""
    folder = need_file(SHARED_DATA / "osv" / "pypa" / "django")
    advs = [
        parse_record(yaml.load(p.read_bytes(), Loader=yaml.CSafeLoader))
        for p in sorted(folder.glob("*.yaml"))
    ]
    with Store(db_url) as store:
        repo = AdvisoryStore(store)
        first = repo.add_advisories(advs, str(folder))
        assert (first.records, first.changed) == (len(advs), len(advs))
        assert repo.add_advisories(advs, str(folder)).changed == 0
        newer = dataclasses.replace(advs[0], modified_ns=advs[0].modified_ns + 1, summary="newer")
        assert repo.add_advisories([newer], "x").changed == 1
        found = repo.for_packages([("PyPI", "Django")])
        assert len(found[("PyPI", "django")]) == len(advs)
        assert repo.get_many([advs[0].id])[advs[0].id].summary == "newer"
        cve = next(a for a in advs[1].aliases if a.startswith("CVE-"))
        assert advs[1].id in repo.related([cve])
        repo.add_kev([KevEntry(cve, vendor="Django")])
        repo.add_epss([EpssScore(cve, 0.5, 0.9)])
        assert repo.kev([cve, "CVE-0-0"])[cve].vendor == "Django"
        assert repo.epss([cve])[cve].percentile == 0.9
        repo.record_source(str(folder), "osv", records=len(advs), changed=len(advs), problems=0)
        st = repo.status()
        assert st["advisories"] == len(advs)
        assert st["ecosystems"] == [{"ecosystem": "PyPI", "advisories": len(advs), "packages": 1}]
        assert (st["kev"]["entries"], st["epss"]["scores"]) == (1, 1)
        assert st["sources"][0]["source"] == str(Path(folder))
