"""How the commands that talk to a running Stockade find it (docs/operations.md, "Finding the
running instance").

The API (`status`, `rules mute|unmute|mutes|reload`): ``--port``; else the instance whose data
directory is ``--data-dir``; else ``api.port`` if the config file or ``STOCKADE_API__PORT`` sets it;
else the one instance in the runtime directory that serves an API; else 127.0.0.1:8720.

The store (`alerts`, `events`): ``--db``; else ``--data-dir``; else ``storage.url`` or ``data_dir``
if the config file or the environment sets them; else the database of the one instance in the
runtime directory that has a store; else ``/var/lib/stockade/stockade.db``.

Several live instances where one is needed is an error that lists them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from stockade.cli import common
from stockade.errors import NotFoundError, StockadeError, UsageError
from stockade.runtime.instance import Instance, in_data_dir, running


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


@contextmanager
def api_client(port: int | None = None, data_dir: str | None = None) -> Iterator[Any]:
    """An httpx client on the running instance's API (with the configured token), whose transport
    errors become one-line StockadeErrors naming the address."""
    import httpx

    base = api_base(port, data_dir)
    token = common.STATE.config().api.token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=30.0) as c:
            yield c
    except httpx.ConnectError:
        raise StockadeError(
            f"no Stockade running at {base} (connection refused); start it with `stockade up`"
        ) from None
    except httpx.HTTPError as e:
        raise StockadeError(f"cannot reach {base}: {e}") from None


def check(resp: Any) -> Any:
    """The JSON body of a successful answer; a problem answer becomes a StockadeError with its detail
    (NotFoundError for a 404, UsageError for a 422, exit codes 3 and 2)."""
    if resp.status_code < 400:
        return resp.json()
    try:
        body = resp.json()
        detail = body.get("detail") or body.get("title") or resp.text[:200]
    except ValueError:
        detail = resp.text[:200]
    if resp.status_code == 401:
        raise StockadeError(f"{resp.url}: {detail} (set api.token or STOCKADE_API__TOKEN)")
    if resp.status_code == 404:
        raise NotFoundError(str(detail))
    if resp.status_code == 422:
        raise UsageError(str(detail))
    raise StockadeError(f"{resp.url} answered {resp.status_code}: {detail}")
