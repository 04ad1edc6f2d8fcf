"""`stockade scan rootfs|image|sbom PATH`: packages matched against the advisory database, for
pipelines (docs/vulnerabilities.md).

The advisories come from the store `stockade db import` filled (--db, --data-dir, else the running
instance's). `--severity` keeps a list (``CRITICAL,HIGH``) or a threshold (``HIGH+``);
`--ignore-unfixed` drops findings without a fix; `--ignorefile` drops accepted ones until their
expiry; what remains is printed as `--format` says, and `--exit-code N` makes the scan exit N when
anything remains.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.text import Text

from stockade.cli import common, locate
from stockade.cli.common import DataDirOpt, DbOpt
from stockade.errors import UsageError

if TYPE_CHECKING:
    from stockade.model.package import Finding, Package

scan_app = typer.Typer(
    help="Scan a root filesystem, an image or an SBOM for vulnerabilities.", no_args_is_help=True
)

FORMATS = ("table", "json", "sarif", "junit")

SeverityOpt = Annotated[
    str | None,
    typer.Option(
        "--severity",
        "-s",
        help="Severities to report: a list (CRITICAL,HIGH) or a threshold (HIGH+ or >=HIGH). Default: all.",
    ),
]
ExitCodeOpt = Annotated[
    int,
    typer.Option("--exit-code", min=0, max=255, help="Exit with this code when findings remain (default 0)."),
]
UnfixedOpt = Annotated[
    bool, typer.Option("--ignore-unfixed", help="Leave out findings that have no fixed version.")
]
IgnoreFileOpt = Annotated[
    str | None,
    typer.Option(
        "--ignorefile", help="YAML file of accepted findings (id or alias, package/purl, expires, reason)."
    ),
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        "-f",
        help="table, json (one finding per line), sarif (2.1.0) or junit. Default: table, or json with --output json.",
    ),
]


def _scan(
    target: str,
    packages: list[Package],
    errors: list[tuple[str, str]],
    root: Path | None,
    opts: dict[str, Any],
) -> None:
    from stockade.storage.advisories import AdvisoryStore
    from stockade.vulns import report
    from stockade.vulns.match import MatchProblems, match_packages
    from stockade.vulns.scan import select

    problems = MatchProblems()
    with locate.open_store(opts["db"], opts["data_dir"]) as store:
        adv = AdvisoryStore(store)
        if not adv.status()["advisories"]:
            common.print_error("the advisory database is empty: import advisories with `stockade db import`")
        findings = match_packages(packages, adv, problems)
    for path, reason in errors:
        common.print_error(f"{path}: not read: {reason}")
    for p in problems.items:
        common.print_error(p)
    sel = select(findings, opts["severities"], ignore_unfixed=opts["ignore_unfixed"], ignores=opts["ignores"])
    fmt = opts["format"]
    if fmt == "json":
        sys.stdout.write(report.json_lines(sel.reported))
    elif fmt == "sarif":
        sys.stdout.buffer.write(
            orjson.dumps(report.sarif(sel.reported, root, target), option=orjson.OPT_INDENT_2)
        )
        sys.stdout.write("\n")
    elif fmt == "junit":
        sys.stdout.write(report.junit(packages, sel.reported, target))
    else:
        _table(sel.reported)
    sys.stdout.flush()
    counts = ", ".join(f"{n} {s}" for s, n in sel.counts().items() if n)
    left_out = [
        f"{n} {why}"
        for n, why in (
            (sel.below_severity, "below --severity"),
            (sel.unfixed, "without a fix"),
            (len(sel.ignored), "ignored"),
        )
        if n
    ]
    summary = (
        f"{target}: {len(packages)} packages, {len(sel.reported)} findings"
        + (f" ({counts})" if counts else "")
        + (f"; left out: {', '.join(left_out)}" if left_out else "")
        + (f"; {len(errors)} files not read" if errors else "")
    )
    common.err_console.print(summary, markup=False)
    if opts["exit_code"] and sel.reported:
        raise typer.Exit(opts["exit_code"])


def _table(findings: list[Finding]) -> None:
    if not findings:
        common.console.print("no vulnerabilities found", markup=False)
        return
    table = common.listing_table()
    for col in ("PACKAGE", "VERSION", "ID", "SEVERITY", "FIXED", "PATH"):
        table.add_column(col, no_wrap=True, overflow="ellipsis", max_width=60)
    table.add_column("SUMMARY", no_wrap=True, overflow="ellipsis", max_width=80)
    for f in findings:
        table.add_row(
            Text(f.package.name),
            Text(f.package.version),
            Text(f.id),
            f.severity,
            Text(", ".join(f.fixed) or "-"),
            Text(f.package.path),
            Text(common.truncate(f.summary, 80)),
        )
    common.print_table(table)


def _options(
    severity: str | None,
    exit_code: int,
    ignore_unfixed: bool,
    ignorefile: str | None,
    fmt: str | None,
    output: str | None,
    db: str | None,
    data_dir: str | None,
) -> dict[str, Any]:
    """Every option checked before anything is read (a bad one is a usage error, exit 2)."""
    from stockade.vulns.ignore import load_ignorefile
    from stockade.vulns.scan import parse_severities

    common.check_choice(fmt, "--format", FORMATS)
    out = common.output_format(output)
    ignores = load_ignorefile(ignorefile) if ignorefile else None
    if ignores is not None:
        for e in ignores.expired:
            common.print_error(
                f"{e.where}: the entry for {e.id} expired on {e.expires}: it no longer ignores anything"
            )
    return {
        "severities": parse_severities(severity),
        "exit_code": exit_code,
        "ignore_unfixed": ignore_unfixed,
        "ignores": ignores,
        "format": fmt or ("json" if out == "json" else "table"),
        "db": db,
        "data_dir": data_dir,
    }


@scan_app.command("rootfs")
def rootfs_cmd(
    path: Annotated[
        str, typer.Argument(help="A directory: a root filesystem, an unpacked image, a project.")
    ],
    severity: SeverityOpt = None,
    exit_code: ExitCodeOpt = 0,
    ignore_unfixed: UnfixedOpt = False,
    ignorefile: IgnoreFileOpt = None,
    fmt: FormatOpt = None,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Scan the packages of a directory tree."""
    opts = _options(severity, exit_code, ignore_unfixed, ignorefile, fmt, output, db, data_dir)
    from stockade.packages.walk import catalog_tree

    cat = catalog_tree(path)
    _scan(path, cat.packages, cat.errors, Path(path), opts)


