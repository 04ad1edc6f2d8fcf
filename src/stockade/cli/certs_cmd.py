"""`stockade certs`: the TLS certificates of this node (docs/certificates.md).

By default the running instance's latest scan (``GET /api/v1/certs``: the host's and every running
container's files, and the certificates served on their listening ports); ``--path DIR`` scans a
directory tree (or one file) here and now, without a running instance. ``--expiring DAYS`` keeps
those that expire within DAYS (expired ones included). The certificates of trust stores (the OS's
CA bundle and the like) are counted on the summary line and listed only with ``--all``.

``--output json`` prints one JSON object per certificate (the API's items).
"""

from __future__ import annotations

import os
import time
from typing import Annotated, Any

import typer

from stockade.cli import common, locate
from stockade.cli.locate import DataDirOpt, PortOpt
from stockade.errors import UsageError
from stockade.model import apipaths

COLUMNS = ("EXPIRES", "DAYS", "SUBJECT", "KEY", "FLAGS", "WHERE", "FOUND AT", "FORMAT")


def _scan_path(path: str) -> dict[str, Any]:
    """The same document as the API's, from a scan of `path` here."""
    from stockade.certs.discover import DiskScan, Limits, scan_file, scan_root
    from stockade.runtime.certwatch import limits_of

    cfg = common.STATE.config()
    if not os.path.exists(path):
        raise UsageError(f"--path: {path}: no such file or directory")
    lim = limits_of(cfg.certs)
    if os.path.isdir(path):
        scan = scan_root(
            path, Limits(("/",), lim.max_depth, lim.max_entries, lim.max_file_bytes, lim.exclude)
        )
    else:
        scan = DiskScan(os.path.dirname(os.path.abspath(path)))
        scan_file(scan.root, "/" + os.path.basename(path), scan, lim)
    now = time.time()
    trust = [r for r in scan.certs if r.place.trust_store]
    items = [r.to_dict(now) for r in scan.certs]
    for i in items:  # the path on this machine, not inside the tree
        i["location"] = os.path.join(scan.root, str(i["location"]).lstrip("/"))
    return {
        "scanned_at": now,
        "items": items,
        "summary": {
            "certificates": len(scan.certs),
            "trust_store": len(trust),
            "trust_store_expired": sum(1 for r in trust if r.not_after_ts <= now),
            "counts": dict(scan.counts),
        },
        "problems": scan.problems,
    }


def _flags(item: dict[str, Any]) -> str:
    out = [f for f, on in (("CA", item["ca"]), ("self-signed", item["self_signed"])) if on]
    if item.get("trust_store"):
        out.append("trust-store")
    return ",".join(out) or "-"


def _days(item: dict[str, Any]) -> str:
    d = float(item["days_left"])
    return "expired" if d <= 0 else f"{d:.0f}"


def _line(item: dict[str, Any]) -> list[str]:
    size = f" {item['key_size']}" if item.get("key_size") else ""
    where = item.get("container_name") or (item["container_id"][:12] if item.get("container_id") else "host")
    return [
        item["not_after"][:10],
        _days(item),
        common.truncate(item["subject"] or "(none)", 60),
        f"{item['key_type']}{size}",
        _flags(item),
        where,
        item["location"] + (f" [{item['entry']}]" if item.get("entry") not in (None, "0") else ""),
        item["format"],
    ]


def certs(
    path: Annotated[
        str | None, typer.Option("--path", help="Scan this directory tree (or file) here, offline.")
    ] = None,
    expiring: Annotated[
        float | None,
        typer.Option(
            "--expiring", min=0, help="Only certificates that expire within DAYS (expired included)."
        ),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="List the trust stores' certificates too.")] = False,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """TLS certificates on this node: subject, SANs, issuer, key, expiry, where found (files in the
    host and containers, ports served over loopback). From the running instance, or --path."""
    fmt = common.output_format(output)
    if path is not None:
        doc = _scan_path(path)
    else:
        params = {"expiring": str(expiring)} if expiring is not None else {}
        with locate.api_client(port, data_dir) as c:
            doc = locate.check(c.get(apipaths.api_path(apipaths.CERTS), params=params))
        if doc.get("scanned_at") is None:
            common.err_console.print("stockade: the first certificate scan is not finished yet", markup=False)
    items = [
        i
        for i in doc["items"]
        if (expiring is None or float(i["days_left"]) <= expiring) and (all_ or not i.get("trust_store"))
    ]
    items.sort(key=lambda i: (i["not_after"], i.get("container_id", ""), i["location"]))
    for p in doc.get("problems", []):
        common.err_console.print(f"stockade: warning: {p}", markup=False)
    if common.print_items(items, fmt, lambda i: i, "no certificates" + (" expiring" if expiring else "")):
        if fmt == "text":
            _summary(doc)
        return
    table = common.listing_table()
    for col in COLUMNS:
        table.add_column(col, no_wrap=col not in ("SUBJECT", "FOUND AT"))
    for i in items:
        table.add_row(*_line(i))
    common.print_table(table)
    _summary(doc)


def _summary(doc: dict[str, Any]) -> None:
    s = doc.get("summary") or {}
    n = s.get("trust_store", 0)
    if n:
        common.console.print(
            f"{n} certificates of trust stores ({s.get('trust_store_expired', 0)} expired) "
            "counted, not alerted (--all lists them)",
            markup=False,
        )


def register(app: typer.Typer) -> None:
    """Add `certs` to the command line."""
    app.command("certs")(certs)
