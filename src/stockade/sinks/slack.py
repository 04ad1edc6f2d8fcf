"""Slack sink: each alert as a Block Kit message to an incoming webhook.

The message has a header (the rule), the priority, container, host and namespace as fields, the
output in a code block and the alert id and tags in a context line; ``text`` is the plain fallback
shown in notifications. ``url`` is the incoming webhook URL. Delivery is the shared outbox
(:mod:`stockade.sinks.outbox`): retries, ``Retry-After`` (Slack's rate limit answers 429), the disk
spool, the dead letter.

Idempotency: Slack's webhooks have none. The spool cursor advances only after Slack answered 2xx, so
a message is posted twice only if Slack accepted it and the answer was lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
import orjson

from stockade.model.alert import Alert
from stockade.model.clock import SYSTEM, Clock
from stockade.sinks.delivery import Outcome
from stockade.sinks.interface import SinkContext, SinkEntry
from stockade.sinks.lines import container_label, namespace_of
from stockade.sinks.options import SinkOptions, Text
from stockade.sinks.outbox import HttpOptions, HttpSink, alert_of, check_http_url, spool_dir_of

__all__ = ["SlackOptions", "SlackSink", "slack_message"]

_EMOJI = {"Emergency": ":rotating_light:", "Alert": ":rotating_light:", "Critical": ":red_circle:",
          "Error": ":large_orange_circle:", "Warning": ":warning:"}  # fmt: skip


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(alert: Alert, username: str | None = None, channel: str | None = None) -> dict[str, Any]:
    """The Block Kit message of one alert."""
    fields = [
        ("Priority", f"{_EMOJI.get(alert.priority, '')} {alert.priority}".strip()),
        ("Container", container_label(alert)),
        ("Host", alert.hostname or "-"),
    ]
    ns = namespace_of(alert)
    if ns:
        fields.append(("Namespace", ns))
    if alert.count > 1:
        fields.append(("Count", str(alert.count)))
    output = alert.output if len(alert.output) <= 2900 else alert.output[:2900] + "…"
    msg: dict[str, Any] = {
        "text": f"[{alert.priority}] {alert.rule}: {alert.output}"[:3000],
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": alert.rule[:150] or "alert"}},
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{_esc(v)}"} for k, v in fields],
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": f"```{_esc(output)}```"}},
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": _esc(f"id {alert.id} · {alert.source} · {', '.join(alert.tags)}"),
                    }
                ],
            },
        ],
    }
    if username:
        msg["username"] = username
    if channel:
        msg["channel"] = channel
    return msg


class SlackOptions(HttpOptions):
    """The ``options`` of a slack sink."""

    #: the name the message is posted as (when the webhook allows it)
    username: Text | None = None
    #: the channel (when the webhook allows it)
    channel: Text | None = None


class SlackSink(HttpSink):
    """Posts each alert as a Block Kit message (see the module docstring)."""

    Options: ClassVar[type[SinkOptions]] = SlackOptions

    def __init__(
        self,
        url: str,
        spool_dir: str | Path,
        options: SlackOptions | None = None,
        name: str = "slack",
        clock: Clock = SYSTEM,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.options = options or SlackOptions()
        url = check_http_url("slack", url)
        super().__init__(url, spool_dir, self.options, name=name, clock=clock, transport=transport)

    @classmethod
    def from_config(cls, entry: SinkEntry, options: SlackOptions, context: SinkContext) -> SlackSink:
        """The sink of a ``type: slack`` entry (its ``url``, the incoming webhook, is required)."""
        url = check_http_url("slack", entry.url)
        return cls(url, spool_dir_of(options, context), options, name=context.name, clock=context.clock)

    def send(self, recs: list[bytes]) -> Outcome:
        """Post one alert's message."""
        (rec,) = recs
        return self.post(
            orjson.dumps(slack_message(alert_of(rec), self.options.username, self.options.channel))
        )[0]


if TYPE_CHECKING:
    from stockade.sinks.interface import SinkPlugin

    _plugin: type[SinkPlugin] = SlackSink
