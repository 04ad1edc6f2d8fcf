"""`stockade audit verify|list|checkpoint`: the tamper-evident audit log (docs/audit.md).

`verify` and `list` read the store as `stockade alerts` does (--db, --data-dir, else the running
instance's); `checkpoint` asks the running instance, through its API, to sign one now."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from stockade.cli import common, locate
from stockade.cli.common import DataDirOpt, DbOpt, LimitOpt, SinceOpt, UntilOpt
from stockade.model import apipaths

audit_app = typer.Typer(help="Verify and read the tamper-evident audit log.", no_args_is_help=True)

PublicKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--public-key",
        help="The node's public key (PEM) to check the checkpoints with: a copy kept off the node. "
        "Default: DATA_DIR/keys/signing.pub.",
    ),
]
CheckpointFileOpt = Annotated[
    str | None,
    typer.Option(
        "--checkpoints",
        help="The checkpoint file to compare with the store (default: audit.checkpoint_file, "
        "else DATA_DIR/audit/checkpoints.jsonl).",
    ),
]


@audit_app.command("verify")
def verify_cmd(
    public_key: PublicKeyOpt = None,
    checkpoints: CheckpointFileOpt = None,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Check the whole chain and its signed checkpoints. Exit 0 and one line when intact; else exit 1,
    the first broken item on the first line, then the others."""
    fmt = common.output_format(output)
    from stockade.audit.keys import KEY_DIR, load_public_key
    from stockade.audit.node import checkpoint_file
    from stockade.audit.verify import verify

    home = Path(locate.store_data_dir(data_dir))
    key_path = Path(public_key) if public_key else home / KEY_DIR / "signing.pub"
    key = load_public_key(key_path) if public_key or key_path.is_file() else None
    cp_file = Path(checkpoints) if checkpoints else checkpoint_file(common.STATE.config(), home)
    with locate.open_store(db, data_dir) as store:
        report = verify(store, key, checkpoint_file=cp_file)
    if fmt == "json":
        common.json_line(report.to_dict())
    else:
        for line in report.lines():
            common.console.print(line, markup=False)
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("list")
def list_cmd(
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind", "-k", help="Only this kind: alert, api, mode, policy, rules, mute, response, incident."
        ),
    ] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: LimitOpt = 50,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """List audit records, newest first. With --output json: one record per line."""
    fmt = common.output_format(output)
    from stockade.storage.audit import AuditRow, AuditStore

    with locate.open_store(db, data_dir) as store:
        rows = AuditStore(store).recent(
            kind=kind,
            since_ns=common.parse_when(since, "--since"),
            until_ns=common.parse_when(until, "--until"),
            limit=limit,
        )
    if common.print_items(rows, fmt, AuditRow.to_dict, "no audit records"):
        return
    table = common.listing_table()
    for col in ("SEQ", "TIME (UTC)", "KIND", "ACTOR", "SUBJECT"):
        table.add_column(col, no_wrap=True, max_width=40, overflow="ellipsis")
    table.add_column("DATA", no_wrap=True, overflow="ellipsis")
    for r in rows:
        table.add_row(
            str(r.seq),
            common.short_time(r.time_ns),
            r.kind,
            Text(r.actor),
            Text(r.subject),
            Text(common.truncate(r.data, 120)),
        )
    common.print_table(table)


@audit_app.command("checkpoint")
def checkpoint_cmd(
    port: locate.PortOpt = None,
    data_dir: locate.DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Ask the running Stockade to sign a checkpoint of the audit log now."""
    fmt = common.output_format(output)
    with locate.api_client(port, data_dir) as c:
        cp: dict[str, Any] = locate.check(c.post(apipaths.api_path(apipaths.AUDIT_CHECKPOINTS)))
    common.emit(
        cp,
        f"checkpoint {cp['id']} signed: records up to {cp['head_seq']} (head {cp['head_hash'][:16]}, "
        f"key {cp['key_id']})",
        fmt,
    )


def register(app: typer.Typer) -> None:
    """Add `stockade audit` to the command line."""
    if not any(g.typer_instance is audit_app for g in app.registered_groups):
        app.add_typer(audit_app, name="audit")
