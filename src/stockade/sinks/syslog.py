"""Syslog sink: RFC 5424 messages over UDP, TCP (RFC 6587 octet counting) or a unix socket.

A message is::

    <PRI>1 TIMESTAMP HOSTNAME stockade PROCID MSGID [stockade@32473 rule="..." priority="..." id="..."] MSG

PRI is ``facility * 8 + severity``, the severity being Falco's priority (Emergency 0 ... Debug 7).
TIMESTAMP is the alert time in UTC with microseconds; MSGID is the rule name reduced to at most 32
printable ASCII characters; MSG is the alert's Falco JSON (``format: json``) or its output text
(``format: text``), preceded by the UTF-8 BOM as RFC 5424 asks (``bom: false`` to leave it out).

``options.ocsf: true`` makes the JSON message an OCSF Detection Finding.

With ``options.format: cef`` the message is ArcSight's Common Event Format after the same header::

    <PRI>1 TIMESTAMP HOSTNAME stockade PROCID MSGID [...] CEF:0|Stockade|Stockade|VERSION|RULE|RULE|SEVERITY|rt=... msg=...

(``|`` and ``\\`` escaped in the header fields; ``\\``, ``=`` and newlines in the extension
values; severity 0..10 from the priority: Emergency 10 ... Debug 1; see :func:`format_cef`).

Addresses: ``udp://host:port``, ``tcp://host:port``, ``unix:///dev/log`` (a datagram socket; a
stream socket gets NUL-terminated messages) or a bare path. A failed send is counted in
``stats.failed`` and reported; TCP reconnects on the next alert (at most once per
``reconnect_s`` after a failure).

Over TCP a sink built from the configuration delivers through the shared outbox
(:mod:`stockade.sinks.outbox`; ``options.spool``, default true for TCP): while the server is down
alerts wait (in memory, then in the disk spool) and are sent, in order, when it is back. UDP and
unix datagrams cannot tell whether a message arrived, so they are sent as they come.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ClassVar, assert_never
from urllib.parse import urlsplit

import orjson
from pydantic import PlainValidator

from stockade import __version__
from stockade.model.alert import Alert, priority_rank
from stockade.model.choices import OutputFormat, check_output_format
from stockade.model.clock import SYSTEM, Clock
from stockade.sinks.delivery import Outcome
from stockade.sinks.interface import EntryError, SinkContext, SinkEntry, SinkStats
from stockade.sinks.lines import alert_json
from stockade.sinks.options import Bool, Duration, SinkOptions, Size, Text
from stockade.sinks.outbox import Outbox, SpoolOptions, alert_of, spool_dir_of
from stockade.sinks.spool import ErrorLog

__all__ = [
    "FACILITIES",
    "SyslogAddress",
    "SyslogOptions",
    "SyslogSink",
    "cef_extension_escape",
    "cef_header_escape",
    "cef_severity",
    "facility_code",
    "format_cef",
    "format_rfc5424",
    "parse_address",
]

#: RFC 5424 facility names -> codes
FACILITIES = {
    "kern": 0,
    "user": 1,
    "mail": 2,
    "daemon": 3,
    "auth": 4,
    "syslog": 5,
    "lpr": 6,
    "news": 7,
    "uucp": 8,
    "cron": 9,
    "authpriv": 10,
    "ftp": 11,
    "ntp": 12,
    "security": 13,
    "console": 14,
    "solaris-cron": 15,
    **{f"local{i}": 16 + i for i in range(8)},
}


def facility_code(v: object) -> int:
    """A facility name (``local0``) or code (0..23) -> its code; ValueError otherwise."""
    if isinstance(v, bool):
        raise ValueError(f"expected a syslog facility name or 0..23, not {v!r}")
    if isinstance(v, int):
        if not 0 <= v <= 23:
            raise ValueError(f"syslog facility must be 0..23, not {v}")
        return v
    if not isinstance(v, str) or v.lower() not in FACILITIES:
        raise ValueError(f"unknown syslog facility {v!r} (one of {', '.join(FACILITIES)})")
    return FACILITIES[v.lower()]


#: a facility by name or code, as its code
Facility = Annotated[int, PlainValidator(facility_code)]
#: Private Enterprise Number used in the SD-ID (as in the examples of RFC 5424)
SD_ID = "stockade@32473"
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class SyslogAddress:
    """Where messages go: a UDP or TCP host and port, or a unix socket path."""

    transport: str  # udp | tcp | unix
    host: str = ""
    port: int = 514
    path: str = ""


def parse_address(address: str | None) -> SyslogAddress:
    """'udp://host:514', 'tcp://[::1]:6514', 'unix:///dev/log' or '/dev/log'. Raises ValueError."""
    if not address:
        return SyslogAddress("unix", path="/dev/log")
    if address.startswith("/"):
        return SyslogAddress("unix", path=address)
    u = urlsplit(address)
    if u.scheme == "unix":
        if not u.path:
            raise ValueError(f"no socket path in {address!r}")
        return SyslogAddress("unix", path=u.path)
    if u.scheme not in ("udp", "tcp"):
        raise ValueError(f"syslog address must start with udp://, tcp:// or unix://, not {address!r}")
    if not u.hostname:
        raise ValueError(f"no host in {address!r}")
    return SyslogAddress(u.scheme, host=u.hostname, port=u.port or 514)


def _printable_token(s: str, limit: int) -> str:
    """Printable US-ASCII (33..126) only, at most `limit` characters; '-' if nothing is left."""
    out = "".join(c if 33 <= ord(c) <= 126 else "_" for c in s.strip())[:limit]
    return out or "-"


def _sd_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _msgid(rule: str) -> str:
    tok = "".join(c if c.isascii() and c.isalnum() else "_" for c in rule.strip())
    tok = "_".join(p for p in tok.split("_") if p)  # collapse runs of '_'
    return tok[:32] or "-"


def _timestamp(time_ns: int) -> str:
    secs, frac = divmod(time_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac // 1000:06d}Z"


def _header(alert: Alert, facility: int, app_name: str, procid: str | None, hostname: str | None) -> str:
    """The RFC 5424 header and structured data of an alert's message, with a trailing space."""
    pri = facility * 8 + priority_rank(alert.priority)
    host = _printable_token(hostname or alert.hostname or socket.gethostname(), 255)
    params = [("rule", alert.rule), ("priority", alert.priority), ("id", alert.id), ("source", alert.source)]
    if alert.count > 1:
        params.append(("count", str(alert.count)))
    if alert.workload:
        params.append(("workload", alert.workload))
    sd = f"[{SD_ID} " + " ".join(f'{k}="{_sd_escape(v)}"' for k, v in params) + "]"
    return (
        f"<{pri}>1 {_timestamp(alert.time_ns)} {host} {_printable_token(app_name, 48)} "
        f"{_printable_token(procid or str(os.getpid()), 128)} {_msgid(alert.rule)} {sd} "
    )


