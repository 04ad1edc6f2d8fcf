"""What importing and matching advisories costs: a 15,000-record OSV export (the size of OSV's PyPI
``all.zip``) imported into a fresh store, against the floor of reading and decoding it, in the same
run (issue 16).

    .venv/bin/python benchmarks/osv_import.py [--count N] [--repeat R] [--json]

The export is made from ../shared/data/osv (the PyPA records, under new ids ``BENCH-<n>`` so that
every record is new), JSON members in a zip as OSV publishes them. Figures, best of ``--repeat``
rounds (2) by wall time, each round into a fresh SQLite store (WAL mode, as `stockade up` keeps it):

* **decode floor**: read every member of the zip and ``orjson.loads`` it: what any importer pays;
* **parse**: the floor plus :func:`stockade.vulns.osv.parse_record` of each (severity, ranges);
* **import**: ``stockade db import`` of the zip (:func:`stockade.vulns.dbimport.import_paths`):
  parse and store, in transactions of 2,000 records;
* **re-import**: the same zip again (every record unchanged: nothing written);
* **match**: :func:`stockade.vulns.match.match_packages` of one package per affected name of the
  shared records (at version 0.0.1, so most advisories apply) against the imported store.

Trivy, the peer of the package catalogers, cannot take part: it matches only against its own
database, which it downloads from an image registry (``--skip-db-update`` on a first run is an
error), and none is reachable here.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import harness
import orjson
import yaml

from stockade.model.package import Package
from stockade.storage.advisories import AdvisoryStore
from stockade.storage.store import Store
from stockade.vulns.dbimport import import_paths
from stockade.vulns.match import match_packages
from stockade.vulns.osv import parse_record

SHARED_OSV = harness.REPO.parent / "shared" / "data" / "osv"


@dataclass
class Result:
    """Seconds (best round) and records per second of each figure."""

    records: int
    packages: int
    seconds: dict[str, float] = field(default_factory=dict)
    machine: dict[str, object] = field(default_factory=harness.machine_info)


def make_export(dest: Path, count: int) -> tuple[Path, list[str]]:
    """A zip of `count` JSON records made from the shared ones, and the affected package names."""
    base = [yaml.load(p.read_bytes(), Loader=yaml.CSafeLoader) for p in sorted(SHARED_OSV.rglob("*.yaml"))]
    names = sorted({a["package"]["name"] for r in base for a in r.get("affected") or []})
    z = dest / "all.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as out:
        for i in range(count):
            r = dict(base[i % len(base)])
            r["id"] = f"BENCH-{i}"
            out.writestr(f"BENCH-{i}.json", json.dumps(r, default=str))
    return z, names


def measure(args: argparse.Namespace) -> Result:
    """Every figure, best of --repeat rounds."""
    with tempfile.TemporaryDirectory() as tmp:
        z, names = make_export(Path(tmp), args.count)
        packages = [Package(n, "0.0.1", "PyPI", f"pkg:pypi/{n}@0.0.1", "/bench") for n in names]
        res = Result(records=args.count, packages=len(packages))
        best: dict[str, float] = {}

        def keep(name: str, seconds: float) -> None:
            best[name] = min(best.get(name, seconds), seconds)

        for rnd in range(args.repeat):
            t0 = time.perf_counter()
            with zipfile.ZipFile(z) as zf:
                docs = [orjson.loads(zf.read(m)) for m in zf.namelist()]
            keep("decode floor", time.perf_counter() - t0)
            t0 = time.perf_counter()
            with zipfile.ZipFile(z) as zf:
                for m in zf.namelist():
                    parse_record(orjson.loads(zf.read(m)))
            keep("parse", time.perf_counter() - t0)
            del docs
            with Store(f"sqlite:///{tmp}/round{rnd}.db") as store:
                adv = AdvisoryStore(store)
                t0 = time.perf_counter()
                rep = import_paths(adv, [z])
                keep("import", time.perf_counter() - t0)
                assert rep.sources[0].changed == args.count, rep.sources[0].as_dict()
                t0 = time.perf_counter()
                rep = import_paths(adv, [z])
                keep("re-import", time.perf_counter() - t0)
                assert rep.sources[0].changed == 0
                t0 = time.perf_counter()
                match_packages(packages, adv)
                keep("match", time.perf_counter() - t0)
        res.seconds = best
        return res


def print_table(res: Result) -> None:
    """The figures with records per second and the ratio to the decode floor."""
    floor = res.seconds["decode floor"]
    print(f"{res.records:,} OSV records (JSON in a zip); {res.packages} packages matched")
    print(f"{'figure':<14}{'seconds':>10}{'records/s':>12}{'x floor':>9}")
    for name, s in res.seconds.items():
        print(f"{name:<14}{s:>10.2f}{res.records / s:>12,.0f}{s / floor:>9.1f}")
    m = res.machine
    print(f"machine: {m.get('cpu_model')}, {m.get('nproc')} CPUs, load {m.get('loadavg')}")


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=15000, help="records in the export (default 15,000)")
    ap.add_argument("--repeat", type=int, default=2, help="rounds; the best is reported (default 2)")
    ap.add_argument("--json", action="store_true", help="print machine-readable results")
    return ap.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(harness.main(None, parse, measure, print_table))
