"""`stockade db import|status`: the advisory database (docs/vulnerabilities.md).

Both open the store as `stockade alerts` does (--db, --data-dir, else the running instance's).
`import` writes it: SQLite in WAL mode lets it write beside a running instance (each side waits
its turn through the busy timeout); a store that does not exist yet is created.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stockade.cli import common, locate
from stockade.cli.common import DataDirOpt, DbOpt
from stockade.config import load_config

if TYPE_CHECKING:
    from stockade.storage.store import Store

db_app = typer.Typer(help="Import and inspect the vulnerability advisory database.", no_args_is_help=True)


def _writable_store(db: str | None, data_dir: str | None) -> Store:
    """The store `db import` writes: --db, else --data-dir's, else the running instance's (or the
    configured one)."""
    from stockade.storage.store import Store

    if db:
        url = db
    elif data_dir:
        st = common.STATE
        url = load_config(st.config_path, {**st.overrides, "data_dir": data_dir}).db_url()
    else:
        url = locate.store_url()
    return Store(url, busy_timeout_s=60.0)


@db_app.command("import")
def import_cmd(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="OSV records (.json/.yaml files, directories of them, zip exports such as all.zip), "
            "the CISA KEV catalogue (CSV or JSON), EPSS scores (CSV, gzipped or not)."
        ),
    ],
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Import advisories, KEV and EPSS into the store. A record that cannot be read is reported
    with its file and the import goes on; exit 1 when any could not be read."""
    fmt = common.output_format(output)
    from stockade.storage.advisories import AdvisoryStore
    from stockade.vulns.dbimport import import_paths, kind_of

    for p in paths:
        kind_of(Path(p))  # a path that is not there or not a feed: an error before the store opens
    with _writable_store(db, data_dir) as store:
        report = import_paths(AdvisoryStore(store), [Path(p) for p in paths])
    for s in report.sources:
        for problem in s.problems:
            common.print_error(problem)
        if s.problem_count > len(s.problems):
            common.print_error(
                f"{s.source}: {s.problem_count - len(s.problems)} more records could not be read"
            )
        if fmt == "json":
            common.json_line(s.as_dict())
        else:
            unit = {"osv": "advisories", "kev": "KEV entries", "epss": "EPSS scores"}[s.kind]
            extra = f", {s.problem_count} could not be read" if s.problem_count else ""
            common.console.print(
                f"{s.source}: {s.records} {unit} ({s.changed} new or updated{extra}) in {s.seconds:.2f} s",
                markup=False,
            )
    if report.problems:
        raise typer.Exit(1)


@db_app.command("status")
def status_cmd(db: DbOpt = None, data_dir: DataDirOpt = None, output: str | None = common.OutputOpt) -> None:
    """What the advisory database holds: advisories per ecosystem, KEV and EPSS, and every import."""
    fmt = common.output_format(output)
    from stockade.storage.advisories import AdvisoryStore

    with locate.open_store(db, data_dir) as store:
        st: dict[str, Any] = AdvisoryStore(store).status()
    if fmt == "json":
        common.json_line(st)
        return
    last = common.short_time(st["last_import_ns"]) if st["last_import_ns"] else "never"
    c = common.console
    c.print(
        f"advisories: {st['advisories']} ({st['withdrawn']} withdrawn), {st['aliases']} aliases; "
        f"last import {last}",
        markup=False,
    )
    for key, label, unit in (("kev", "KEV", "entries"), ("epss", "EPSS", "scores")):
        k = st[key]
        if k["imported_ns"]:
            when = f"dated {k['date'] or '-'}, imported {common.short_time(k['imported_ns'])}"
            c.print(f"{label}: {k[unit]} {unit}, {when}", markup=False)
        else:
            c.print(f"{label}: never imported", markup=False)
    if st["ecosystems"]:
        table = common.listing_table()
        for col in ("ECOSYSTEM", "ADVISORIES", "PACKAGES"):
            table.add_column(col, no_wrap=True)
        for e in st["ecosystems"]:
            table.add_row(e["ecosystem"], str(e["advisories"]), str(e["packages"]))
        common.print_table(table)
    if st["sources"]:
        table = common.listing_table()
        for col in ("SOURCE", "KIND", "IMPORTED (UTC)", "RECORDS", "CHANGED", "PROBLEMS", "DATE"):
            table.add_column(col, no_wrap=True, overflow="ellipsis", max_width=60)
        for s in st["sources"]:
            table.add_row(
                s["source"],
                s["kind"],
                common.short_time(s["imported_ns"]),
                str(s["records"]),
                str(s["changed"]),
                str(s["problems"]),
                s["feed_date"] or "-",
            )
        common.print_table(table)


def register(app: typer.Typer) -> None:
    """Add `stockade db` to the command line."""
    if not any(g.typer_instance is db_app for g in app.registered_groups):
        app.add_typer(db_app, name="db")
