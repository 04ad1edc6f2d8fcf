"""`stockade k8s scan --cluster` against a local HTTPS server that answers as kube-apiserver does
(lists of kind PodList... whose items have no kind or apiVersion, paging with continue, Status
documents for 401 and 403), through the official client and a kubeconfig written here."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from helpers import free_port, in_parallel
from tlsgen import key_pem, make_cert, pem

STOCKADE = str(Path(sys.executable).parent / "stockade")
TOKEN = "scanner-token"
ONLY = ("--check", "privileged-container")


def _meta(name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {
        "name": name,
        "uid": f"0b6f{abs(hash(name)) % 10**8:08d}-8d2c-4b1e-9a57-3f1c2e4d5a6b",
        "resourceVersion": "48213",
        "creationTimestamp": "2026-11-30T09:12:44Z",
        "managedFields": [
            {
                "manager": "kubectl-client-side-apply",
                "operation": "Update",
                "apiVersion": "v1",
                "time": "2026-11-30T09:12:44Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}},
            }
        ],
        **extra,
    }
    if namespace:
        m["namespace"] = namespace
    return m


def _container(name: str, image: str, privileged: bool = False) -> dict[str, Any]:
    c: dict[str, Any] = {
        "name": name,
        "image": image,
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }
    if privileged:
        c["securityContext"] = {"privileged": True}
    return c


def _pod_spec(*containers: dict[str, Any]) -> dict[str, Any]:
    return {
        "containers": list(containers),
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default",
        "serviceAccount": "default",
        "securityContext": {},
        "schedulerName": "default-scheduler",
    }


OWNED_BY_RS = [
    {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c", "uid": "1", "controller": True}
]
OWNED_BY_DEP = [
    {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "2", "controller": True}
]

#: the items of each list path (namespaced paths answer the items of that namespace)
ITEMS: dict[str, list[dict[str, Any]]] = {
    "/api/v1/namespaces": [
        {"metadata": _meta("default"), "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}},
        {"metadata": _meta("shop"), "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}},
    ],
    "/api/v1/pods": [
        {
            "metadata": _meta("debug", "default"),
            "spec": _pod_spec(_container("debug", "busybox:1.36", privileged=True)),
            "status": {"phase": "Running", "podIP": "10.244.0.12"},
        },
        {  # a ReplicaSet's pod: checked through its Deployment, not again
            "metadata": _meta("web-7d4b9c-x2x8q", "shop", ownerReferences=OWNED_BY_RS),
            "spec": _pod_spec(_container("app", "nginx:1.27", privileged=True)),
            "status": {"phase": "Running"},
        },
    ],
    "/apis/apps/v1/replicasets": [
        {
            "metadata": _meta("web-7d4b9c", "shop", ownerReferences=OWNED_BY_DEP),
            "spec": {"replicas": 1, "template": {"spec": _pod_spec(_container("app", "nginx:1.27", True))}},
        }
    ],
    "/apis/apps/v1/deployments": [
        {
            "metadata": _meta("api", "shop"),
            "spec": {"replicas": 2, "template": {"spec": _pod_spec(_container("api", "api:2"))}},
        },
        {  # the second page
            "metadata": _meta("web", "shop"),
            "spec": {"replicas": 1, "template": {"spec": _pod_spec(_container("app", "nginx:1.27", True))}},
        },
    ],
    "/apis/rbac.authorization.k8s.io/v1/clusterroles": [
        {
            "metadata": _meta("viewer"),
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}],
        }
    ],
}
LIST_KINDS = {
    "namespaces": ("v1", "NamespaceList"),
    "pods": ("v1", "PodList"),
    "replicasets": ("apps/v1", "ReplicaSetList"),
    "deployments": ("apps/v1", "DeploymentList"),
    "clusterroles": ("rbac.authorization.k8s.io/v1", "ClusterRoleList"),
}


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


@dataclass
class FakeApiServer:
    """kube-apiserver's list endpoints over TLS on loopback, with a bearer token."""

    port: int
    ca_pem: bytes
    requests: list[str] = field(default_factory=list)