@scan_app.command("image")
def image_cmd(
    path: Annotated[
        str,
        typer.Argument(
            help="An image archive (podman/docker save, docker-archive, oci-archive), an OCI layout "
            "directory, or a local podman image (localhost/app:1.0)."
        ),
    ],
    severity: SeverityOpt = None,
    exit_code: ExitCodeOpt = 0,
    ignore_unfixed: UnfixedOpt = False,
    ignorefile: IgnoreFileOpt = None,
    fmt: FormatOpt = None,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Scan the packages of a container image (its layers flattened, whiteouts applied)."""
    opts = _options(severity, exit_code, ignore_unfixed, ignorefile, fmt, output, db, data_dir)
    from stockade.packages.subject import catalog_target

    cat, subject = catalog_target(path)
    if subject.kind != "image":
        raise UsageError(f"{path}: not an image (a directory: `stockade scan rootfs {path}`)")
    for member, reason in subject.unpack_errors:
        common.print_error(f"{path}: not unpacked: {member}: {reason}")
    # paths are inside the image: SARIF locations stay relative, with no base on this machine
    _scan(path, cat.packages, cat.errors, None, opts)


@scan_app.command("sbom")
def sbom_cmd(
    path: Annotated[str, typer.Argument(help="A CycloneDX or SPDX JSON document.")],
    severity: SeverityOpt = None,
    exit_code: ExitCodeOpt = 0,
    ignore_unfixed: UnfixedOpt = False,
    ignorefile: IgnoreFileOpt = None,
    fmt: FormatOpt = None,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Scan the packages an SBOM lists."""
    opts = _options(severity, exit_code, ignore_unfixed, ignorefile, fmt, output, db, data_dir)
    if not Path(path).is_file():
        raise UsageError(f"{path}: no such file")
    from stockade.packages.sbom_read import read_sbom

    _scan(path, read_sbom(path), [], None, opts)


def register(app: typer.Typer) -> None:
    """Add `stockade scan` to the command line."""
    if not any(g.typer_instance is scan_app for g in app.registered_groups):
        app.add_typer(scan_app, name="scan")
