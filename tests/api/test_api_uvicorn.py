"""The API under a real uvicorn server on 127.0.0.1: what Falco / falcosidekick do, and hostile bodies."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from helpers import free_port
from stockade.api.app import create_app

TOKEN = "uvicorn-test-token"
LIMIT = 256 * 1024


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, runtime_factory: Any, rule_files: list[Path]
) -> Iterator[str]:
    """The real runtime behind a real uvicorn on 127.0.0.1, with a token and a 256 KiB body limit."""
    rt = runtime_factory(tmp_path_factory.mktemp("uvicorn"), rule_files)
    app = create_app(rt.store, rt, token=TOKEN, max_body_bytes=LIMIT)
    port = free_port()
    srv = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    t = threading.Thread(target=srv.run, name="uvicorn-test", daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert t.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        t.join(10)
        rt.close()


def test_falcosidekick_post_then_get(server: str, falco_alert: dict[str, Any]) -> None:
    """What falcosidekick's webhook output sends: one alert JSON object, application/json."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server, timeout=10) as http:
        r = http.post(
            "/api/v1/ingest/falco",
            content=orjson.dumps(falco_alert),
            headers={**auth, "Content-Type": "application/json", "User-Agent": "Falcosidekick"},
        )
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 1
        assert http.get("/api/v1/alerts").status_code == 401
        page = http.get("/api/v1/alerts", params={"rule": falco_alert["rule"]}, headers=auth).json()
        assert page["total"] == 1
        got = page["items"][0]
        assert got["output"] == falco_alert["output"] and got["time"] == falco_alert["time"]
        one = http.get(f"/api/v1/alerts/{got['stockade']['id']}", headers=auth)
        assert one.status_code == 200 and one.json()["hostname"] == "node-1"
        assert http.get("/healthz").json() == {"status": "ok"}


def _raw_request(
    server: str, head: bytes, body_chunks: Iterator[bytes] | None = None
) -> tuple[int, bytes, int]:
    """Send `head`, then chunks until the server answers; (status, response, bytes of body sent)."""
    host, port = server.removeprefix("http://").split(":")
    sent = 0
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(head)
        data = b""
        for chunk in body_chunks or iter(()):
            if select.select([s], [], [], 0.002)[0]:
                data = s.recv(65536)
                break
            try:
                s.sendall(chunk)
            except OSError:
                break
            sent += len(chunk)
        s.settimeout(10)
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            more = s.recv(65536)
            if not more:
                break
            data += more
    status = int(data.split(b" ", 2)[1])
    return status, data, sent


def test_declared_huge_body_is_refused_before_reading(server: str) -> None:
    head = (
        b"POST /api/v1/ingest/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
        b"Content-Type: application/x-ndjson\r\nContent-Length: 10737418240\r\n\r\n"
    )
    status, data, _ = _raw_request(server, head)  # no body is ever sent
    assert status == 413
    assert b"application/problem+json" in data and b"body-too-large" in data


def test_streamed_huge_body_is_cut_off(server: str) -> None:
    """A chunked body with no declared length: the server answers 413 once it passes the limit."""
    head = (
        b"POST /api/v1/ingest/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
        b"Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    line = b'{"evt.type": "open", "fd.name": "/tmp/x"}\n' * 200
    chunk = b"%x\r\n" % len(line) + line + b"\r\n"
    total_chunks = (64 * 2**20) // len(line)  # 64 MiB offered, never finished (no last chunk)
    status, data, sent = _raw_request(server, head, (chunk for _ in range(total_chunks)))
    assert status == 413, data
    assert b"body-too-large" in data
    assert LIMIT < sent < 16 * 2**20


def test_concurrent_agents(server: str) -> None:
    """Many agents posting at once: every event is stored once, none is lost."""
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"}
    n_clients, n_posts, per_post = 8, 5, 40

    def agent(k: int) -> list[int]:
        codes = []
        with httpx.Client(base_url=server, timeout=30) as http:
            for p in range(n_posts):
                body = b"".join(
                    orjson.dumps(
                        {"evt.type": "execve", "proc.name": f"agent{k}", "evt.num": p * per_post + i}
                    )
                    + b"\n"
                    for i in range(per_post)
                )
                codes.append(http.post("/api/v1/ingest/events", content=body, headers=auth).status_code)
        return codes

    threads: list[threading.Thread] = []
    results: dict[int, list[int]] = {}
    for k in range(n_clients):
        t = threading.Thread(target=lambda k=k: results.__setitem__(k, agent(k)))
        threads.append(t)
        t.start()
    for t in threads:
        t.join(60)
    assert all(codes == [200] * n_posts for codes in results.values()) and len(results) == n_clients
    with httpx.Client(base_url=server, timeout=10, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        for k in (0, n_clients - 1):
            got = http.get("/api/v1/events", params={"proc.name": f"agent{k}", "limit": 1000}).json()["items"]
            assert sorted(e["data"]["evt.num"] for e in got) == list(range(n_posts * per_post))
