"""How the commands that talk to a running Stockade find it (docs/operations.md, "Finding the
running instance").

The API (`status`, `rules mute|unmute|mutes|reload`): ``--port``; else the instance whose data
directory is ``--data-dir``; else ``api.port`` if the config file or ``STOCKADE_API__PORT`` sets it;
else the one instance in the runtime directory that serves an API; else 127.0.0.1:8720.

The store (`alerts`, `events`): ``--db``; else ``--data-dir``; else ``storage.url`` or ``data_dir``
if the config file or the environment sets them; else the database of the one instance in the
runtime directory that has a store; else ``stockade.db`` in the default data directory
(``/var/lib/stockade``).

Several live instances where one is needed is an error that lists them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stockade.cli import common
from stockade.config import load_config
from stockade.errors import NotFoundError, StockadeError, StorageError, UsageError
from stockade.runtime.instance import Instance, in_data_dir, running

if TYPE_CHECKING:  # imported by the commands that use them (SQLAlchemy takes ~0.3 s to import)
    import httpx

    from stockade.storage.store import Store

#: the flags that name the running instance when several run here (or it is not found by itself)
PortOpt = Annotated[int | None, typer.Option("--port", "-p", help="The running instance's API port.")]
DataDirOpt = Annotated[
    str | None, typer.Option("--data-dir", help="The running instance using this data directory.")
]


def _one(found: list[Instance], what: str, choose: str) -> Instance | None:
    if len(found) <= 1:
        return found[0] if found else None
    listing = "; ".join(i.describe() for i in found)
    raise UsageError(f"{len(found)} Stockade instances are running here ({listing}): {choose} {what}")


def api_base(port: int | None = None, data_dir: str | None = None) -> str:
    """The base URL of the running instance's API (see the module docs for the order)."""
    cfg = common.STATE.config()
    if port is not None:
        return f"http://{cfg.api.host}:{port}"
    if data_dir is not None:
        inst = in_data_dir(data_dir)
        if inst is None or inst.api_url is None:
            raise NotFoundError(
                f"no running Stockade with an API uses the data directory {data_dir} (no live instance.json there)"
            )
        return inst.api_url
    if cfg.origin("api.port") is None and cfg.origin("api.host") is None:
        inst = _one([i for i in running(cfg) if i.api_url], "", "choose one with --port or --data-dir")
        if inst is not None and inst.api_url is not None:
            return inst.api_url
    return f"http://{cfg.api.host}:{cfg.api.port}"


def store_url() -> str:
    """The database of the running instance, for the commands that read the store without --db or
    --data-dir (see the module docs for the order)."""
    cfg = common.STATE.config()
    if cfg.origin("storage.url") is None and cfg.origin("data_dir") is None:
        inst = _one([i for i in running(cfg) if i.role != "agent"], "", "choose one with --data-dir or --db")
        if inst is not None:
            if inst.db_url is not None:
                return inst.db_url
            if cfg.storage.url is None:  # its URL holds a password this config does not have
                raise UsageError(
                    f"the running {inst.describe()} uses a database whose URL holds a password; "
                    "give it with --db or storage.url"
                )
    return cfg.db_url()


def store_data_dir(data_dir: str | None) -> str:
    """The data directory of the store the reading commands open (the node's key and the audit
    checkpoint file live there): --data-dir; else ``data_dir`` if the configuration or the
    environment sets it; else the running instance's (one with a store); else the default."""
    if data_dir:
        return data_dir
    cfg = common.STATE.config()
    if cfg.origin("data_dir") is None:
        inst = _one([i for i in running(cfg) if i.role != "agent"], "", "choose one with --data-dir")
        if inst is not None:
            return inst.data_dir
    return cfg.data_dir


def open_store(db: str | None, data_dir: str | None) -> Store:
    """The store named by --db, else --data-dir, else the configuration or the running instance
    (see the module docs for the order).

    Reading commands never create or change a file: the database is opened read-only (no
    migration); a SQLite file that does not exist, or is not a Stockade database, is an error.
    """
    from stockade.storage.store import Store, normalize_url

    if db:
        url = db
    elif data_dir:
        st = common.STATE
        url = load_config(st.config_path, {**st.overrides, "data_dir": data_dir}).db_url()
    else:
        url = store_url()  # the running instance's, unless the configuration names one
    try:
        u = normalize_url(url)
    except Exception:
        u = None
    if u is not None and u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        path = Path(u.database).expanduser()
        if not u.database.startswith("file:") and not path.exists():
            raise StorageError(
                f"no database at {path}: nothing has been stored there yet (give --db URL or --data-dir DIR)"
            )
    return Store(url, read_only=True)


@contextmanager
def api_client(
    port: int | None = None, data_dir: str | None = None, *, timeout_s: float = 30.0
) -> Iterator[httpx.Client]:
    """An httpx client on the running instance's API (with the configured token), whose transport
    errors become one-line StockadeErrors naming the address; `timeout_s` per request (a capture
    of a large container takes longer than a listing)."""
    import httpx

    base = api_base(port, data_dir)
    token = common.STATE.config().api.token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=timeout_s) as c:
            yield c
    except httpx.ConnectError:
        raise StockadeError(
            f"no Stockade running at {base} (connection refused); start it with `stockade up`"
        ) from None
    except httpx.HTTPError as e:
        raise StockadeError(f"cannot reach {base}: {e}") from None


def problem_detail(resp: httpx.Response) -> str:
    """What a problem answer says went wrong: its detail (or title), else the start of the body."""
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:200]
    found = (body.get("detail") or body.get("title")) if isinstance(body, dict) else None
    return str(found or resp.text[:200])


def check(resp: httpx.Response) -> Any:
    """The JSON body of a successful answer; a problem answer becomes a StockadeError with its detail
    (NotFoundError for a 404, UsageError for a 422, exit codes 3 and 2; a 409's reason as it is)."""
    if resp.status_code < 400:
        return resp.json()
    detail = problem_detail(resp)
    if resp.status_code == 401:
        raise StockadeError(f"{resp.url}: {detail} (set api.token or STOCKADE_API__TOKEN)")
    if resp.status_code == 404:
        raise NotFoundError(detail)
    if resp.status_code == 422:
        raise UsageError(detail)
    if resp.status_code == 409:  # refused as things stand (a mode change the dry run stops): the reason
        raise StockadeError(detail)
    raise StockadeError(f"{resp.url} answered {resp.status_code}: {detail}")