def format_rfc5424(
    alert: Alert,
    facility: int = 1,
    msg_format: OutputFormat = "json",
    app_name: str = "stockade",
    procid: str | None = None,
    hostname: str | None = None,
    bom: bool = True,
    ocsf: bool = False,
) -> bytes:
    """One alert as an RFC 5424 message (without transport framing)."""
    header = _header(alert, facility, app_name, procid, hostname)
    match msg_format:
        case "json":
            msg = alert_json(alert, ocsf)
        case "text":
            msg = alert.output.encode("utf-8", "replace")
        case _:
            assert_never(msg_format)
    return header.encode("utf-8") + (BOM if bom else b"") + msg


#: Falco priority rank (Emergency 0 ... Debug 7) -> CEF severity (0..10)
_CEF_SEVERITY = (10, 9, 8, 7, 6, 4, 3, 1)
#: output fields -> CEF extension keys (ArcSight's dictionary)
_CEF_FIELDS = {
    "user.name": "suser",
    "user.uid": "suid",
    "proc.name": "sproc",
    "proc.pid": "spid",
    "proc.cmdline": "cs4",
    "fd.name": "filePath",
    "fd.sip": "src",
    "fd.sport": "spt",
    "fd.dip": "dst",
    "fd.dport": "dpt",
}


def cef_severity(priority: str) -> int:
    """CEF severity (0..10) of a Falco priority: Emergency 10, Alert 9, Critical 8, Error 7,
    Warning 6, Notice 4, Informational 3, Debug 1."""
    return _CEF_SEVERITY[priority_rank(priority)]


def cef_header_escape(s: str) -> str:
    """A CEF header field: ``\\`` and ``|`` escaped; newlines (not allowed) become spaces."""
    s = s.replace("\\", "\\\\").replace("|", "\\|")
    return s.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def cef_extension_escape(s: str) -> str:
    """A CEF extension value: ``\\``, ``=`` escaped, newlines as ``\\n`` / ``\\r``."""
    s = s.replace("\\", "\\\\").replace("=", "\\=")
    return s.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")


