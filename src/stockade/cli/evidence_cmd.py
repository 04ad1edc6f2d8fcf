"""`stockade evidence capture|list|show|verify`: forensic evidence bundles (docs/evidence.md).

`capture`, `list`, and `show`/`verify` of a bundle by id go through the running instance's API
(found as `stockade status` finds it: stockade.cli.locate), which records views and verifications
in the bundle's chain of custody. `show` and `verify` of a bundle *directory* (a path) work offline,
on a copy too, and change nothing: ``stockade evidence verify /mnt/usb/ev-... --public-key
signing.pub``.

`stockade evidence verify BUNDLE` exits 0 when the bundle is intact, 1 when it is broken (every
problem printed, the first named in the error line), 2 when BUNDLE is not a bundle at all: a
contract.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

from stockade.cli import common, locate
from stockade.cli.locate import DataDirOpt, PortOpt
from stockade.errors import NotFoundError, StockadeError, UsageError
from stockade.model import apipaths

evidence_app = typer.Typer(
    help="Forensic evidence: capture, list, show, verify bundles.", no_args_is_help=True
)

BundleArg = Annotated[
    str,
    typer.Argument(metavar="BUNDLE", help="A bundle's id (as `evidence list` shows it) or its directory."),
]


class BrokenBundle(StockadeError):
    """An evidence bundle that does not verify (exit 1)."""

    title = "Evidence bundle broken"


def _is_path(ref: str) -> bool:
    return "/" in ref or Path(ref).is_dir()


@evidence_app.command("capture")
def capture(
    container: Annotated[
        str, typer.Argument(metavar="CONTAINER", help="Its full id, unique id prefix or name.")
    ],
    pid: Annotated[
        list[int] | None, typer.Option("--pid", help="Only this process of the container (repeatable).")
    ] = None,
    memory: Annotated[
        list[str] | None,
        typer.Option("--memory", help="Dump this pid's memory, or 'all' (repeatable); taken while frozen."),
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the manifest and custody).")] = "",
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Capture a running container into a sealed bundle; print the bundle's path."""
    fmt = common.output_format(output)
    mem: list[int | str] = []
    for m in memory or []:
        if m.strip().lower() == "all":
            mem.append("all")
        elif m.strip().isdigit():
            mem.append(int(m))
        else:
            raise UsageError(f"--memory {m!r}: a pid or 'all'")
    body = {
        "container": container,
        "pids": pid or None,
        "memory": mem or None,
        "reason": reason,
        "actor": common.who(),
        "command": shlex.join(
            [
                "stockade",
                "evidence",
                "capture",
                container,
                *(f"--pid={p}" for p in pid or []),
                *(f"--memory={m}" for m in memory or []),
                *(["--reason", reason] if reason else []),
            ]
        ),
    }
    with locate.api_client(port, data_dir) as c:
        res = locate.check(c.post(apipaths.api_path(apipaths.EVIDENCE), json=body, timeout=600.0))
    if fmt == "json":
        common.json_line(res)
        return
    common.console.print(res["path"], markup=False)
    for p in res.get("problems") or []:
        common.print_error(f"not collected: {p}")


@evidence_app.command("list")
def list_bundles(
    port: PortOpt = None, data_dir: DataDirOpt = None, output: str | None = common.OutputOpt
) -> None:
    """Every bundle of the running instance, newest first."""
    fmt = common.output_format(output)
    with locate.api_client(port, data_dir) as c:
        items = locate.check(c.get(apipaths.api_path(apipaths.EVIDENCE)))["items"]
    if fmt == "json":
        for b in items:
            common.json_line(b)
        return
    if not items:
        common.console.print("no evidence bundles", markup=False)
        return
    table = common.listing_table()
    for col in ("BUNDLE", "STARTED", "CONTAINER", "FILES", "FROZEN", "REASON"):
        table.add_column(col)
    for b in items:
        t = b.get("target") or {}
        frozen = ((b.get("frozen") or {}).get("during") or {}).get("frozen")
        table.add_row(
            b["id"],
            str(b.get("started") or "-"),
            str(t.get("container_name") or str(t.get("container_id") or "-")[:12]),
            str(b.get("files")),
            "-" if frozen is None else ("yes" if frozen else "no"),
            b.get("reason") or "",
        )
    common.print_table(table)


