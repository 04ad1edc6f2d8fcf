"""Real local receivers for the sink tests: a threaded HTTP server (with the answers of Splunk HEC,
Elasticsearch's _bulk, PagerDuty, Slack and Teams as needed), an SMTP server (aiosmtpd) and a TCP
syslog server (RFC 6587 octet counting). Each listens on 127.0.0.1, on a given port (so a test can
start it where a sink already sends, after a while of nothing listening there) or any free one.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


#: (status, body, headers) a receiver answers a request with
Answer = tuple[int, bytes, dict[str, str]]


def ok_json(_body: bytes) -> Answer:
    return 200, b'{"ok":true}', {"Content-Type": "application/json"}


class HttpReceiver:
    """An HTTP server that records every request (path, headers, body). Each request is answered by
    the next entry of `script` (status, headers), if any, else by `answer(body)`; `delay_s` slows
    every answer down."""

    def __init__(self, port: int = 0, answer: Callable[[bytes], Answer] = ok_json) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.accepted_bodies: list[bytes] = []
        self.script: list[tuple[int, dict[str, str]]] = []
        self.answer = answer
        self.delay_s = 0.0
        self.lock = threading.Lock()
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with rec.lock:
                    scripted = rec.script.pop(0) if rec.script else None
                    delay = rec.delay_s
                if delay:
                    time.sleep(delay)
                if scripted is not None and scripted[0] != 200:
                    status, payload, hdrs = scripted[0], b'{"error":"no"}', scripted[1]
                else:
                    status, payload, hdrs = rec.answer(body)
                    if scripted is not None:
                        hdrs = {**hdrs, **scripted[1]}
                with rec.lock:
                    rec.requests.append((self.path, dict(self.headers.items()), body))
                    rec.on_request(status, dict(self.headers.items()), body)
                self.send_response(status)
                for k, v in hdrs.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", port), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def on_request(self, status: int, headers: dict[str, str], body: bytes) -> None:  # noqa: ARG002
        """Called (lock held) for each answered request: keeps the 2xx-answered bodies."""
        if 200 <= status < 300:
            self.accepted_bodies.append(body)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bodies(self) -> list[bytes]:
        """The bodies answered with a 2xx, in order."""
        with self.lock:
            return list(self.accepted_bodies)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ElasticReceiver(HttpReceiver):
    """Elasticsearch's ``_bulk`` for ``create`` actions: an index of documents by ``_id``, a 409
    item for an id it has, and `item_script` (``_id`` -> the statuses of its next attempts) to fail
    some."""

    def __init__(self, port: int = 0) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []
        self.indices: list[str] = []
        self.item_script: dict[str, list[int]] = {}
        self.item_answers: list[tuple[str, int]] = []
        super().__init__(port, self._bulk)

    def _bulk(self, body: bytes) -> Answer:
        lines = body.splitlines()
        items = []
        with self.lock:
            for action_line, doc_line in zip(lines[::2], lines[1::2], strict=True):
                create = orjson.loads(action_line)["create"]
                _id = create["_id"]
                script = self.item_script.get(_id)
                status = script.pop(0) if script else 201
                if status == 201 and _id in self.docs:
                    status = 409
                self.item_answers.append((_id, status))
                if status == 201:
                    self.docs[_id] = orjson.loads(doc_line)
                    self.order.append(_id)
                    self.indices.append(create["_index"])
                item: dict[str, Any] = {"_index": create["_index"], "_id": _id, "status": status}
                if status >= 300:
                    item["error"] = {"type": "version_conflict_engine_exception" if status == 409 else "x"}
                items.append({"create": item})
        errors = any(i["create"]["status"] >= 300 for i in items)
        return 200, orjson.dumps({"took": 1, "errors": errors, "items": items}), {}


class SmtpReceiver:
    """An SMTP server (aiosmtpd) on 127.0.0.1 that keeps the messages it accepted."""

    def __init__(self, port: int) -> None:
        self.messages: list[Message] = []
        #: answer this many messages with 451 (try again later) first
        self.fail_next = 0
        self.refused = 0
        self.lock = threading.Lock()
        rec = self

        class Handler:
            async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
                data = envelope.original_content or b""
                with rec.lock:
                    if rec.fail_next > 0:
                        rec.fail_next -= 1
                        rec.refused += 1
                        return "451 4.3.0 try again later"
                    rec.messages.append(message_from_bytes(data))
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port)
        self.controller.start()
        self.port = port

    def message_ids(self) -> list[str]:
        with self.lock:
            return [str(m["Message-ID"]) for m in self.messages]

    def stop(self) -> None:
        self.controller.stop()


class TcpSyslogReceiver:
    """A TCP syslog server: RFC 6587 octet-counted frames, kept in order."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.frames: list[bytes] = []
        self.conns = 0
        self.open: list[socket.socket] = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            while True:
                conn, _ = self.sock.accept()
                self.conns += 1
                self.open.append(conn)
                threading.Thread(target=self._read, args=(conn,), daemon=True).start()
        except OSError:
            pass

    def _read(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            try:
                while chunk := conn.recv(65536):
                    buf += chunk
                    while b" " in buf:  # RFC 6587 octet counting: "LEN SP MSG"
                        n_s, rest = buf.split(b" ", 1)
                        assert n_s.isdigit(), buf[:50]
                        n = int(n_s)
                        if len(rest) < n:
                            break
                        with self.cond:
                            self.frames.append(rest[:n])
                            self.cond.notify_all()
                        buf = rest[n:]
            except OSError:
                pass

    def wait(self, n: int) -> list[bytes]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.frames) >= n, timeout=5), self.frames
            return list(self.frames)

    def stop(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() (else the port stays listening)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)
        for c in self.open:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    close = stop


