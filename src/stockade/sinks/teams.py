"""Microsoft Teams sink: each alert as an Adaptive Card to an incoming webhook or a Workflows URL.

The body is the message shape both take (``type: message`` with one Adaptive Card attachment):
the rule as the title, the priority, container, host, namespace and alert id as facts, and the
output. ``url`` is the webhook (or the Workflows "When a Teams webhook request is received" URL,
which answers 202). Delivery is the shared outbox (:mod:`stockade.sinks.outbox`).

Idempotency: Teams has none. The spool cursor advances only after a 2xx, so a card is posted twice
only if Teams accepted it and the answer was lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
import orjson

from stockade.model.alert import Alert, priority_rank
from stockade.model.clock import SYSTEM, Clock
from stockade.sinks.delivery import Outcome
from stockade.sinks.interface import SinkContext, SinkEntry
from stockade.sinks.lines import container_label, namespace_of
from stockade.sinks.options import SinkOptions
from stockade.sinks.outbox import HttpOptions, HttpSink, alert_of, check_http_url, spool_dir_of

__all__ = ["TeamsOptions", "TeamsSink", "teams_message"]


def teams_message(alert: Alert) -> dict[str, Any]:
    """The Teams message (an Adaptive Card) of one alert."""
    rank = priority_rank(alert.priority)
    color = "attention" if rank <= 3 else "warning" if rank == 4 else "default"
    facts = [
        {"title": "Priority", "value": alert.priority},
        {"title": "Container", "value": container_label(alert)},
        {"title": "Host", "value": alert.hostname or "-"},
    ]
    ns = namespace_of(alert)
    if ns:
        facts.append({"title": "Namespace", "value": ns})
    facts.append({"title": "Alert id", "value": alert.id})
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": [
            {
                "type": "TextBlock",
                "text": alert.rule,
                "weight": "Bolder",
                "size": "Medium",
                "color": color,
                "wrap": True,
            },
            {"type": "FactSet", "facts": facts},
            {"type": "TextBlock", "text": alert.output, "wrap": True, "fontType": "Monospace"},
        ],
    }
    return {
        "type": "message",
        "summary": f"[{alert.priority}] {alert.rule}",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


class TeamsOptions(HttpOptions):
    """The ``options`` of a teams sink."""


class TeamsSink(HttpSink):
    """Posts each alert as an Adaptive Card (see the module docstring)."""

    Options: ClassVar[type[SinkOptions]] = TeamsOptions

    def __init__(
        self,
        url: str,
        spool_dir: str | Path,
        options: TeamsOptions | None = None,
        name: str = "teams",
        clock: Clock = SYSTEM,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url = check_http_url("teams", url)
        super().__init__(
            url, spool_dir, options or TeamsOptions(), name=name, clock=clock, transport=transport
        )

    @classmethod
    def from_config(cls, entry: SinkEntry, options: TeamsOptions, context: SinkContext) -> TeamsSink:
        """The sink of a ``type: teams`` entry (its ``url`` is required)."""
        url = check_http_url("teams", entry.url)
        return cls(url, spool_dir_of(options, context), options, name=context.name, clock=context.clock)

    def send(self, recs: list[bytes]) -> Outcome:
        """Post one alert's card."""
        (rec,) = recs
        return self.post(orjson.dumps(teams_message(alert_of(rec))))[0]


if TYPE_CHECKING:
    from stockade.sinks.interface import SinkPlugin

    _plugin: type[SinkPlugin] = TeamsSink
