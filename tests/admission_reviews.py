"""AdmissionReview v1 requests as kube-apiserver sends them, and a client that sends them as it
does: POST ``/validate?timeout=10s`` over TLS verifying the caBundle and the Service's DNS name
(``stockade-admission.stockade.svc``) while connecting to a loopback port, ``Content-Type`` and
``Accept: application/json``, a client timeout, one kept-alive connection.

The bodies follow the Kubernetes documentation ("Dynamic Admission Control": the request fields
``uid``, ``kind``, ``resource``, ``subResource``, ``requestKind``, ``requestResource``, ``name``,
``namespace``, ``operation``, ``userInfo``, ``object``, ``oldObject``, ``options``, ``dryRun``).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import uuid
from typing import Any

SERVICE_NAME = "stockade-admission.stockade.svc"
RESOURCES = {
    "Pod": ("", "v1", "pods"),
    "Deployment": ("apps", "v1", "deployments"),
    "CronJob": ("batch", "v1", "cronjobs"),
    "PodExecOptions": ("", "v1", "pods"),
}
OPTIONS = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}


def pod(
    name: str = "web",
    image: str = "registry.example.com/team/web:1.0",
    *,
    namespace: str = "prod",
    privileged: bool = False,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Pod of one container."""
    sc: dict[str, Any] = {"allowPrivilegeEscalation": False, "runAsNonRoot": True}
    if privileged:
        sc = {"privileged": True}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": name}},
        "spec": {"containers": [{"name": "app", "image": image, "securityContext": sc}]},
    }


def deployment(spec: dict[str, Any], name: str = "api", namespace: str = "prod") -> dict[str, Any]:
    """A Deployment whose pod template has `spec`."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "generation": 2},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
        },
    }


def cronjob(spec: dict[str, Any], name: str = "nightly", namespace: str = "prod") -> dict[str, Any]:
    """A CronJob whose job's pod template has `spec`."""
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "schedule": "0 3 * * *",
            "jobTemplate": {"spec": {"template": {"spec": {**spec, "restartPolicy": "OnFailure"}}}},
        },
    }


def review(
    obj: dict[str, Any] | None,
    operation: str = "CREATE",
    *,
    old: dict[str, Any] | None = None,
    dry_run: bool = False,
    kind: str | None = None,
    namespace: str | None = None,
    name: str | None = None,
    sub_resource: str | None = None,
) -> dict[str, Any]:
    """The AdmissionReview kube-apiserver sends for `obj` (a fresh uid)."""
    the = obj if obj is not None else old
    assert the is not None or kind is not None
    k = kind or str((the or {})["kind"])
    group, version, resource = RESOURCES[k]
    meta = (the or {}).get("metadata", {})
    req: dict[str, Any] = {
        "uid": str(uuid.uuid4()),
        "kind": {"group": group, "version": version, "kind": k},
        "resource": {"group": group, "version": version, "resource": resource},
        "requestKind": {"group": group, "version": version, "kind": k},
        "requestResource": {"group": group, "version": version, "resource": resource},
        "name": name if name is not None else meta.get("name", ""),
        "namespace": namespace if namespace is not None else meta.get("namespace", "default"),
        "operation": operation,
        "userInfo": {
            "username": "admin",
            "uid": "014fbff9a07c",
            "groups": ["system:authenticated", "my-admin-group"],
            "extra": {"some-key": ["some-value1"]},
        },
        "object": obj,
        "oldObject": old,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": OPTIONS.get(operation, "PodExecOptions")},
        "dryRun": dry_run,
    }
    if sub_resource:
        req["subResource"] = sub_resource
        req["requestSubResource"] = sub_resource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}


def exec_connect(namespace: str = "prod", pod_name: str = "web") -> dict[str, Any]:
    """``kubectl exec``: CONNECT on pods/exec with a PodExecOptions object."""
    opts = {
        "kind": "PodExecOptions",
        "apiVersion": "v1",
        "stdin": True,
        "tty": True,
        "container": "app",
        "command": ["sh"],
    }
    return review(
        opts, "CONNECT", kind="PodExecOptions", namespace=namespace, name=pod_name, sub_resource="exec"
    )


class ApiServerClient:
    """One kept-alive TLS connection to the webhook, as kube-apiserver makes it."""

    def __init__(self, port: int, ca_pem: bytes, timeout: float = 10.0, host: str = "127.0.0.1") -> None:
        self.port, self.timeout, self.host = port, timeout, host
        self.ctx = ssl.create_default_context(cadata=ca_pem.decode())
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        self.conn: http.client.HTTPSConnection | None = None

    def _connection(self) -> http.client.HTTPSConnection:
        if self.conn is None:
            conn = http.client.HTTPSConnection(
                SERVICE_NAME, self.port, timeout=self.timeout, context=self.ctx
            )
            raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
            conn.sock = self.ctx.wrap_socket(raw, server_hostname=SERVICE_NAME)
            self.conn = conn
        return self.conn

    def post(
        self, body: bytes, path: str = "/validate?timeout=10s", content_type: str = "application/json"
    ) -> tuple[int, dict[str, Any]]:
        """(status, JSON body) of one POST."""
        conn = self._connection()
        conn.request(
            "POST", path, body=body, headers={"Content-Type": content_type, "Accept": "application/json"}
        )
        resp = conn.getresponse()
        data = resp.read()
        if resp.will_close:
            self.close()
        return resp.status, json.loads(data)

    def review(self, doc: dict[str, Any], path: str = "/validate?timeout=10s") -> dict[str, Any]:
        """The response of an AdmissionReview (checked to be one, for its uid)."""
        status, out = self.post(json.dumps(doc).encode(), path)
        assert status == 200, out
        assert out["apiVersion"] == "admission.k8s.io/v1" and out["kind"] == "AdmissionReview"
        assert out["response"]["uid"] == doc["request"]["uid"]
        return dict(out["response"])

    def get(self, path: str) -> tuple[int, bytes]:
        conn = self._connection()
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
