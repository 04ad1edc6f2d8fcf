"""`stockade drift CONTAINER`: a running container's files added, changed and deleted against its
image (docs/drift.md).

From the running instance (``GET /api/v1/containers/{id}/drift``: a watched change not alerted yet
raises its alert) when one runs here, else computed here (as root) with ``drift.watch`` of the
configuration; ``--local`` computes here always. ``--output json`` prints the whole drift document
on one line.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from stockade.cli import common, locate
from stockade.cli.locate import DataDirOpt, PortOpt
from stockade.model import apipaths
from stockade.runtime.instance import running

_MARK = {"added": "A", "changed": "C", "deleted": "D", "opaque": "O"}


def _local(ref: str) -> dict[str, Any]:
    from stockade.inventory.drift import container_drift
    from stockade.sensor.containers.lookup import find_container

    return container_drift(find_container(ref), common.STATE.config().drift.watch)


def _text(doc: dict[str, Any]) -> None:
    c = doc["container"]
    name = f"{str(c['id'])[:12]} ({c['name']})" if c.get("name") else str(c["id"])[:12]
    if not doc["known"]:
        common.console.print(f"container {name}: drift unknown: {doc.get('reason')}", markup=False)
        return
    counts = doc.get("counts") or {}
    summary = ", ".join(f"{counts.get(k, 0)} {k}" for k in ("added", "changed", "deleted"))
    common.console.print(
        f"container {name}, image {c.get('image') or '?'}: {summary}; {len(doc['watched'])} in watched paths",
        markup=False,
    )
    for ch in doc["changes"]:
        extra = f"  (watched: {ch['watched']})" if ch.get("watched") else ""
        kind = "/" if ch.get("type") == "dir" else (" -> " + ch["target"] if ch.get("target") else "")
        common.console.print(f"{_MARK.get(ch['change'], '?')} {ch['path']}{kind}{extra}", markup=False)


def drift(
    container: Annotated[str, typer.Argument(help="The container: its id, a unique id prefix or its name.")],
    local: Annotated[
        bool, typer.Option("--local", help="Compute here (as root), not through the running instance.")
    ] = False,
    port: PortOpt = None,
    data_dir: DataDirOpt = None,
    output: str | None = common.OutputOpt,
) -> None:
    """Files the container added (A), changed (C) and deleted (D) against its image, those in
    watched paths (drift.watch) marked."""
    fmt = common.output_format(output)
    cfg = common.STATE.config()
    if local or (port is None and data_dir is None and not running(cfg)):
        doc = _local(container)
    else:
        path = apipaths.api_path(apipaths.CONTAINER_DRIFT, container_id=container)
        with locate.api_client(port, data_dir, timeout_s=120) as c:
            doc = locate.check(c.get(path))
    if fmt == "json":
        common.json_line(doc)
    else:
        _text(doc)


def register(app: typer.Typer) -> None:
    """Add `drift` to the command line."""
    app.command("drift")(drift)
