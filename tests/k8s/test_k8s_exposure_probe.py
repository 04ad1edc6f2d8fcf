"""The exposure probe against local servers on loopback that behave like each service (TLS where
the real one uses TLS): an API server allowing anonymous requests and a locked one, a kubelet with
and without authentication, a read-only kubelet, etcd with and without a client certificate
requirement, a dashboard, IMDSv1 and IMDSv2, GCP and Azure metadata requiring their headers.
Each probe finds the open one and not the closed one."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from containers import PodmanFactory
from helpers import in_parallel
from stockade.errors import StockadeError, UsageError
from stockade.k8s.exposure import PROBE_POD, Exposure, enter_netns, parse_address, probe
from tlsgen import key_pem, make_cert, pem

STOCKADE = str(Path(sys.executable).parent / "stockade")


@dataclass(frozen=True)
class Req:
    """A request as a test server's handler sees it (header names lower-case)."""

    method: str
    path: str
    headers: dict[str, str]


#: a request -> (status, body)
Handler = Callable[[Req], tuple[int, str]]
J = json.dumps


def _status(code: int) -> str:
    return J({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code})


def api_open(r: Req) -> tuple[int, str]:
    return {
        "/version": (200, J({"major": "1", "minor": "29", "gitVersion": "v1.29.0"})),
        "/api": (200, J({"kind": "APIVersions", "versions": ["v1"]})),
        "/apis": (200, J({"kind": "APIGroupList", "groups": []})),
        "/api/v1/namespaces": (
            200,
            J({"kind": "NamespaceList", "items": [{"metadata": {"name": "default"}}]}),
        ),
    }.get(r.path, (404, _status(404)))


def api_default(r: Req) -> tuple[int, str]:
    # anonymous auth on, RBAC: only system:public-info-viewer (/version, /healthz)
    if r.path == "/version":
        return api_open(r)
    return 403, _status(403)


def api_locked(_r: Req) -> tuple[int, str]:
    return 401, _status(401)  # --anonymous-auth=false


def kubelet_open(r: Req) -> tuple[int, str]:
    if r.method == "POST" and r.path.startswith("/run/"):
        return 404, "pod not found"  # anonymous exec is authorised: the pod just does not exist
    return {
        "/pods": (200, J({"kind": "PodList", "apiVersion": "v1", "items": []})),
        "/runningpods/": (200, J({"kind": "PodList", "items": []})),
        "/configz": (200, J({"kubeletconfig": {"readOnlyPort": 10255}})),
    }.get(r.path, (404, "404 page not found"))


def kubelet_locked(_r: Req) -> tuple[int, str]:
    return 401, "Unauthorized"


def kubelet_readonly(r: Req) -> tuple[int, str]:
    return {
        "/pods": (200, J({"kind": "PodList", "apiVersion": "v1", "items": []})),
        "/stats/summary": (200, J({"node": {"nodeName": "n1"}, "pods": []})),
    }.get(r.path, (404, "404 page not found"))


def etcd(r: Req) -> tuple[int, str]:
    if r.path == "/version":
        return 200, J({"etcdserver": "3.5.9", "etcdcluster": "3.5.0"})
    if r.method == "POST" and r.path == "/v3/kv/range":
        return 200, J({"header": {"revision": "42"}, "count": "17"})
    return 404, "404 page not found"


def dashboard(r: Req) -> tuple[int, str]:
    if r.path == "/":
        return (
            200,
            "<!doctype html><html><head><title>Kubernetes Dashboard</title></head><body></body></html>",
        )
    return 404, ""


def imds_v1(r: Req) -> tuple[int, str]:
    if r.method == "GET" and r.path == "/latest/meta-data/":
        return 200, "ami-id\nhostname\niam/\ninstance-id\n"
    return 404, ""


def imds_v2(r: Req) -> tuple[int, str]:
    if (
        r.method == "PUT"
        and r.path == "/latest/api/token"
        and "x-aws-ec2-metadata-token-ttl-seconds" in r.headers
    ):
        return 200, "AQAEAtoken=="
    if r.method == "GET" and r.path == "/latest/meta-data/":
        ok = r.headers.get("x-aws-ec2-metadata-token") == "AQAEAtoken=="
        return (200, "ami-id\nhostname\n") if ok else (401, "")
    return 404, ""


def imds_v2_hop_limited(r: Req) -> tuple[int, str]:
    if r.method == "PUT":
        return 403, ""  # the token's answer does not reach a pod (hop limit 1): as if refused
    return imds_v2(r)


def gcp(r: Req) -> tuple[int, str]:
    if r.path.startswith("/computeMetadata/v1/"):
        if r.headers.get("metadata-flavor") != "Google":
            return 403, "Missing Metadata-Flavor:Google header."
        return 200, "instance/\nproject/\n"
    return 404, ""


