"""The webhook's HTTPS server: the standard library's threading HTTP server over TLS 1.2+, with
HTTP/1.1 keep-alive (kube-apiserver reuses its connections).

* ``POST /validate`` (every policy) and ``POST /validate/<policy>`` (one, as the generated
  configuration registers them): an AdmissionReview v1 in, an AdmissionReview v1 out. A body that
  is not one is answered 400 with a JSON ``{"error": ...}``; a body over :data:`MAX_BODY` 413;
  another content type 415. The ``timeout`` query parameter kube-apiserver adds is accepted.
* ``GET /healthz``: ``ok``.

Each decision on a request some policy matched is one JSON line on the audit log (a file, or
standard error): time, uid, operation, kind, namespace, name, user, allowed, code, policies,
outcomes, errors, latency_ms. Dry-run requests get the same verdict and no line.

The TLS handshake runs in the connection's thread (not in the accepting one), so a slow client
holds up no other; a handshake gets :data:`HANDSHAKE_TIMEOUT` seconds, and a connection silent for
:data:`IDLE_TIMEOUT` seconds (between requests or within one) is closed.
"""

from __future__ import annotations

import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any

import orjson

from stockade.k8s.admission.engine import Decision, Engine
from stockade.k8s.admission.review import Request, ReviewError, parse_review, response

__all__ = ["HANDSHAKE_TIMEOUT", "IDLE_TIMEOUT", "MAX_BODY", "AdmissionServer", "AuditLog"]

MAX_BODY = 4 * 1024 * 1024  # an AdmissionReview holds object and oldObject (etcd: 1.5 MiB each)
HANDSHAKE_TIMEOUT = 10.0  # seconds for a client to complete the TLS handshake
IDLE_TIMEOUT = 120.0  # seconds a kept-alive connection may stay silent


class AuditLog:
    """One JSON line per decision, to a stream, serialised across threads."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self._lock = threading.Lock()

    def write(self, req: Request, d: Decision, started: float) -> None:
        """The line of one decision."""
        line = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "uid": req.uid,
            "operation": req.operation,
            "kind": req.kind,
            "namespace": req.namespace,
            "name": req.name or str(((req.object or {}).get("metadata") or {}).get("name") or ""),
            "user": req.user,
            "allowed": d.allowed,
            "code": d.code,
            "policies": d.matched,
            "outcomes": [
                {"policy": o.policy, "rule": o.rule, "action": o.action, "message": o.message}
                for o in d.outcomes
            ],
            "errors": d.errors,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
        }
        data = orjson.dumps(line) + b"\n"
        with self._lock:
            self.stream.write(data)
            self.stream.flush()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT  # a connection silent this long (between or within requests) is closed
    server: AdmissionServer

    def log_message(self, format: str, *args: Any) -> None:
        """Access lines are not written (the audit log has the decisions)."""

    def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, code: int, message: str) -> None:
        self._send(code, orjson.dumps({"error": message}))

    def do_GET(self) -> None:
        """``/healthz``."""
        if self.path.partition("?")[0] in ("/healthz", "/readyz"):
            self._send(200, b"ok", "text/plain")
        else:
            self._error(404, f"no such path {self.path!r} (POST /validate, GET /healthz)")

    def do_POST(self) -> None:
        """``/validate`` and ``/validate/<policy>``."""
        started = time.perf_counter()
        path = self.path.partition("?")[0]
        if path == "/validate":
            only: list[str] | None = None
        elif path.startswith("/validate/") and path.count("/") == 2:
            only = [path.removeprefix("/validate/")]
            if only[0] not in self.server.names:
                self._drain()
                self._error(404, f"no policy {only[0]!r}")
                return
        else:
            self._drain()
            self._error(404, f"no such path {path!r} (POST /validate)")
            return
        body = self._body()
        if body is None:
            return
        try:
            req = parse_review(body)
        except ReviewError as e:
            self._error(400, str(e))
            return
        self._send(200, self.server.review(req, only, started))

    def _drain(self) -> None:
        n = self._length()
        if n is not None and 0 < n <= MAX_BODY:
            self.rfile.read(n)
        else:
            self.close_connection = True

    def _length(self) -> int | None:
        try:
            return int(self.headers.get("Content-Length", ""))
        except ValueError:
            return None

    def _body(self) -> bytes | None:
        ctype = (self.headers.get("Content-Type") or "").partition(";")[0].strip().lower()
        n = self._length()
        if n is None or n < 0:
            self.close_connection = True
            self._error(411, "a Content-Length is required")
            return None
        if n > MAX_BODY:
            self.close_connection = True
            self._error(413, f"the body is {n} bytes; at most {MAX_BODY}")
            return None
        body = self.rfile.read(n)
        if ctype != "application/json":
            self._error(415, f"Content-Type {ctype or '(none)'!r}: application/json expected")
            return None
        if len(body) != n:
            self.close_connection = True
            self._error(400, "the body ended early")
            return None
        return body


class AdmissionServer(ThreadingHTTPServer):
    """The webhook on `address`, serving TLS with `context`."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        engine: Engine,
        context: ssl.SSLContext,
        audit: AuditLog | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.engine = engine
        self.context = context
        self.audit = audit if audit is not None else AuditLog(sys.stderr.buffer)
        self.names = frozenset(p.name for p in engine.policies)
        self.on_error = on_error
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept, deferring the TLS handshake to the connection's thread."""
        sock, addr = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Handshake (with a deadline), then serve the connection."""
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError):
            return
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection's error is one line, never a traceback."""
        del request
        e = sys.exc_info()[1]
        if self.on_error is not None and not isinstance(e, ConnectionError | ssl.SSLError | TimeoutError):
            self.on_error(f"connection from {client_address[0]}: {type(e).__name__}: {e}")

    def review(self, req: Request, only: list[str] | None, started: float) -> bytes:
        """The response body to `req` (the audit line written unless dry-run)."""
        try:
            d = self.engine.decide(req, only)
        except Exception as e:  # a bug: answered per the failure policy, as an evaluation error
            d = Decision(matched=["(error)"], errors=[f"{type(e).__name__}: {e}"])
            if any(p.fail_closed for p in self.engine.policies):
                d.allowed, d.code = False, 500
        if d.matched and not req.dry_run:
            try:
                self.audit.write(req, d, started)
            except OSError as e:  # the verdict stands; the log's failure is said
                if self.on_error is not None:
                    self.on_error(f"audit log: {e.strerror or e}")
        return orjson.dumps(
            response(req.uid, d.allowed, message=d.message, code=d.code, warnings=d.warnings, audit=d.audit())
        )