def _handler(server: FakeApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def answer(self, code: int, doc: dict[str, Any]) -> None:
            body = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            server.requests.append(self.path)
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.answer(401, _status(401, "Unauthorized", "Unauthorized"))
                return
            parts = url.path.split("/")
            plural = parts[-1]
            namespace = parts[parts.index("namespaces") + 1] if "namespaces" in parts[:-1] else None
            if plural == "cronjobs":
                self.answer(
                    403,
                    _status(
                        403,
                        "Forbidden",
                        'cronjobs.batch is forbidden: User "system:serviceaccount:ci:scanner" cannot list '
                        'resource "cronjobs" in API group "batch" at the cluster scope',
                    ),
                )
                return
            cluster_path = "/".join(
                p
                for i, p in enumerate(parts)
                if not (namespace and p in ("namespaces", namespace) and i < len(parts) - 1)
            )
            items = [
                i
                for i in ITEMS.get(cluster_path, [])
                if namespace is None or i["metadata"].get("namespace") == namespace
            ]
            group_version, list_kind = LIST_KINDS.get(plural, ("v1", plural.capitalize() + "List"))
            meta: dict[str, Any] = {"resourceVersion": "48300"}
            if plural == "deployments" and len(items) > 1:  # two pages
                if query.get("continue") == ["page2"]:
                    items = items[1:]
                else:
                    items, meta["continue"] = items[:1], "page2"
                    meta["remainingItemCount"] = 1
            self.answer(
                200, {"kind": list_kind, "apiVersion": group_version, "metadata": meta, "items": items}
            )

    return Handler


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeApiServer]:
    d = tmp_path_factory.mktemp("apiserver")
    ca, ca_key = make_cert("kubernetes-ca", 30, ca=True)
    leaf, leaf_key = make_cert("kube-apiserver", 30, issuer=(ca, ca_key), sans=("localhost",))
    (d / "tls.crt").write_bytes(pem(leaf) + pem(ca))
    (d / "tls.key").write_bytes(key_pem(leaf_key))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(d / "tls.crt"), str(d / "tls.key"))
    state = FakeApiServer(0, pem(ca))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    state.port = httpd.server_address[1]
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def kubeconfig(path: Path, port: int, ca_pem: bytes) -> Path:
    ca = base64.b64encode(ca_pem).decode()
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kind-test",
                "cluster": {"server": f"https://localhost:{port}", "certificate-authority-data": ca},
            },
        ],
        "users": [
            {"name": "scanner", "user": {"token": TOKEN}},
            {"name": "stranger", "user": {"token": "wrong"}},
        ],
        "contexts": [
            {"name": "test", "context": {"cluster": "kind-test", "user": "scanner"}},
            {"name": "bad", "context": {"cluster": "kind-test", "user": "stranger"}},
        ],
        "current-context": "test",
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def scan(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STOCKADE, "k8s", "scan", "--cluster", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_cluster_objects_are_scanned_once_each(apiserver: FakeApiServer, tmp_path: Path) -> None:
    cfg = kubeconfig(tmp_path / "config", apiserver.port, apiserver.ca_pem)
    apiserver.requests.clear()
    r = scan("-o", "json", *ONLY, env={"KUBECONFIG": str(cfg)})
    assert r.returncode == 0, r.stderr
    found = [json.loads(x) for x in r.stdout.splitlines()]
    assert sorted(
        (f["resource"]["kind"], f["resource"]["namespace"], f["resource"]["name"]) for f in found
    ) == [
        ("Deployment", "shop", "web"),  # from the second page
        ("Pod", "default", "debug"),
    ]  # the ReplicaSet and its pod are the Deployment's: not reported again
    assert {f["file"] for f in found} == {"cluster:test"} and all(f["line"] is None for f in found)
    (problem,) = [json.loads(x) for x in r.stderr.splitlines()]
    assert problem["file"] == "cluster:test"
    assert problem["error"].startswith(
        "/apis/batch/v1/cronjobs: not listed: 403 Forbidden: cronjobs.batch is forbidden"
    )
    assert "/apis/apps/v1/deployments?limit=500&continue=page2" in apiserver.requests
    assert not any("secrets" in p or "configmaps" in p for p in apiserver.requests)


def test_namespace_and_context(apiserver: FakeApiServer, tmp_path: Path) -> None:
    cfg = str(kubeconfig(tmp_path / "config", apiserver.port, apiserver.ca_pem))
    apiserver.requests.clear()
    r = scan("--kubeconfig", cfg, "--context", "test", "--namespace", "shop", "-o", "json", *ONLY)
    assert r.returncode == 0, r.stderr
    assert [json.loads(x)["resource"]["name"] for x in r.stdout.splitlines()] == ["web"]
    assert "/api/v1/namespaces/shop/pods?limit=500" in apiserver.requests
    assert not any("clusterroles" in p or p.startswith("/api/v1/namespaces?") for p in apiserver.requests)


def test_refused_unreachable_and_unknown_context_are_clear_errors(
    apiserver: FakeApiServer, tmp_path: Path
) -> None:
    cfg = str(kubeconfig(tmp_path / "config", apiserver.port, apiserver.ca_pem))
    closed = str(kubeconfig(tmp_path / "closed", free_port(), apiserver.ca_pem))
    other_ca = str(
        kubeconfig(tmp_path / "other-ca", apiserver.port, pem(make_cert("another-ca", 30, ca=True)[0]))
    )
    bad, refused, untrusted, no_context, missing = in_parallel(
        [
            partial(scan, "--kubeconfig", cfg, "--context", "bad"),
            partial(scan, "--kubeconfig", closed),
            partial(scan, "--kubeconfig", other_ca),
            partial(scan, "--kubeconfig", cfg, "--context", "prod"),
            partial(scan, "--kubeconfig", str(tmp_path / "missing")),
        ]
    )
    for r in (bad, refused, untrusted, no_context, missing):
        assert r.returncode == 1 and r.stdout == "" and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("stockade: error: "), r.stderr
    assert bad.stderr.startswith(
        f"stockade: error: {cfg}: https://localhost:{apiserver.port}: 401 Unauthorized: "
        "the API server refused the credentials of context 'bad'"
    )
    assert (
        f"cannot reach the API server https://localhost:{closed.split(':')[-1] if False else ''}"
        in refused.stderr
    )
    assert "Connection refused" in refused.stderr, refused.stderr
    assert (
        "cannot reach the API server" in untrusted.stderr and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
    )
    assert f"stockade: error: {cfg}: kubeconfig has no context 'prod'" in no_context.stderr
    assert f"{tmp_path / 'missing'}" in missing.stderr, missing.stderr