def azure(r: Req) -> tuple[int, str]:
    if r.path.startswith("/metadata/instance"):
        if r.headers.get("metadata") != "true":
            return 400, J({"error": "Bad request. Required metadata header not specified"})
        return 200, J({"compute": {"vmId": "x"}})
    return 404, ""


def not_found(_r: Req) -> tuple[int, str]:
    return 404, "nothing here"


class Server:
    """An HTTP(S) server on 127.0.0.1 answering with `handler`; `client_ca` makes client
    certificates required (etcd's --client-cert-auth)."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        class H(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                code, body = handler(
                    Req(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
                )
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = _any

            def log_message(self, *a: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    d = tmp_path_factory.mktemp("tls")
    ca = make_cert("Test cluster CA", 30, ca=True, ec_key=True)
    leaf = make_cert("127.0.0.1", 30, issuer=ca, sans=("localhost",), ec_key=True)
    (d / "chain.pem").write_bytes(pem(leaf[0]) + pem(ca[0]))
    (d / "key.pem").write_bytes(key_pem(leaf[1]))
    (d / "ca.pem").write_bytes(pem(ca[0]))

    def tls(client_cert: bool = False) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(d / "chain.pem"), str(d / "key.pem"))
        if client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(str(d / "ca.pem"))
        return ctx

    made = {
        "api-open": Server(api_open, tls()),
        "api-default": Server(api_default, tls()),
        "api-locked": Server(api_locked, tls()),
        "kubelet-open": Server(kubelet_open, tls()),
        "kubelet-locked": Server(kubelet_locked, tls()),
        "readonly": Server(kubelet_readonly),
        "etcd-open": Server(etcd, tls()),
        "etcd-http": Server(etcd),
        "etcd-locked": Server(etcd, tls(client_cert=True)),
        "dashboard": Server(dashboard, tls()),
        "imds-v1": Server(imds_v1),
        "imds-v2": Server(imds_v2),
        "imds-v2-hop": Server(imds_v2_hop_limited),
        "gcp": Server(gcp),
        "azure": Server(azure),
        "nothing": Server(not_found),
    }
    yield {k: s.port for k, s in made.items()}
    for s in made.values():
        s.close()


CASES = [
    # (service, server, status, severity)
    ("apiserver", "api-open", "exposed", "CRITICAL"),
    ("apiserver", "api-default", "closed", None),
    ("apiserver", "api-locked", "closed", None),
    ("apiserver", "nothing", "unreachable", None),  # HTTPS to an HTTP server: no HTTP answer
    ("kubelet", "kubelet-open", "exposed", "CRITICAL"),
    ("kubelet", "kubelet-locked", "closed", None),
    ("kubelet-readonly", "readonly", "exposed", "HIGH"),
    ("kubelet-readonly", "nothing", "unrecognised", None),
    ("etcd", "etcd-open", "exposed", "CRITICAL"),
    ("etcd", "etcd-http", "exposed", "CRITICAL"),
    ("etcd", "etcd-locked", "closed", None),
    ("dashboard", "dashboard", "exposed", "HIGH"),
    ("dashboard", "nothing", "unrecognised", None),
    ("aws-imds", "imds-v1", "exposed", "HIGH"),
    ("aws-imds", "imds-v2", "exposed", "MEDIUM"),
    ("aws-imds", "imds-v2-hop", "closed", None),
    ("gcp-metadata", "gcp", "exposed", "HIGH"),
    ("gcp-metadata", "nothing", "unrecognised", None),
    ("azure-metadata", "azure", "exposed", "HIGH"),
]


@pytest.fixture(scope="module")
def results(servers: dict[str, int]) -> dict[tuple[str, str], Exposure]:
    addresses = [f"{svc}=127.0.0.1:{servers[srv]}" for svc, srv, _, _ in CASES]
    got = probe(addresses, timeout=3)
    assert len(got) == len(CASES)
    return {(c[0], c[1]): r for c, r in zip(CASES, got, strict=True)}


@pytest.mark.parametrize(("service", "server", "status", "severity"), CASES)
def test_each_probe_tells_open_from_closed(
    results: dict[tuple[str, str], Exposure], service: str, server: str, status: str, severity: str | None
) -> None:
    r = results[(service, server)]
    assert (r.status, r.severity) == (status, severity), r
    assert r.evidence, "every verdict carries its requests"


def test_evidence_has_status_codes_and_snippets(results: dict[tuple[str, str], Exposure]) -> None:
    api = results[("apiserver", "api-open")]
    ns = next(e for e in api.evidence if e.url.endswith("/api/v1/namespaces"))
    assert ns.status == 200 and "NamespaceList" in ns.snippet
    kubelet = results[("kubelet", "kubelet-open")]
    run = next(e for e in kubelet.evidence if e.method == "POST")
    assert run.url.endswith(f"/run/{PROBE_POD}") and run.status == 404
    locked = results[("kubelet", "kubelet-locked")]
    assert {e.status for e in locked.evidence} == {401}
    etcd_locked = results[("etcd", "etcd-locked")]
    assert etcd_locked.url.startswith("https://")
    assert any("certificate" in e.error.lower() or "alert" in e.error.lower() for e in etcd_locked.evidence)
    etcd_http = results[("etcd", "etcd-http")]
    assert etcd_http.url.startswith("http://")  # HTTPS failed, HTTP answered
    assert results[("aws-imds", "imds-v1")].evidence[0].snippet.startswith("ami-id")


def test_an_unknown_port_is_probed_as_every_http_service(servers: dict[str, int]) -> None:
    got = probe([f"127.0.0.1:{servers['kubelet-open']}"], timeout=3)
    assert {r.service for r in got} == {"apiserver", "kubelet", "kubelet-readonly", "etcd", "dashboard"}
    assert [r.service for r in got if r.status == "exposed"] == ["kubelet"]


def test_addresses_are_parsed_and_nothing_else_is_probed() -> None:
    (t,) = parse_address("kubelet=10.0.0.5:10250")
    assert (t.service, t.host, t.port, t.schemes) == ("kubelet", "10.0.0.5", 10250, ("https",))
    (t,) = parse_address("10.0.0.5:10255")
    assert t.service == "kubelet-readonly" and t.schemes == ("http",)
    assert {t.service for t in parse_address("169.254.169.254")} == {
        "aws-imds",
        "gcp-metadata",
        "azure-metadata",
    }
    assert [(t.service, t.schemes) for t in parse_address("https://10.0.0.5:2379")] == [("etcd", ("https",))]
    assert [t.schemes for t in parse_address("https://10.0.0.5:9999")] == [("https",)] * 5
    assert {t.port for t in parse_address("10.0.0.5") if t.service == "apiserver"} == {6443, 443}
    for bad in ("nosuch=1.2.3.4", "ftp://x:21", "x:notaport", ""):
        with pytest.raises(UsageError):
            parse_address(bad)


def test_cli(servers: dict[str, int]) -> None:
    def run(*a: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([STOCKADE, "k8s", "exposure", *a], capture_output=True, text=True, timeout=60)

    exposed, closed, usage, none = in_parallel([
        lambda: run(f"kubelet=127.0.0.1:{servers['kubelet-open']}", "--output", "json", "--exit-code", "4"),
        lambda: run(f"kubelet=127.0.0.1:{servers['kubelet-locked']}", "--exit-code", "4", "--timeout", "3"),
        lambda: run("nosuch=127.0.0.1:1"),
        lambda: run(),
    ])  # fmt: skip
    assert exposed.returncode == 4, exposed.stderr
    (line,) = [json.loads(x) for x in exposed.stdout.splitlines()]
    assert (line["service"], line["status"], line["severity"]) == ("kubelet", "exposed", "CRITICAL")
    assert {"address", "url", "message", "evidence"} <= set(line)
    assert closed.returncode == 0, closed.stderr
    assert "CLOSED" in closed.stdout
    for r in (usage, none):
        assert r.returncode == 2 and r.stderr.startswith("stockade: error: "), r.stderr


def _server_in_netns(pid: int) -> Server:
    """A kubelet that lets anyone in (over HTTP), on 127.0.0.1 inside the network namespace of `pid`."""
    made: list[Server] = []

    def start() -> None:
        enter_netns(f"/proc/{pid}/ns/net")  # this thread only; the socket is bound in there
        made.append(Server(kubelet_open))

    t = threading.Thread(target=start)
    t.start()
    t.join()
    return made[0]


@pytest.mark.containers
def test_probe_from_a_containers_network(
    module_podman_container: PodmanFactory, servers: dict[str, int]
) -> None:
    c = module_podman_container()  # --network none: its own loopback only
    netns = f"/proc/{c.pid}/ns/net"
    inside = _server_in_netns(c.pid)
    try:
        host_kubelet = f"kubelet=127.0.0.1:{servers['kubelet-open']}"
        its_kubelet = f"kubelet=http://127.0.0.1:{inside.port}"  # served over HTTP
        from_host = probe([host_kubelet, its_kubelet], timeout=2)
        from_container = probe([host_kubelet, its_kubelet], timeout=2, netns=netns)
        cli = subprocess.run(
            [STOCKADE, "k8s", "exposure", "--container", c.name, its_kubelet, "--output", "json"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        inside.close()
    assert [r.status for r in from_host] == ["exposed", "unreachable"]
    assert [r.status for r in from_container] == ["unreachable", "exposed"]
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["status"] == "exposed"
    with pytest.raises(StockadeError, match="network namespace"):
        probe([host_kubelet], netns="/proc/no-such-pid/ns/net")
