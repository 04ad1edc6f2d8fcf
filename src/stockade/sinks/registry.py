"""Every kind of sink Stockade can build, by the name a ``sinks:`` entry gives as its ``type``.

One line per sink: ``"name": "module:Class"``, the class implementing
:class:`stockade.sinks.interface.SinkPlugin` (its ``Options`` model and ``from_config``). The
module is imported only when a configuration uses it. :mod:`stockade.config` checks ``type``
against :data:`SINKS`; :mod:`stockade.sinks.build` builds the configured sinks from it; the
contract test (tests/sinks/test_sink_interface.py) runs every registered sink through the interface.
This module is a table: it imports nothing of Stockade but the registry pattern.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from stockade.plugins import Registry

if TYPE_CHECKING:
    from stockade.sinks.interface import SinkPlugin

__all__ = ["SINKS"]

SINKS: Final[Registry[SinkPlugin]] = Registry(
    "sink",
    {
        "stdout": "stockade.sinks.stdout:StdoutSink",
        "file": "stockade.sinks.file:FileSink",
        "syslog": "stockade.sinks.syslog:SyslogSink",
        "webhook": "stockade.sinks.webhook:WebhookSink",
        "memory": "stockade.sinks.memory:MemorySink",
        "splunk_hec": "stockade.sinks.splunk_hec:SplunkHecSink",
        "elasticsearch": "stockade.sinks.elasticsearch:ElasticsearchSink",
        "slack": "stockade.sinks.slack:SlackSink",
        "teams": "stockade.sinks.teams:TeamsSink",
        "email": "stockade.sinks.mail:EmailSink",
        "pagerduty": "stockade.sinks.pagerduty:PagerDutySink",
    },
)