# ---- the network sinks, each with its receiver -----------------------------------------------

_ID = re.compile(r"\b([0-9a-f]{32})\b")
_SD_ID = re.compile(rb'\bid="([0-9a-f]{32})"')


def _answer(status: int, body: bytes) -> Callable[[bytes], Answer]:
    return lambda _b: (status, body, {"Content-Type": "application/json"})


def _http(answer: Callable[[bytes], Answer] = ok_json) -> Callable[[int], HttpReceiver]:
    return lambda port: HttpReceiver(port, answer)


def _ids_of(each: Callable[[bytes], list[str]]) -> Callable[[Any], list[str]]:
    return lambda r: [i for body in r.bodies() for i in each(body)]


def _slack_ids(body: bytes) -> list[str]:
    context = orjson.loads(body)["blocks"][-1]["elements"][0]["text"]
    return _ID.findall(context)[:1]


def _teams_ids(body: bytes) -> list[str]:
    facts = orjson.loads(body)["attachments"][0]["content"]["body"][1]["facts"]
    return [f["value"] for f in facts if f["title"] == "Alert id"]


def _email_ids(r: SmtpReceiver) -> list[str]:
    return [_ID.findall(m)[0] for m in r.message_ids()]


def _syslog_ids(r: TcpSyslogReceiver) -> list[str]:
    with r.cond:
        return [m.group(1).decode() for f in r.frames if (m := _SD_ID.search(f))]


@dataclass(frozen=True)
class NetworkSink:
    """A network sink type: its entry for a receiver on a port, how to start that receiver, and the
    alert ids the receiver took, in order (with any repeats)."""

    kind: str
    entry: Callable[[int], dict[str, Any]]
    start: Callable[[int], Any]
    ids: Callable[[Any], list[str]]
    #: its options include the HTTP client's
    http: bool = True
    #: it sees the destination's answers (a syslog server gives none)
    answers: bool = True


NETWORK_SINKS: dict[str, NetworkSink] = {
    s.kind: s
    for s in [
        NetworkSink(
            "webhook",
            lambda p: {"url": f"http://127.0.0.1:{p}/alerts"},
            _http(),
            _ids_of(lambda b: [orjson.loads(b)["stockade"]["id"]]),
        ),
        NetworkSink(
            "splunk_hec",
            lambda p: {"url": f"http://127.0.0.1:{p}", "options": {"token": "t0ken", "batch_max": 4}},
            _http(_answer(200, b'{"text":"Success","code":0}')),
            _ids_of(lambda b: [orjson.loads(x)["event"]["stockade"]["id"] for x in b.splitlines()]),
        ),
        NetworkSink(
            "elasticsearch",
            lambda p: {"url": f"http://127.0.0.1:{p}", "options": {"batch_max": 4}},
            ElasticReceiver,
            lambda r: list(r.order),
        ),
        NetworkSink(
            "slack",
            lambda p: {"url": f"http://127.0.0.1:{p}/services/T0/B0/x"},
            _http(_answer(200, b"ok")),
            _ids_of(_slack_ids),
        ),
        NetworkSink(
            "teams",
            lambda p: {"url": f"http://127.0.0.1:{p}/workflows/x"},
            _http(_answer(202, b"")),
            _ids_of(_teams_ids),
        ),
        NetworkSink(
            "pagerduty",
            lambda p: {"url": f"http://127.0.0.1:{p}/v2/enqueue", "options": {"routing_key": "R0"}},
            _http(_answer(202, b'{"status":"success","message":"Event processed"}')),
            _ids_of(lambda b: [orjson.loads(b)["dedup_key"]]),
        ),
        NetworkSink(
            "email",
            lambda p: {
                "options": {
                    "host": "127.0.0.1",
                    "port": p,
                    "security": "none",
                    "to": ["soc@example.org"],
                    "sender": "stockade@example.org",
                }
            },
            SmtpReceiver,
            _email_ids,
            http=False,
        ),
        NetworkSink(
            "syslog",
            lambda p: {"address": f"tcp://127.0.0.1:{p}", "options": {"reconnect_s": 0}},
            TcpSyslogReceiver,
            _syslog_ids,
            http=False,
            answers=False,
        ),
    ]
}


def stop(receiver: Any) -> None:
    """Stop a receiver of any kind."""
    receiver.stop()
