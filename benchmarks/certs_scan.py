"""What finding certificates costs (issue 16): parsing a CA bundle into certificate records against
OpenSSL reading the same bundle in the same run, and one disk scan of this host as configured by
default.

    .venv/bin/python benchmarks/certs_scan.py [--bundle FILE] [--repeat R] [--no-host] [--json]

* **stockade bundle**: :func:`stockade.certs.formats.read_certificates` and
  :func:`stockade.certs.record.describe` of every certificate of ``--bundle`` (the OS's CA bundle,
  ``/etc/ssl/certs/ca-certificates.crt``): subject, SANs, issuer, key, validity, fingerprint,
  self-signed (a signature check), CA flag;
* **openssl bundle** (the peer): ``openssl storeutl -noout -text -certs FILE``, one process that
  decodes and prints every certificate of the same file (its start-up included: that is what a
  script running it pays);
* **host disk scan**: :func:`stockade.certs.discover.scan_root` of ``/`` with ``certs``' defaults
  (locations, exclusions, bounds): files read, certificates, seconds.

Best of ``--repeat`` rounds (5) by wall time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import harness

from stockade.certs.discover import scan_root
from stockade.certs.formats import read_certificates
from stockade.certs.record import Place, describe
from stockade.config import StockadeConfig
from stockade.runtime.certwatch import limits_of


def _best(fn: Any, repeat: int) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    """Run and print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default="/etc/ssl/certs/ca-certificates.crt")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-host", action="store_true", help="Skip the scan of this host's disk.")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    data = Path(args.bundle).read_bytes()

    def ours() -> int:
        _, certs, _ = read_certificates(data, args.bundle)
        return len([describe(c, Place("file", args.bundle, "pem")) for _, c in certs])

    t_ours, n = _best(ours, args.repeat)
    result: dict[str, Any] = {"machine": harness.machine_info(), "bundle": args.bundle, "certificates": n}
    result["stockade_bundle_s"] = round(t_ours, 4)
    openssl = shutil.which("openssl")
    if openssl:
        cmd = [openssl, "storeutl", "-noout", "-text", "-certs", args.bundle]
        t_peer, _ = _best(lambda: subprocess.run(cmd, capture_output=True, check=True), args.repeat)
        result["openssl_bundle_s"] = round(t_peer, 4)
        result["ratio_openssl_over_stockade"] = round(t_peer / t_ours, 2)
    if not args.no_host:
        limits = limits_of(StockadeConfig().certs)
        t_host, scan = _best(lambda: scan_root("/", limits), max(1, args.repeat // 2))
        result["host_scan_s"] = round(t_host, 3)
        result["host_scan_counts"] = dict(scan.counts)
    if args.json:
        print(json.dumps(result))
        return
    print(f"bundle {args.bundle}: {n} certificates")
    print(f"  stockade (parse + describe): {t_ours * 1000:8.1f} ms  ({n / t_ours:,.0f} certificates/s)")
    if "openssl_bundle_s" in result:
        print(f"  openssl storeutl -text:      {result['openssl_bundle_s'] * 1000:8.1f} ms  "
              f"(openssl / stockade = {result['ratio_openssl_over_stockade']})")  # fmt: skip
    if "host_scan_s" in result:
        c = result["host_scan_counts"]
        print(f"host disk scan (certs defaults): {result['host_scan_s']:.2f} s, {c.get('files_read', 0)} files read, "
              f"{c.get('certs', 0)} certificates + {c.get('trust_store_certs', 0)} in trust stores")  # fmt: skip


if __name__ == "__main__":
    main()
