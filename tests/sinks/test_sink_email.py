"""Email sink against a real SMTP server (aiosmtpd) on 127.0.0.1: one message per alert with a
Message-ID from the alert id, digests, login, STARTTLS and SMTPS with a self-signed certificate
made here, and what a 5xx answer means."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from helpers import free_port, wait_until
from sinks.receivers import SmtpReceiver
from stockade.config import SinkConfig
from stockade.errors import ConfigError
from stockade.model.alert import Alert
from stockade.sinks.build import build_sink
from stockade.sinks.mail import EmailSink
from stockade.sinks.outbox import DEAD_LETTER


class Server:
    """aiosmtpd with optional login, STARTTLS or implicit TLS; keeps envelopes; `refuse` a code."""

    def __init__(
        self, tls: ssl.SSLContext | None = None, implicit: bool = False, login: bool = False, port: int = 0
    ) -> None:
        self.envelopes: list[Envelope] = []
        self.refuse = ""
        srv = self

        class Handler:
            async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
                if srv.refuse:
                    return srv.refuse
                srv.envelopes.append(envelope)
                return "250 OK"

        def auth(
            _server: SMTP, _session: Session, _envelope: Envelope, _mechanism: str, data: Any
        ) -> AuthResult:
            ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"soc", b"pw")
            return AuthResult(success=ok, handled=False)

        kw: dict[str, Any] = {}
        if login:
            kw.update(authenticator=auth, auth_required=True)  # after STARTTLS
        if tls is not None and implicit:
            kw["ssl_context"] = tls
        elif tls is not None:
            kw.update(tls_context=tls, require_starttls=True)
        self.port = port or free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kw)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A server context with a self-signed certificate for 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    d = tmp_path_factory.mktemp("tls")
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(d / "cert.pem", d / "key.pem")
    return ctx


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for s in started:
        s.stop()


def send(tmp_path: Path, port: int, alerts: list[Alert], **options: Any) -> EmailSink:
    opts = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "to": ["soc@example.org", "oncall@example.org"],
        "sender": "stockade@example.org",
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.02,
        **options,
    }
    sink = build_sink(SinkConfig(type="email", options=opts), data_dir=tmp_path)
    assert isinstance(sink, EmailSink)
    try:
        for a in alerts:
            sink.emit(a)
        assert sink.drain(10)
    finally:
        sink.close()
    return sink


def test_one_message_per_alert(tmp_path: Path, make_alert: Callable[..., Alert]) -> None:
    r = SmtpReceiver(free_port())
    alerts = [make_alert(0, priority="Critical"), make_alert(1)]
    try:
        send(tmp_path, r.port, alerts)
    finally:
        r.stop()
    assert r.message_ids() == [f"<alert-{a.id}@stockade>" for a in alerts]
    m = r.messages[0]
    assert m["Subject"] == "[Stockade] Critical Terminal shell in container"
    assert m["From"] == "stockade@example.org" and m["To"] == "soc@example.org, oncall@example.org"
    parts = list(m.walk())
    text = next(p for p in parts if p.get_content_type() == "text/plain").get_payload(decode=True)
    assert isinstance(text, bytes) and alerts[0].output.encode() in text and alerts[0].id.encode() in text
    att = next(p for p in parts if p.get_filename() == f"alert-{alerts[0].id}.json")
    payload = att.get_payload(decode=True)
    assert isinstance(payload, bytes) and orjson.loads(payload)["stockade"]["id"] == alerts[0].id


def test_digest_login_and_refusal(
    tls: ssl.SSLContext, tmp_path: Path, make_alert: Callable[..., Alert], servers: list[Server]
) -> None:
    """Three alerts that waited in the spool (the server was down) go as one digest, after STARTTLS
    and a login (which the server requires)."""
    port = free_port()
    opts = {
        "host": "127.0.0.1",
        "port": port,
        "security": "starttls",
        "verify_tls": False,
        "to": ["soc@example.org", "oncall@example.org"],
        "username": "soc",
        "password": "pw",
        "batch_max": 10,
        "max_retries": 0,
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.02,
    }
    sink = build_sink(SinkConfig(type="email", options=opts), data_dir=tmp_path / "a")
    alerts = [make_alert(i, priority=p) for i, p in enumerate(["Notice", "Error", "Warning"])]
    try:
        for a in alerts:
            sink.emit(a)
        assert wait_until(lambda: sink.stats.spooled == 3)
        s = Server(tls=tls, login=True, port=port)
        servers.append(s)
        assert isinstance(sink, EmailSink) and sink.drain(10)
    finally:
        sink.close()
    assert sink.stats.sent == 3 and len(s.envelopes) == 1
    msg = s.envelopes[0].original_content or b""
    assert b"Subject: [Stockade] 3 alerts, worst Error" in msg
    assert f"<alert-{alerts[0].id}+3@stockade>".encode() in msg
    assert all(a.id.encode() in msg for a in alerts)
    assert s.envelopes[0].rcpt_tos == ["soc@example.org", "oncall@example.org"]
    s.refuse = "554 5.7.1 rejected as spam"
    refused = send(
        tmp_path / "b",
        s.port,
        [make_alert(9)],
        security="starttls",
        verify_tls=False,
        username="soc",
        password="pw",
    )
    assert (refused.stats.sent, refused.stats.failed) == (0, 1)  # a 5xx is final: dead letter
    assert (tmp_path / "b" / "spool" / "email" / DEAD_LETTER).exists()


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls(
    security: str,
    tls: ssl.SSLContext,
    tmp_path: Path,
    make_alert: Callable[..., Alert],
    servers: list[Server],
) -> None:
    s = Server(tls=tls, implicit=security == "ssl")
    servers.append(s)
    a = make_alert(0)
    send(tmp_path, s.port, [a], security=security, verify_tls=False)
    assert len(s.envelopes) == 1 and f"<alert-{a.id}@stockade>".encode() in (
        s.envelopes[0].original_content or b""
    )


def test_needs_recipients(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"key 'sinks.0.options.to': an email sink needs recipients"):
        build_sink(SinkConfig(type="email"), data_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"key 'sinks.0.options.to': expected an email address"):
        build_sink(SinkConfig(type="email", options={"to": "nobody"}), data_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"key 'sinks.0.options.security': expected one of none"):
        build_sink(SinkConfig(type="email", options={"to": "a@b", "security": "tls"}), data_dir=tmp_path)
