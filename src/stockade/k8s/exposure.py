"""What a pod could reach: the exposure probe (docs/k8s-node.md).

Given addresses, and only those (the default list is used only when asked for), each is probed
as the services it may be, concurrently, with short timeouts, without credentials:

- ``apiserver`` (HTTPS, 6443/443): ``GET /version``, ``/api``, ``/apis``, ``/api/v1/namespaces``;
  200 on a listing is anonymous access (401/403 is closed; an anonymous ``/version`` is the
  default: closed too);
- ``kubelet`` (HTTPS, 10250): ``GET /pods``, ``/runningpods/``, ``/configz``, and
  ``POST /run/<ns>/<pod>/<container>`` for a pod that does not exist (nothing runs): an answer other
  than 401/403 means exec is open to anyone;
- ``kubelet-readonly`` (HTTP, 10255): ``GET /pods``, ``/stats/summary``;
- ``etcd`` (2379): HTTPS without a client certificate, then HTTP: ``GET /version``, a
  count-only ``POST /v3/kv/range``, ``GET /v2/keys``;
- ``dashboard`` (HTTPS then HTTP): Kubernetes Dashboard, Weave Scope, Kibana, Grafana,
  recognised by their pages and headers;
- ``aws-imds``, ``gcp-metadata``, ``azure-metadata`` (HTTP, 169.254.169.254 or
  metadata.google.internal): IMDSv1 answers ``/latest/meta-data/`` without a token (IMDSv2 needs
  a ``PUT /latest/api/token`` first), GCP ``/computeMetadata/v1/`` with ``Metadata-Flavor:
  Google``, Azure ``/metadata/instance`` with ``Metadata: true``.

An address is ``host``, ``host:port``, a URL, or ``SERVICE=host[:port]`` to probe it as that service
only. Without a service, a known port picks its service (10250 the kubelet ...); a metadata
address its cloud's; any other port is probed as every HTTP service; no port, every service on
its usual ports.

``netns`` (the CLI's ``--container``): every request is made from that network namespace. Each
worker thread enters it (``setns(CLONE_NEWNET)`` changes the calling thread only) before its first
request; names are resolved with this host's resolver configuration.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from stockade.errors import StockadeError, UsageError

__all__ = [
    "DEFAULT_ADDRESSES",
    "SERVICES",
    "Exposure",
    "Response",
    "Target",
    "enter_netns",
    "parse_address",
    "probe",
]

#: probed only with --defaults: the in-cluster API server and the clouds' metadata endpoints
DEFAULT_ADDRESSES: Final = (
    "apiserver=kubernetes.default.svc:443",
    "169.254.169.254",
    "metadata.google.internal",
)

#: service -> (default ports, schemes in the order tried)
SERVICES: Final[dict[str, tuple[tuple[int, ...], tuple[str, ...]]]] = {
    "apiserver": ((6443, 443), ("https",)),
    "kubelet": ((10250,), ("https",)),
    "kubelet-readonly": ((10255,), ("http",)),
    "etcd": ((2379,), ("https", "http")),
    "dashboard": ((443, 8443, 80, 4040, 5601, 3000), ("https", "http")),
    "aws-imds": ((80,), ("http",)),
    "gcp-metadata": ((80,), ("http",)),
    "azure-metadata": ((80,), ("http",)),
}
METADATA_HOSTS: Final = {
    "169.254.169.254": ("aws-imds", "gcp-metadata", "azure-metadata"),
    "metadata.google.internal": ("gcp-metadata",),
    "fd00:ec2::254": ("aws-imds",),
}
_HTTP_SERVICES = ("apiserver", "kubelet", "kubelet-readonly", "etcd", "dashboard")
#: a pod name no cluster has: the kubelet's /run answers for it without running anything
PROBE_POD: Final = "default/stockade-exposure-probe-nonexistent/probe"
SNIPPET: Final = 200


@dataclass(frozen=True, slots=True)
class Target:
    """One service to probe at one place."""

    address: str  # as the user wrote it
    service: str
    host: str
    port: int
    schemes: tuple[str, ...]

    def base(self, scheme: str) -> str:
        """``scheme://host:port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Response:
    """One request and what came back (status None: no HTTP answer; `error` says why)."""

    method: str
    url: str
    status: int | None
    snippet: str = ""
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The evidence as JSON."""
        return {"method": self.method, "url": self.url, "status": self.status, "snippet": self.snippet,
                "error": self.error}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Exposure:
    """The verdict on one target: exposed (with a severity), closed, unreachable or unrecognised
    (it answers, but not as that service)."""

    address: str
    service: str
    url: str
    status: str  # exposed | closed | unreachable | unrecognised
    severity: str | None
    message: str
    evidence: tuple[Response, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        """What ``stockade k8s exposure --output json`` prints, one per line."""
        return {
            "address": self.address,
            "service": self.service,
            "url": self.url,
            "status": self.status,
            "severity": self.severity,
            "message": self.message,
            "evidence": [r.as_dict() for r in self.evidence],
        }


def parse_address(address: str) -> list[Target]:
    """The targets of one address (see the module docstring); a UsageError when it is not one."""
    service: str | None = None
    text = address.strip()
    m = re.match(r"^([a-z-]+)=(.+)$", text)
    if m:
        service, text = m.group(1), m.group(2)
        if service not in SERVICES:
            raise UsageError(f"{address}: unknown service {service!r} (one of {', '.join(SERVICES)})")
    scheme: str | None = None
    if "://" in text:
        u = urlsplit(text)
        scheme, host, port = u.scheme, u.hostname or "", u.port
        if scheme not in ("http", "https"):
            raise UsageError(f"{address}: only http:// and https:// URLs")
    else:
        u = urlsplit("//" + text)
        try:
            host, port = u.hostname or "", u.port
        except ValueError:
            raise UsageError(f"{address}: not host[:port]") from None
    if not host:
        raise UsageError(f"{address}: no host")
    if service is not None:
        services: Sequence[str] = (service,)
    elif host in METADATA_HOSTS:
        services = METADATA_HOSTS[host]
    elif port is not None:
        known = [s for s in _HTTP_SERVICES if port in SERVICES[s][0] and s != "dashboard"]
        services = known or _HTTP_SERVICES
    else:
        services = _HTTP_SERVICES
    out = []
    for s in services:
        ports, schemes = SERVICES[s]
        for p in (port,) if port is not None else ports:
            assert p is not None
            out.append(Target(address, s, host, p, (scheme,) if scheme else schemes))
    return out


def _snippet(r: httpx.Response) -> str:
    return re.sub(r"\s+", " ", r.text[: SNIPPET * 2]).strip()[:SNIPPET]


class _Prober:
    """Requests to one target over one scheme, recorded as evidence."""

    def __init__(self, target: Target, scheme: str, timeout: float) -> None:
        self.target = target
        self.base = target.base(scheme)
        self.client = httpx.Client(verify=False, timeout=timeout, follow_redirects=False)
        self.evidence: list[Response] = []

    def __call__(self, method: str, path: str, **kw: Any) -> httpx.Response | None:
        url = self.base + path
        try:
            r = self.client.request(method, url, **kw)
        except httpx.HTTPError as e:
            self.evidence.append(Response(method, url, None, error=f"{type(e).__name__}: {e}"[:SNIPPET]))
            return None
        self.evidence.append(Response(method, url, r.status_code, _snippet(r)))
        return r

    def close(self) -> None:
        self.client.close()

    def result(self, status: str, severity: str | None, message: str) -> Exposure:
        return Exposure(self.target.address, self.target.service, self.base, status, severity, message,
                        tuple(self.evidence))  # fmt: skip

    def silent(self) -> bool:
        """Whether nothing answered over HTTP at all."""
        return all(r.status is None for r in self.evidence)


def _ok(r: httpx.Response | None) -> bool:
    return r is not None and r.status_code == 200


def _denied(r: httpx.Response | None) -> bool:
    return r is not None and r.status_code in (401, 403)


def _json(r: httpx.Response | None) -> Any:
    try:
        return r.json() if r is not None else None
    except (ValueError, json.JSONDecodeError):
        return None


def _apiserver(p: _Prober) -> Exposure:
    version, api, apis, ns = (
        p("GET", "/version"),
        p("GET", "/api"),
        p("GET", "/apis"),
        p("GET", "/api/v1/namespaces"),
    )
    if p.silent():
        return p.result("unreachable", None, "no answer")
    body = _json(version)
    looks = (isinstance(body, dict) and "gitVersion" in body) or any(
        isinstance(b := _json(r), dict)
        and b.get("kind") in ("Status", "APIVersions", "APIGroupList", "NamespaceList")
        for r in (api, apis, ns)
    )
    if not looks:
        return p.result("unrecognised", None, "answers, but not as a Kubernetes API server")
    if _ok(ns):
        return p.result("exposed", "CRITICAL", "anonymous requests can list namespaces")
    if _ok(api) or _ok(apis):
        return p.result("exposed", "HIGH", "anonymous requests reach API discovery")
    if _ok(version):
        return p.result("closed", None, "only /version is readable anonymously (the default)")
    return p.result("closed", None, "anonymous requests are refused (401/403)")


def _kubelet(p: _Prober) -> Exposure:
    reads = {path: p("GET", path) for path in ("/pods", "/runningpods/", "/configz")}
    run = p("POST", f"/run/{PROBE_POD}", data={"cmd": "true"})
    if p.silent():
        return p.result("unreachable", None, "no answer")
    if not any(_ok(r) or _denied(r) for r in (*reads.values(), run)):
        return p.result("unrecognised", None, "answers, but not as a kubelet")
    open_reads = [path for path, r in reads.items() if _ok(r)]
    exec_open = run is not None and not _denied(run) and run.status_code not in (405,)
    if exec_open:
        return p.result("exposed", "CRITICAL", "the kubelet's run/exec endpoints accept anonymous requests")
    if open_reads:
        return p.result("exposed", "HIGH", f"anonymous reads: {', '.join(open_reads)}")
    return p.result("closed", None, "anonymous requests are refused (401/403)")


def _kubelet_readonly(p: _Prober) -> Exposure:
    pods, stats = p("GET", "/pods"), p("GET", "/stats/summary")
    if p.silent():
        return p.result("unreachable", None, "no answer")
    if _ok(pods) and isinstance(b := _json(pods), dict) and b.get("kind") == "PodList":
        return p.result(
            "exposed", "HIGH", "the read-only kubelet port lists pods (their specs and environment)"
        )
    if _ok(stats) and isinstance(_json(stats), dict):
        return p.result("exposed", "MEDIUM", "the read-only kubelet port serves statistics")
    return p.result("unrecognised", None, "answers, but not as the kubelet's read-only port")


def _etcd(p: _Prober) -> Exposure:
    version = p("GET", "/version")
    if version is None:
        errs = " ".join(r.error for r in p.evidence).lower()
        if p.base.startswith("https") and any(
            w in errs for w in ("certificate", "alert", "ssl", "handshake")
        ):
            return p.result("closed", None, "the TLS handshake needs a client certificate")
        return p.result("unreachable", None, "no answer")
    body = _json(version)
    if not (isinstance(body, dict) and ("etcdserver" in body or "etcdcluster" in body)):
        return p.result("unrecognised", None, "answers, but not as etcd")
    kv = p("POST", "/v3/kv/range", json={"key": "AA==", "range_end": "AA==", "count_only": True})
    v2 = p("GET", "/v2/keys")
    if _ok(kv) or _ok(v2):
        return p.result("exposed", "CRITICAL", "etcd's keys are readable without a client certificate")
    return p.result("exposed", "HIGH", "etcd answers without a client certificate")


#: (name, severity, predicate over the response of GET /)
_DASHBOARDS: tuple[tuple[str, str, Callable[[httpx.Response], bool]], ...] = (
    ("Kubernetes Dashboard", "HIGH", lambda r: "kubernetes dashboard" in r.text.lower()
     or "kubernetes-dashboard" in r.text.lower()),
    ("Weave Scope", "HIGH", lambda r: "weave scope" in r.text.lower()),
    ("Kibana", "MEDIUM", lambda r: "kbn-name" in r.headers or "kibana" in r.text.lower()),
    ("Grafana", "MEDIUM", lambda r: "grafana" in r.text.lower()),
)  # fmt: skip


def _dashboard(p: _Prober) -> Exposure:
    r = p("GET", "/")
    if r is None:
        return p.result("unreachable", None, "no answer")
    for name, severity, is_it in _DASHBOARDS:
        if is_it(r):
            if _denied(r):
                return p.result("closed", None, f"{name} refuses anonymous requests")
            return p.result("exposed", severity, f"{name} is reachable")
    return p.result("unrecognised", None, "answers, but not as a known dashboard")


def _aws(p: _Prober) -> Exposure:
    v1 = p("GET", "/latest/meta-data/")
    if p.silent():
        return p.result("unreachable", None, "no answer")
    if _ok(v1):
        return p.result("exposed", "HIGH", "IMDSv1: instance metadata (and role credentials) without a token")
    token = p("PUT", "/latest/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
    if _ok(token) and token is not None:
        with_token = p("GET", "/latest/meta-data/", headers={"X-aws-ec2-metadata-token": token.text.strip()})
        if _ok(with_token):
            return p.result(
                "exposed", "MEDIUM", "IMDSv2 only, but reachable from here (a hop limit of 1 keeps pods out)"
            )
    if v1 is not None and v1.status_code == 401:
        return p.result("closed", None, "IMDSv2 required and no token is handed out here")
    return p.result("unrecognised", None, "answers, but not as the AWS instance metadata service")


def _header_metadata(p: _Prober, path: str, headers: dict[str, str], what: str) -> Exposure:
    bare = p("GET", path)
    with_header = p("GET", path, headers=headers)
    if p.silent():
        return p.result("unreachable", None, "no answer")
    if _ok(with_header):
        return p.result(
            "exposed", "HIGH", f"{what} answers (with {', '.join(headers)}): tokens of the node's identity"
        )
    if _ok(bare):
        return p.result("exposed", "HIGH", f"{what} answers without its header")
    return p.result("closed" if _denied(with_header) else "unrecognised", None, f"no {what} here")


_PROBES: dict[str, Callable[[_Prober], Exposure]] = {
    "apiserver": _apiserver,
    "kubelet": _kubelet,
    "kubelet-readonly": _kubelet_readonly,
    "etcd": _etcd,
    "dashboard": _dashboard,
    "aws-imds": _aws,
    "gcp-metadata": lambda p: _header_metadata(
        p, "/computeMetadata/v1/", {"Metadata-Flavor": "Google"}, "GCP metadata server"
    ),
    "azure-metadata": lambda p: _header_metadata(
        p, "/metadata/instance?api-version=2021-02-01", {"Metadata": "true"}, "Azure instance metadata"
    ),
}

_RANK = {"exposed": 0, "closed": 1, "unrecognised": 2, "unreachable": 3}


def _probe_target(target: Target, timeout: float) -> Exposure:
    """The verdict on one target: each scheme in turn, the most telling kept."""
    best: Exposure | None = None
    for scheme in target.schemes:
        p = _Prober(target, scheme, timeout)
        try:
            got = _PROBES[target.service](p)
        finally:
            p.close()
        if best is None or _RANK[got.status] < _RANK[best.status]:
            best = got
        if got.status == "exposed":
            break
    assert best is not None
    return best


CLONE_NEWNET: Final = 0x40000000


def enter_netns(path: str) -> None:
    """Move the calling thread into the network namespace of `path` (``/proc/PID/ns/net``)."""
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        raise StockadeError(f"cannot open the network namespace {path}: {e.strerror}") from None
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise StockadeError(f"cannot enter the network namespace {path}: {os.strerror(err)}")
    finally:
        os.close(fd)


def _check_netns(path: str) -> None:
    """Enter `path` once in a thread of its own, so that a namespace that cannot be entered is
    an error before anything is probed (the caller's thread stays where it is)."""
    failed: list[StockadeError] = []

    def attempt() -> None:
        try:
            enter_netns(path)
        except StockadeError as e:
            failed.append(e)

    t = threading.Thread(target=attempt)
    t.start()
    t.join()
    if failed:
        raise failed[0]


def probe(
    addresses: Sequence[str], timeout: float = 2.0, workers: int = 16, netns: str | None = None
) -> list[Exposure]:
    """Probe exactly `addresses` (see :func:`parse_address`), concurrently, from the network
    namespace `netns` (None: this process's); results in the order of the addresses and their
    services."""
    targets = [t for a in addresses for t in parse_address(a)]
    if not targets:
        return []
    if netns is not None:
        _check_netns(netns)
    init = (lambda: enter_netns(netns)) if netns is not None else None
    with ThreadPoolExecutor(max_workers=min(workers, len(targets)), initializer=init) as pool:
        return list(pool.map(lambda t: _probe_target(t, timeout), targets))