def _show_text(d: dict[str, Any]) -> str:
    m = d.get("manifest") or {}
    s = d.get("summary") or {}
    t = m.get("target") or {}
    col = m.get("collector") or {}
    fz = (m.get("frozen") or {}).get("during") or {}
    fs = s.get("filesystem") or {}
    mem = ", ".join(f"{x['pid']} ({x['bytes']} bytes)" for x in s.get("memory_dumps") or [])
    lines = [
        f"bundle:     {d.get('id')}",
        f"path:       {d.get('path')}",
        f"target:     {t.get('kind')} {str(t.get('container_id') or '')[:12]} ({t.get('container_name')}), "
        f"{t.get('runtime')}, image {t.get('image')}",
        f"reason:     {m.get('reason') or '-'}",
        f"collector:  {col.get('actor')} (uid {col.get('uid')} on {col.get('host')}, stockade {col.get('stockade_version')})",
        f"time:       {m.get('started')} .. {m.get('ended')}",
        f"frozen:     {'yes' if fz.get('frozen') else 'no'} during the capture (freezer: "
        f"{(m.get('frozen') or {}).get('freezer')})",
        f"processes:  {s.get('processes')}, sockets {s.get('sockets')} ({s.get('listening')} listening, "
        f"{s.get('established')} established)",
        f"memory:     {mem or '-'}",
        "filesystem: "
        + (
            ", ".join(f"{n} {k}" for k, n in sorted((fs.get("counts") or {}).items())) or "no changes"
            if fs.get("known")
            else f"unknown: {fs.get('reason')}"
        ),
        f"files:      {len(m.get('files') or [])}, signed by key {(m.get('signer') or {}).get('key_id')}",
    ]
    lines += [f"problem:    {p}" for p in m.get("problems") or []]
    lines.append("custody:")
    for e in d.get("custody") or []:
        lines.append(
            f"  {e.get('seq')} {e.get('time')} {e.get('action')} by {e.get('actor')} {e.get('note') or ''}".rstrip()
        )
    return "\n".join(lines)


@evidence_app.command("show")
def show_bundle(
    bundle: BundleArg,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """A bundle's target, collector, times, frozen state, what it holds, its chain of custody."""
    fmt = common.output_format(output)
    if _is_path(bundle):
        from stockade.evidence.desk import bundle_details
        from stockade.evidence.verify import verify_bundle

        verify_bundle(bundle)  # a path that is no bundle: a usage error, before reading it
        d = bundle_details(Path(bundle))
    else:
        with locate.api_client(port, data_dir) as c:
            d = locate.check(
                c.get(
                    apipaths.api_path(apipaths.EVIDENCE_BUNDLE, bundle_id=bundle),
                    params={"actor": common.who()},
                )
            )
    common.emit(d, _show_text(d), fmt)


def _report_text(r: dict[str, Any]) -> str:
    head = "intact" if r["ok"] else f"BROKEN ({len(r['problems'])} problems)"
    lines = [
        f"{r.get('id') or r['path']}: {head}",
        f"  {r['files_checked']} files checked, {r['custody_entries']} custody entries, "
        f"signature key {r.get('key_id')} ({r.get('key_source')})",
    ]
    if r.get("key_source") == "manifest":
        lines.append(
            "  note: checked against the key recorded in the bundle; give --public-key to check who signed it"
        )
    lines += [f"  {p['kind']}: {p['item']}: {p['message']}" for p in r["problems"]]
    return "\n".join(lines)


@evidence_app.command("verify")
def verify(
    bundle: BundleArg,
    public_key: Annotated[
        str | None, typer.Option("--public-key", help="The node's signing.pub to check the signatures with.")
    ] = None,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Recompute every hash; find any changed, added or removed file, a changed manifest, a broken
    chain of custody. Exit 0 when intact, 1 when broken (the first problem named), 2 for a BUNDLE
    that is not a bundle."""
    fmt = common.output_format(output)
    if _is_path(bundle) or public_key is not None:
        from stockade.evidence.verify import verify_bundle

        if not _is_path(bundle):
            raise UsageError(f"{bundle}: --public-key verifies a bundle directory: give its path")
        r = verify_bundle(bundle, public_key).to_dict()
    else:
        try:
            with locate.api_client(port, data_dir) as c:
                r = locate.check(
                    c.get(
                        apipaths.api_path(apipaths.EVIDENCE_VERIFY, bundle_id=bundle),
                        params={"actor": common.who()},
                    )
                )
        except NotFoundError as e:
            raise UsageError(str(e)) from None
    common.emit(r, _report_text(r), fmt)
    if not r["ok"]:
        raise BrokenBundle(f"{r.get('id') or r['path']}: broken: {r['first_problem']}")


def register(app: typer.Typer) -> None:
    """Add `evidence` to the command line."""
    app.add_typer(evidence_app, name="evidence")
