"""Email sink: alerts mailed over SMTP (smtplib), through the shared outbox.

One message per alert, or with ``batch_max`` > 1 up to that many alerts per message (a digest).
Subject: ``[Stockade] PRIORITY RULE`` (a digest: ``[Stockade] N alerts, worst PRIORITY``); the body
is the text of each alert (rule, priority, container, host, time, output, id) and its Falco JSON is
attached as ``alert-ID.json``. ``Message-ID`` is ``<alert-ID@stockade>`` (a digest: the first
alert's id and the count), so a message sent again after a lost answer has the same id, which mail
systems and clients use to drop the repeat.

Connection: ``host``/``port``; ``security``: ``none``, ``starttls`` (the default) or ``ssl``
(SMTPS); ``username``/``password`` to log in. Delivery is :mod:`stockade.sinks.outbox`: a connection
error, a timeout or a 4xx answer is retried (with backoff, then the spool); a 5xx answer to the
sender, the recipients or the data is the message refused (dead letter). A failed login is retried:
fixing the password delivers what waited.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar

import orjson
from pydantic import PlainValidator

from stockade.model.alert import Alert, priority_rank
from stockade.model.clock import SYSTEM, Clock
from stockade.model.timeutil import format_time_ns
from stockade.sinks.delivery import Outcome
from stockade.sinks.interface import EntryError, SinkContext, SinkEntry, SinkStats
from stockade.sinks.lines import container_label
from stockade.sinks.options import Bool, Count, SinkOptions, Text
from stockade.sinks.outbox import Outbox, OutboxSink, SpoolOptions, alert_of, spool_dir_of
from stockade.sinks.spool import ErrorLog

__all__ = ["EmailOptions", "EmailSink", "build_message", "message_id"]


def _security(v: object) -> str:
    if v not in ("none", "starttls", "ssl"):
        raise ValueError(f"expected one of none, starttls, ssl, not {v!r}")
    return str(v)


def _addresses(v: object) -> list[str]:
    items = [v] if isinstance(v, str) else v
    if not isinstance(items, list) or not items or not all(isinstance(x, str) and "@" in x for x in items):
        raise ValueError(f"expected an email address or a list of them, not {v!r}")
    return list(items)


class EmailOptions(SpoolOptions):
    """The ``options`` of an email sink."""

    host: Text = "localhost"
    #: default: 465 with security ssl, else 587 with starttls, else 25
    port: Count | None = None
    security: Annotated[str, PlainValidator(_security)] = "starttls"
    username: Text | None = None
    password: Text | None = None
    #: the sender (default: stockade@<host name>)
    sender: Text | None = None
    #: the recipients (required): one address or a list
    to: Annotated[list[str], PlainValidator(_addresses)] | None = None
    subject_prefix: Text = "[Stockade]"
    #: alerts per message (1: one message per alert)
    batch_max: Count = 1
    verify_tls: Bool = True


def message_id(alerts: list[Alert]) -> str:
    """``<alert-ID@stockade>``; for a digest ``<alert-FIRSTID+N@stockade>``."""
    first = alerts[0].id
    return f"<alert-{first}@stockade>" if len(alerts) == 1 else f"<alert-{first}+{len(alerts)}@stockade>"


def _text(a: Alert) -> str:
    return (
        f"{a.rule}\n"
        f"  priority:  {a.priority}\n"
        f"  container: {container_label(a)}\n"
        f"  host:      {a.hostname}\n"
        f"  time:      {format_time_ns(a.time_ns)}\n"
        f"  alert id:  {a.id}\n\n"
        f"{a.output}\n"
    )


def build_message(alerts: list[Alert], sender: str, to: list[str], prefix: str) -> EmailMessage:
    """The message for one alert, or a digest of several."""
    msg = EmailMessage()
    if len(alerts) == 1:
        a = alerts[0]
        msg["Subject"] = f"{prefix} {a.priority} {a.rule}"
    else:
        worst = min(alerts, key=lambda a: priority_rank(a.priority)).priority
        msg["Subject"] = f"{prefix} {len(alerts)} alerts, worst {worst}"
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(alerts[0].time_ns / 1e9, usegmt=True)
    msg["Message-ID"] = message_id(alerts)
    msg.set_content(("\n" + "-" * 72 + "\n\n").join(_text(a) for a in alerts))
    for a in alerts:
        body = orjson.dumps(a.to_falco_json(), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
        msg.add_attachment(body, maintype="application", subtype="json", filename=f"alert-{a.id}.json")
    return msg


def smtp_outcome(e: Exception) -> Outcome:
    """What an SMTP failure means: a 5xx answer to the message is final, anything else is retried."""
    code = 0
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        codes = [c for c, _ in e.recipients.values()]
        code = min(codes) if codes else 0
    elif isinstance(e, smtplib.SMTPSenderRefused | smtplib.SMTPDataError):
        code = e.smtp_code
    detail = f"{type(e).__name__}: {e}"
    if 500 <= code < 600:
        return Outcome("rejected", detail)
    return Outcome("retry", detail, reached=isinstance(e, smtplib.SMTPResponseException))


class EmailSink(OutboxSink):
    """Mails alerts over SMTP (see the module docstring)."""

    Options: ClassVar[type[SinkOptions]] = EmailOptions

    def __init__(
        self, spool_dir: str | Path, options: EmailOptions, name: str = "email", clock: Clock = SYSTEM
    ) -> None:
        if not options.to:
            raise EntryError("options.to", "an email sink needs recipients (options.to)")
        if bool(options.username) != bool(options.password):
            raise EntryError("options.password", "username and password go together")
        self.name = name
        self.stats = SinkStats()
        self.errors = ErrorLog(name)
        self.options = options
        self.to = options.to
        self.host = options.host
        self.port = options.port or {"ssl": 465, "starttls": 587}.get(options.security, 25)
        self.sender = options.sender or "stockade@localhost"
        self._tls = ssl.create_default_context()
        if not options.verify_tls:
            self._tls.check_hostname = False
            self._tls.verify_mode = ssl.CERT_NONE
        self.outbox = Outbox(
            self._send,
            spool_dir,
            name=name,
            where=f"smtp://{self.host}:{self.port}",
            options=options,
            stats=self.stats,
            errors=self.errors,
            clock=clock,
            batch_max=options.batch_max,
        )

    @classmethod
    def from_config(cls, _entry: SinkEntry, options: EmailOptions, context: SinkContext) -> EmailSink:
        """The sink of a ``type: email`` entry (``options.to`` required)."""
        return cls(spool_dir_of(options, context), options, name=context.name, clock=context.clock)

    def _connect(self) -> smtplib.SMTP:
        o = self.options
        if o.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=o.timeout_s, context=self._tls
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=o.timeout_s)
        try:
            if o.security == "starttls":
                smtp.starttls(context=self._tls)
            if o.username and o.password:
                smtp.login(o.username, o.password)
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _send(self, recs: list[bytes]) -> Outcome:
        msg = build_message([alert_of(r) for r in recs], self.sender, self.to, self.options.subject_prefix)
        try:
            smtp = self._connect()
            try:
                refused = smtp.send_message(msg)
            finally:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
        except (smtplib.SMTPException, OSError) as e:
            return smtp_outcome(e)
        if refused:
            self.errors.report(f"recipients refused: {', '.join(sorted(refused))}")
        return Outcome("delivered")


if TYPE_CHECKING:
    from stockade.sinks.interface import SinkPlugin

    _plugin: type[SinkPlugin] = EmailSink