def format_cef(
    alert: Alert,
    facility: int = 1,
    app_name: str = "stockade",
    procid: str | None = None,
    hostname: str | None = None,
) -> bytes:
    """One alert as a CEF message after the RFC 5424 header (without transport framing)."""
    f = alert.output_fields
    ext: list[tuple[str, object]] = [
        ("rt", alert.time_ns // 1_000_000),
        ("dvchost", alert.hostname),
        ("externalId", alert.id),
        ("cat", alert.source),
        ("msg", alert.output),
    ]
    ext += [(key, f[field]) for field, key in _CEF_FIELDS.items() if f.get(field) not in (None, "")]
    labelled = [
        ("cs1", "container", f.get("container.id")),
        ("cs2", "workload", alert.workload),
        ("cs3", "tags", ",".join(alert.tags)),
        ("cs5", "namespace", f.get("k8s.ns.name")),
        ("cs6", "image", f.get("container.image.repository") or f.get("container.image")),
    ]
    for key, label, value in labelled:
        if value:
            ext += [(f"{key}Label", label), (key, value)]
    if "proc.cmdline" in f:
        ext.append(("cs4Label", "cmdline"))
    if alert.count > 1:
        ext += [("cn1Label", "count"), ("cn1", alert.count)]
    rule = cef_header_escape(alert.rule)
    header = "|".join(
        [
            "CEF:0",
            "Stockade",
            "Stockade",
            cef_header_escape(__version__),
            rule,
            rule,
            str(cef_severity(alert.priority)),
        ]
    )
    extension = " ".join(f"{k}={cef_extension_escape(str(v))}" for k, v in ext)
    return (_header(alert, facility, app_name, procid, hostname) + header + "|" + extension).encode("utf-8")


def _message_format(v: object) -> str:
    if v not in ("rfc5424", "cef"):
        raise ValueError(f"expected rfc5424 or cef, not {v!r}")
    return str(v)


class SyslogOptions(SpoolOptions):
    """The ``options`` of a syslog sink."""

    #: rfc5424 (the message is the alert's JSON or text) or cef (ArcSight's Common Event Format)
    format: Annotated[str, PlainValidator(_message_format)] = "rfc5424"
    #: JSON as OCSF Detection Findings instead of Falco's alert JSON
    ocsf: Bool = False
    #: deliver through the disk spool with retries (default: true over TCP, false otherwise)
    spool: Bool | None = None

    #: kern, user, daemon, auth, authpriv, local0..local7, ... or 0..23
    facility: Facility = 1
    app_name: Text = "stockade"
    #: default: the alert's hostname
    hostname: Text | None = None
    #: the UTF-8 BOM before the message, as RFC 5424 asks
    bom: Bool = True
    #: after a failure, wait this long before connecting again
    reconnect_s: Duration = 1.0
    #: UDP and unix datagrams are cut to this size
    max_message_bytes: Size = 65000


class SyslogSink:
    """Sends each alert as one RFC 5424 message (see the module docstring)."""

    Options: ClassVar[type[SinkOptions]] = SyslogOptions

    def __init__(
        self,
        address: str | None = None,
        format: str = "json",
        name: str = "syslog",
        options: SyslogOptions | None = None,
        clock: Clock = SYSTEM,
        spool_dir: str | Path | None = None,
    ) -> None:
        """With `spool_dir`, alerts go through an outbox spooled there (see the module docstring)."""
        opts = options or SyslogOptions()
        self.name = name
        self.stats = SinkStats()
        self.errors = ErrorLog(name)
        self.address = parse_address(address)
        self.format = check_output_format(format, "format")
        self.facility = opts.facility
        self.app_name = opts.app_name
        self.hostname = opts.hostname
        self.bom = opts.bom
        self.timeout_s = opts.timeout_s
        self.reconnect_s = opts.reconnect_s
        self.max_message_bytes = opts.max_message_bytes
        self._clock = clock
        self._procid = str(os.getpid())
        self._sock: socket.socket | None = None
        self._unix_stream = False
        self._next_connect = 0.0
        self._lock = threading.Lock()
        self.message_format = opts.format
        self.ocsf = opts.ocsf
        self.outbox: Outbox | None = None
        if spool_dir is not None:
            a = self.address
            where = a.path if a.transport == "unix" else f"{a.transport}://{a.host}:{a.port}"
            self.outbox = Outbox(
                self._send_spooled, spool_dir, name=name, where=where, options=opts,
                stats=self.stats, errors=self.errors, clock=clock,
            )  # fmt: skip

    @classmethod
    def from_config(cls, entry: SinkEntry, options: SyslogOptions, context: SinkContext) -> SyslogSink:
        """The sink of a ``type: syslog`` entry (``address`` default: the local syslog socket)."""
        try:
            address = parse_address(entry.address)
        except ValueError as e:
            raise EntryError("address", str(e)) from None
        spool = options.spool if options.spool is not None else address.transport == "tcp"
        return cls(
            entry.address,
            format=entry.format,
            name=context.name,
            options=options,
            clock=context.clock,
            spool_dir=spool_dir_of(options, context) if spool else None,
        )

    # ---- connection ------------------------------------------------------------------

    def _connect(self) -> socket.socket:
        a = self.address
        if a.transport == "udp":
            info = socket.getaddrinfo(a.host, a.port, type=socket.SOCK_DGRAM)[0]
            s = socket.socket(info[0], socket.SOCK_DGRAM)
            s.connect(info[4])
        elif a.transport == "tcp":
            s = socket.create_connection((a.host, a.port), timeout=self.timeout_s)
        else:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                s.connect(a.path)
                self._unix_stream = False
            except OSError:
                s.close()
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(a.path)
                except OSError:
                    s.close()
                    raise
                self._unix_stream = True
        s.settimeout(self.timeout_s)
        return s

    def _drop_connection(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    def _frame(self, msg: bytes) -> bytes:
        if self.address.transport == "tcp":
            return b"%d %s" % (len(msg), msg)  # RFC 6587 octet counting
        if self.address.transport == "unix" and self._unix_stream:
            return msg + b"\0"
        if len(msg) > self.max_message_bytes:
            return msg[: self.max_message_bytes]
        return msg

    def _peer_closed(self) -> bool:
        """True if the stream peer has closed the connection (a send would be lost silently)."""
        assert self._sock is not None
        try:
            r, _, _ = select.select([self._sock], [], [], 0)
            return bool(r) and self._sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (OSError, ValueError):
            return True

    def _send(self, msg: bytes) -> None:
        if self._sock is not None and self.address.transport == "tcp" and self._peer_closed():
            self._drop_connection()
        if self._sock is None:
            now = self._clock.monotonic()
            if now < self._next_connect:
                raise ConnectionError("not connected (waiting to reconnect)")
            try:
                self._sock = self._connect()
            except OSError:
                self._next_connect = now + self.reconnect_s
                raise
        data = self._frame(msg)
        if self.address.transport == "tcp" or self._unix_stream:
            self._sock.sendall(data)
        else:
            self._sock.send(data)

    # ---- Sink ------------------------------------------------------------------------

    def message(self, alert: Alert) -> bytes:
        """The syslog message of an alert (RFC 5424 with JSON or text, or CEF)."""
        if self.message_format == "cef":
            return format_cef(alert, self.facility, self.app_name, self._procid, self.hostname)
        return format_rfc5424(
            alert, self.facility, self.format, self.app_name, self._procid, self.hostname, self.bom, self.ocsf
        )

    def _send_spooled(self, recs: list[bytes]) -> Outcome:
        """The outbox's send: one alert, from its spooled Falco JSON."""
        (rec,) = recs
        msg = self.message(alert_of(rec))
        with self._lock:
            try:
                self._send(msg)
            except OSError as e:
                self._drop_connection()
                return Outcome("retry", f"{type(e).__name__}: {e.strerror or e}", reached=False)
        return Outcome("delivered")

    def emit(self, alert: Alert) -> None:
        """Send one message (TCP: reconnecting once if the server closed the connection), or
        queue it in the outbox."""
        if self.outbox is not None:
            self.outbox.put(orjson.dumps(alert.to_falco_json(), option=orjson.OPT_NON_STR_KEYS))
            return
        msg = self.message(alert)
        with self._lock:
            try:
                self._send(msg)
            except OSError as first:
                stream = self.address.transport == "tcp" or self._unix_stream
                if stream and self._sock is not None:
                    # the peer may have closed an idle connection: reconnect once and resend
                    self._drop_connection()
                    try:
                        self._send(msg)
                    except OSError as e:
                        self._fail(e)
                        return
                else:
                    self._fail(first)
                    return
            self.stats.sent += 1

    def _fail(self, e: OSError) -> None:
        self._drop_connection()
        self.stats.failed += 1
        a = self.address
        where = a.path if a.transport == "unix" else f"{a.transport}://{a.host}:{a.port}"
        self.errors.report(f"cannot send to {where}: {e.strerror or e}")

    def flush(self) -> None:
        """Without an outbox messages are sent as they come; with one, wait (bounded) for it."""
        if self.outbox is not None:
            self.outbox.flush()

    def drain(self, timeout_s: float | None = None, give_up_if_down: bool = False) -> bool:
        """Wait until the outbox is delivered (True at once without one)."""
        return self.outbox.drain(timeout_s, give_up_if_down) if self.outbox is not None else True

    def pending(self) -> int:
        """Alerts waiting in the outbox."""
        return self.outbox.pending() if self.outbox is not None else 0

    def close(self) -> None:
        """Deliver what the outbox can in its time, close the connection; safe to call twice."""
        if self.outbox is not None:
            self.outbox.close()
        with self._lock:
            self._drop_connection()


if TYPE_CHECKING:
    from stockade.sinks.interface import SinkPlugin

    _plugin: type[SinkPlugin] = SyslogSink
