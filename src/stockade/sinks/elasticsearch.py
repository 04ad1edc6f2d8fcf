"""Elasticsearch / OpenSearch sink: alerts indexed with the ``_bulk`` API.

Each request is an NDJSON body of up to ``batch_max`` ``create`` actions, each with ``_id`` = the
alert id, so a batch sent again (after a timeout, a lost answer, a restart) never makes a second
document: the repeat answers 409 (version conflict), which counts as delivered. Each item's answer
is inspected, not only the HTTP status: 2xx and 409 are delivered; 429 and 5xx make the whole batch
be retried (what was already indexed answers 409 then); any other item error (a mapping conflict,
400) is that alert refused: counted as failed and kept in the dead letter.

``index`` is a name with optional strftime fields, filled from the alert's time in UTC
(``stockade-alerts-%Y.%m.%d``, the default). Authentication: ``username``/``password`` (basic) or
``api_key`` (``Authorization: ApiKey ...``, the base64 id:key Elasticsearch prints). The same API
serves OpenSearch.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
import orjson

from stockade.model.alert import Alert
from stockade.model.clock import SYSTEM, Clock
from stockade.sinks.delivery import Outcome, is_retryable_status
from stockade.sinks.interface import EntryError, SinkContext, SinkEntry
from stockade.sinks.lines import alert_document
from stockade.sinks.options import Bool, Count, SinkOptions, Text
from stockade.sinks.outbox import HttpOptions, HttpSink, check_http_url, spool_dir_of

__all__ = ["ElasticsearchOptions", "ElasticsearchSink", "bulk_outcome"]


class ElasticsearchOptions(HttpOptions):
    """The ``options`` of an elasticsearch sink."""

    #: index name; strftime fields are filled from the alert's time (UTC)
    index: Text = "stockade-alerts-%Y.%m.%d"
    username: Text | None = None
    password: Text | None = None
    #: base64 "id:key" (Authorization: ApiKey ...)
    api_key: Text | None = None
    #: alerts per _bulk request
    batch_max: Count = 100
    #: JSON as OCSF Detection Findings instead of Falco's alert JSON
    ocsf: Bool = False


def bulk_outcome(response: httpx.Response) -> Outcome:
    """What a 2xx ``_bulk`` answer means, item by item (see the module docstring)."""
    try:
        items = orjson.loads(response.content)["items"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return Outcome("retry", f"HTTP {response.status_code}: not a _bulk answer: {response.text[:200]}")
    rejected: list[int] = []
    retry: list[str] = []
    for i, item in enumerate(items):
        result: dict[str, Any] = next(iter(item.values()), {}) if isinstance(item, dict) else {}
        status = int(result.get("status", 500))
        if 200 <= status < 300 or status == 409:
            continue
        reason = str(result.get("error", ""))[:200]
        if is_retryable_status(status):
            retry.append(f"item {i}: {status} {reason}")
        else:
            rejected.append(i)
    if retry:
        return Outcome("retry", "bulk items failed: " + "; ".join(retry[:3]))
    detail = f"bulk items refused: {rejected}" if rejected else ""
    return Outcome("delivered", detail, rejected_items=tuple(rejected))


class ElasticsearchSink(HttpSink):
    """Indexes alerts with _bulk ``create`` actions (see the module docstring)."""

    Options: ClassVar[type[SinkOptions]] = ElasticsearchOptions

    def __init__(
        self,
        url: str,
        spool_dir: str | Path,
        options: ElasticsearchOptions | None = None,
        name: str = "elasticsearch",
        clock: Clock = SYSTEM,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        opts = options or ElasticsearchOptions()
        check_http_url("elasticsearch", url)
        if opts.api_key and opts.username:
            raise EntryError("options.api_key", "give api_key or username/password, not both")
        if bool(opts.username) != bool(opts.password):
            raise EntryError("options.password", "username and password go together")
        self.options = opts
        headers = {"Content-Type": "application/x-ndjson"}
        if opts.api_key:
            headers["Authorization"] = f"ApiKey {opts.api_key}"
        bulk = url.rstrip("/") + "/_bulk"
        super().__init__(
            bulk, spool_dir, opts, name=name, clock=clock, transport=transport, headers=headers,
            batch_max=opts.batch_max,
        )  # fmt: skip
        if opts.username and opts.password:
            self.client.auth = httpx.BasicAuth(opts.username, opts.password)

    @classmethod
    def from_config(
        cls, entry: SinkEntry, options: ElasticsearchOptions, context: SinkContext
    ) -> ElasticsearchSink:
        """The sink of a ``type: elasticsearch`` entry (its ``url`` is required)."""
        url = check_http_url("elasticsearch", entry.url)
        return cls(url, spool_dir_of(options, context), options, name=context.name, clock=context.clock)

    def record(self, alert: Alert) -> bytes:
        """The action and the document of one alert, as one spool line (a JSON pair)."""
        index = time.strftime(self.options.index, time.gmtime(alert.time_ns // 1_000_000_000))
        action = {"create": {"_index": index, "_id": alert.id}}
        return orjson.dumps(
            [action, alert_document(alert, self.options.ocsf)], option=orjson.OPT_NON_STR_KEYS
        )

    def send(self, recs: list[bytes]) -> Outcome:
        """POST one _bulk request and read its items."""
        lines = []
        for rec in recs:
            action, doc = orjson.loads(rec)
            lines += [orjson.dumps(action), orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)]
        outcome, response = self.post(b"\n".join(lines) + b"\n")
        if outcome.verdict != "delivered" or response is None:
            return outcome
        return bulk_outcome(response)


if TYPE_CHECKING:
    from stockade.sinks.interface import SinkPlugin

    _plugin: type[SinkPlugin] = ElasticsearchSink
