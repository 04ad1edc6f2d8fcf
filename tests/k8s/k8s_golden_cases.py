"""Golden cases for Falco's Kubernetes audit rules (k8s_audit_rules.yaml).

Every rule of the file has a case: audit.k8s.io/v1 Events shaped as a real API server writes them,
each with the exact set of rules that must fire on it (the target rule for the events that must
fire it, and not for its near misses). Rules that the file ships switched off (through a macro the
user is meant to override) are tested with the override a Falco user would write.

The events are also stored as JSON Lines in tests/data/k8s_audit/golden/<slug>.jsonl (one file per
rule), so they double as replay examples (`stockade replay --source k8s_audit FILE`). Regenerate
them after changing a case:

    .venv/bin/python tests/k8s/k8s_golden_cases.py
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "data" / "k8s_audit" / "golden"

ADMIN = ("kubernetes-admin", ["kubeadm:cluster-admins", "system:authenticated"])
KUBECTL = "kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46"
ADMIN_IP = "10.0.12.7"
_T0 = datetime(2026, 11, 20, 9, 30, 0, tzinfo=UTC)
_NS_AUDIT = uuid.UUID("6f1f5c1e-1d0a-4a59-9a57-3c1f4a2b7d10")

_ALLOW_ADMIN = (
    'RBAC: allowed by ClusterRoleBinding "kubeadm:cluster-admins" of ClusterRole "cluster-admin" '
    'to Group "kubeadm:cluster-admins"'
)


@dataclass
class Line:
    event: dict[str, Any]
    #: exactly the rules that must fire on this event
    fires: set[str]
    why: str


@dataclass
class Case:
    rule: str
    slug: str
    lines: list[Line]
    #: a rules file loaded after k8s_audit_rules.yaml (how a Falco user enables a rule)
    overrides: str | None = None
    #: substrings the target rule's output must contain, for the first line that fires it
    output_has: list[str] = field(default_factory=list)
    #: the same for list fields, which Falco prints as "(a,b)"
    list_output_has: list[str] = field(default_factory=list)


class _Clock:
    def __init__(self) -> None:
        self.n = 0

    def tick(self) -> tuple[str, str]:
        self.n += 1
        t = _T0 + timedelta(seconds=7 * self.n, microseconds=137 * self.n)
        done = t + timedelta(microseconds=4211 + 97 * self.n)
        return _ts(t), _ts(done)


def _ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_clock = _Clock()

_PLURAL_KIND = {
    "pods": "Pod",
    "services": "Service",
    "configmaps": "ConfigMap",
    "secrets": "Secret",
    "namespaces": "Namespace",
    "serviceaccounts": "ServiceAccount",
    "deployments": "Deployment",
    "roles": "Role",
    "clusterroles": "ClusterRole",
    "rolebindings": "RoleBinding",
    "clusterrolebindings": "ClusterRoleBinding",
    "ingresses": "Ingress",
    "nodes": "Node",
}
_GROUP_VERSION = {
    "deployments": ("apps", "v1"),
    "roles": ("rbac.authorization.k8s.io", "v1"),
    "clusterroles": ("rbac.authorization.k8s.io", "v1"),
    "rolebindings": ("rbac.authorization.k8s.io", "v1"),
    "clusterrolebindings": ("rbac.authorization.k8s.io", "v1"),
    "ingresses": ("networking.k8s.io", "v1"),
}
_REASONS = {
    403: ("Forbidden", "forbidden"),
    404: ("NotFound", "not found"),
    409: ("AlreadyExists", "already exists"),
}


def _uri(resource: str, ns: str | None, name: str | None, sub: str | None) -> str:
    group, version = _GROUP_VERSION.get(resource, ("", "v1"))
    base = f"/apis/{group}/{version}" if group else "/api/v1"
    if ns is not None and resource != "namespaces":
        base += f"/namespaces/{ns}"
    base += f"/{resource}"
    if name:
        base += f"/{name}"
    if sub:
        base += f"/{sub}"
    return base


def audit(
    verb: str,
    resource: str | None,
    *,
    ns: str | None = None,
    name: str | None = None,
    sub: str | None = None,
    uri: str | None = None,
    query: str | None = None,
    user: tuple[str, list[str]] = ADMIN,
    code: int = 200,
    stage: str = "ResponseComplete",
    request: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    reason: str | None = None,
    agent: str = KUBECTL,
    ip: str = ADMIN_IP,
    seq: str,
    name_in_uri: bool = True,
) -> dict[str, Any]:
    """One audit.k8s.io/v1 Event, keys in the order the API server writes them. For a create, the
    name is not in the URI but the API server fills objectRef.name from the request object."""
    received, done = _clock.tick()
    if uri is None:
        assert resource is not None
        uri = _uri(resource, ns, name if name_in_uri else None, sub)
        if query:
            uri += f"?{query}"
    ev: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse" if request is not None or response is not None else "Metadata",
        "auditID": str(uuid.uuid5(_NS_AUDIT, seq)),
        "stage": stage,
        "requestURI": uri,
        "verb": verb,
        "user": {"username": user[0], "groups": list(user[1])},
        "sourceIPs": [ip],
        "userAgent": agent,
    }
    if resource is not None:
        group, version = _GROUP_VERSION.get(resource, ("", "v1"))
        ref: dict[str, Any] = {"resource": resource}
        if ns is not None and resource != "namespaces":
            ref["namespace"] = ns
        if name is not None:
            ref["name"] = name
        if group:
            ref["apiGroup"] = group
        ref["apiVersion"] = version
        if sub is not None:
            ref["subresource"] = sub
        ev["objectRef"] = ref
    if code < 400:
        ev["responseStatus"] = {"metadata": {}, "code": code}
    else:
        rsn, text = _REASONS[code]
        kind = resource or ""
        if code == 403:
            what = f'{kind} "{name}"' if name else kind
            message = f'{what} is forbidden: User "{user[0]}" cannot {verb} resource "{kind}"'
            message += f' in API group "{_GROUP_VERSION.get(kind, ("", ""))[0]}"'
            message += f' in the namespace "{ns}"' if ns else " at the cluster scope"
        else:
            message = f'{kind} "{name}" {text}'
        ev["responseStatus"] = {
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": rsn,
            "details": {"name": name, "kind": kind} if name else {"kind": kind},
            "code": code,
        }
    if request is not None:
        ev["requestObject"] = request
    if response is not None:
        ev["responseObject"] = response
    ev["requestReceivedTimestamp"] = received
    ev["stageTimestamp"] = done
    if code == 403:
        ev["annotations"] = {"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""}
    else:
        ev["annotations"] = {
            "authorization.k8s.io/decision": "allow",
            "authorization.k8s.io/reason": reason if reason is not None else _ALLOW_ADMIN,
        }
    return ev


# ---------------------------------------------------------------------------------------------
# request objects
# ---------------------------------------------------------------------------------------------


def container(
    name: str, image: str, *, sc: dict[str, Any] | None = None, ports: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "image": image}
    if ports:
        c["ports"] = ports
    c["resources"] = {}
    c["terminationMessagePath"] = "/dev/termination-log"
    c["terminationMessagePolicy"] = "File"
    c["imagePullPolicy"] = "IfNotPresent"
    if sc is not None:
        c["securityContext"] = sc
    return c


def pod(
    name: str,
    ns: str,
    containers: list[dict[str, Any]],
    *,
    init: list[dict[str, Any]] | None = None,
    volumes: list[dict[str, Any]] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    s: dict[str, Any] = {}
    if volumes:
        s["volumes"] = volumes
    if init:
        s["initContainers"] = init
    s["containers"] = containers
    s["restartPolicy"] = "Always"
    s["terminationGracePeriodSeconds"] = 30
    s["dnsPolicy"] = "ClusterFirst"
    s.update(spec)
    s["securityContext"] = s.get("securityContext", {})
    s["schedulerName"] = "default-scheduler"
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": None, "labels": {"app": name}},
        "spec": s,
        "status": {},
    }


def created(obj: dict[str, Any], uid_seed: str) -> dict[str, Any]:
    """The response object the API server returns for a created `obj`."""
    out = copy.deepcopy(obj)
    md = out.setdefault("metadata", {})
    md["uid"] = str(uuid.uuid5(_NS_AUDIT, "uid-" + uid_seed))
    md["resourceVersion"] = str(480000 + len(uid_seed) * 17)
    md["creationTimestamp"] = "2026-11-20T09:30:00Z"
    if out.get("kind") == "Pod":
        out["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    return out


def create_pod(seq: str, p: dict[str, Any], *, user: tuple[str, list[str]] = ADMIN) -> dict[str, Any]:
    md = p["metadata"]
    return audit(
        "create",
        "pods",
        ns=md["namespace"],
        name=md["name"],
        name_in_uri=False,
        query="fieldManager=kubectl-client-side-apply&fieldValidation=Strict",
        request=p,
        response=created(p, seq),
        code=201,
        user=user,
        seq=seq,
    )


def obj(kind: str, name: str, ns: str | None = None, api: str = "v1", **body: Any) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name}
    if ns is not None:
        md["namespace"] = ns
    md["creationTimestamp"] = None
    return {"kind": kind, "apiVersion": api, "metadata": md, **body}


def create(
    resource: str,
    name: str,
    ns: str | None,
    body: dict[str, Any],
    *,
    seq: str,
    code: int = 201,
    user: tuple[str, list[str]] = ADMIN,
) -> dict[str, Any]:
    return audit(
        "create",
        resource,
        ns=ns,
        name=name,
        name_in_uri=False,
        query="fieldManager=kubectl-create&fieldValidation=Strict",
        request=body,
        response=created(body, seq) if code < 400 else None,
        code=code,
        user=user,
        seq=seq,
    )


def delete(
    resource: str,
    name: str,
    ns: str | None,
    *,
    seq: str,
    code: int = 200,
    user: tuple[str, list[str]] = ADMIN,
    verb: str = "delete",
) -> dict[str, Any]:
    return audit(
        verb,
        resource,
        ns=ns,
        name=None if verb == "deletecollection" else name,
        request={
            "kind": "DeleteOptions",
            "apiVersion": "meta.k8s.io/__internal",
            "propagationPolicy": "Background",
        },
        response={"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
        if code < 400
        else None,
        code=code,
        user=user,
        seq=seq,
    )


def _kind_api(resource: str) -> tuple[str, str]:
    group, version = _GROUP_VERSION.get(resource, ("", "v1"))
    return _PLURAL_KIND[resource], f"{group}/{version}" if group else version


def simple(resource: str, name: str, ns: str | None, **body: Any) -> dict[str, Any]:
    kind, api = _kind_api(resource)
    return obj(kind, name, ns, api, **body)


def rules_obj(resource: str, name: str, ns: str | None, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return simple(resource, name, ns, rules=rules)


def binding(resource: str, name: str, ns: str | None, role_kind: str, role: str) -> dict[str, Any]:
    return simple(
        resource,
        name,
        ns,
        subjects=[{"kind": "ServiceAccount", "name": "ci-bot", "namespace": "ci"}],
        roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
    )


SA_USER = ("system:serviceaccount:ci:deployer", ["system:serviceaccounts", "system:serviceaccounts:ci"])
NGINX = "docker.io/library/nginx:1.27.2"


# ---------------------------------------------------------------------------------------------
# the cases
# ---------------------------------------------------------------------------------------------


def _cases() -> list[Case]:
    cases: list[Case] = []

    def add(
        rule: str,
        slug: str,
        *lines: Line,
        overrides: str | None = None,
        output: list[str] | None = None,
        list_output: list[str] | None = None,
    ) -> None:
        cases.append(Case(rule, slug, list(lines), overrides, output or [], list_output or []))

    # --- who --------------------------------------------------------------------------------------
    add(
        "Disallowed K8s User",
        "disallowed-user",
        Line(
            audit(
                "get",
                "pods",
                ns="payments",
                name="api-5c9f7",
                user=("mallory@example.com", ["oidc:contractors", "system:authenticated"]),
                reason='RBAC: allowed by RoleBinding "contractors/payments" of ClusterRole "view" to Group '
                '"oidc:contractors"',
                seq="disallowed-user-1",
            ),
            {"Disallowed K8s User"},
            "an OIDC user outside the allowed list",
        ),
        Line(
            audit(
                "list",
                "pods",
                ns="payments",
                user=(
                    "system:serviceaccount:monitoring:prometheus",
                    ["system:serviceaccounts", "system:serviceaccounts:monitoring"],
                ),
                reason='RBAC: allowed by ClusterRoleBinding "prometheus" of ClusterRole "prometheus" to '
                'ServiceAccount "prometheus/monitoring"',
                agent="prometheus/v2.54.1",
                seq="disallowed-user-2",
            ),
            set(),
            "a system: user",
        ),
        Line(
            audit(
                "get", "pods", ns="payments", name="api-5c9f7", user=("kops", ["system:masters"]), seq="du-3"
            ),
            set(),
            "a user in allowed_k8s_users",
        ),
        output=["user=mallory@example.com", "target=api-5c9f7/pods", "verb=get", "resp=200"],
    )

    # --- pods ----------------------------------------------------------------------------------------
    add(
        "Create Privileged Pod",
        "privileged-pod",
        Line(
            create_pod(
                "priv-1", pod("debug", "default", [container("debug", NGINX, sc={"privileged": True})])
            ),
            {"Create Privileged Pod"},
            "a privileged container",
        ),
        Line(
            create_pod(
                "priv-2",
                pod(
                    "web",
                    "default",
                    [container("web", NGINX)],
                    init=[container("setup", "docker.io/library/busybox:1.36", sc={"privileged": True})],
                ),
            ),
            {"Create Privileged Pod"},
            "a privileged init container",
        ),
        Line(
            create_pod(
                "priv-3",
                pod(
                    "falco-x7k2p",
                    "default",
                    [container("falco", "docker.io/falcosecurity/falco:0.39.2", sc={"privileged": True})],
                ),
            ),
            set(),
            "privileged, but an allowed image (k8s_audit_privileged_images)",
        ),
        Line(
            create_pod("priv-4", pod("web", "default", [container("web", NGINX, sc={"privileged": False})])),
            set(),
            "privileged: false",
        ),
        output=["pod=debug", "init_images=<NA>"],
        list_output=[f"images=({NGINX})"],
    )
    add(
        "Create Sensitive Mount Pod",
        "sensitive-mount-pod",
        Line(
            create_pod(
                "mount-1",
                pod(
                    "builder",
                    "ci",
                    [container("builder", "docker.io/library/docker:27.3-cli")],
                    volumes=[
                        {"name": "dockersock", "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}}
                    ],
                ),
            ),
            {"Create Sensitive Mount Pod"},
            "mounts the docker socket",
        ),
        Line(
            create_pod(
                "mount-2",
                pod(
                    "node-shell",
                    "default",
                    [container("shell", NGINX)],
                    volumes=[
                        {"name": "cache", "emptyDir": {}},
                        {"name": "etc", "hostPath": {"path": "/etc", "type": ""}},
                    ],
                ),
            ),
            {"Create Sensitive Mount Pod"},
            "mounts /etc (second volume)",
        ),
        Line(
            create_pod(
                "mount-3",
                pod(
                    "logs",
                    "default",
                    [container("fluent-bit", "cr.fluentbit.io/fluent/fluent-bit:3.1.9")],
                    volumes=[{"name": "varlog", "hostPath": {"path": "/var/log", "type": ""}}],
                ),
            ),
            set(),
            "a hostPath that is not sensitive",
        ),
        Line(
            create_pod(
                "mount-4",
                pod(
                    "node-exporter-2kx9d",
                    "monitoring",
                    [container("node-exporter", "prom/node-exporter:v1.8.2")],
                    volumes=[{"name": "proc", "hostPath": {"path": "/proc", "type": ""}}],
                ),
            ),
            set(),
            "mounts /proc, but an allowed image",
        ),
        output=["pod=builder", "ns=ci", '"path":"/var/run/docker.sock"'],
    )
    add(
        "Create HostNetwork Pod",
        "hostnetwork-pod",
        Line(
            create_pod("hn-1", pod("sniffer", "default", [container("sniffer", NGINX)], hostNetwork=True)),
            {"Create HostNetwork Pod"},
            "hostNetwork: true",
        ),
        Line(
            create_pod(
                "hn-2",
                pod(
                    "kube-proxy-8xk2l",
                    "default",
                    [container("kube-proxy", "gke.gcr.io/kube-proxy:v1.30.5-gke.1014001")],
                    hostNetwork=True,
                ),
            ),
            set(),
            "hostNetwork, but an allowed image",
        ),
        Line(
            create_pod("hn-3", pod("web", "default", [container("web", NGINX)], hostNetwork=False)),
            set(),
            "hostNetwork: false",
        ),
    )
    add(
        "Create HostPid Pod",
        "hostpid-pod",
        Line(
            create_pod("hp-1", pod("nsenter", "default", [container("nsenter", NGINX)], hostPID=True)),
            {"Create HostPid Pod"},
            "hostPID: true",
        ),
        Line(
            create_pod("hp-2", pod("web", "default", [container("web", NGINX)])),
            set(),
            "no hostPID",
        ),
    )
    add(
        "Create HostIPC Pod",
        "hostipc-pod",
        Line(
            create_pod("hi-1", pod("shm", "default", [container("shm", NGINX)], hostIPC=True)),
            {"Create HostIPC Pod"},
            "hostIPC: true",
        ),
        Line(
            create_pod("hi-2", pod("shm", "default", [container("shm", NGINX)], hostIPC=False)),
            set(),
            "hostIPC: false",
        ),
    )
    add(
        "Pod Created in Kube Namespace",
        "kube-namespace-pod",
        Line(
            create_pod("kn-1", pod("helper", "kube-system", [container("helper", NGINX)])),
            {"Pod Created in Kube Namespace"},
            "nginx in kube-system",
        ),
        Line(
            create_pod(
                "kn-2",
                pod(
                    "kube-apiserver-cp1",
                    "kube-system",
                    [container("a", "registry.k8s.io/kube-apiserver:v1.31.2")],
                ),
            ),
            set(),
            "an allowed image in kube-system",
        ),
        Line(
            create_pod("kn-3", pod("helper", "default", [container("helper", NGINX)])),
            set(),
            "the same pod in default",
        ),
    )

    # --- pod subresources ------------------------------------------------------------------------------
    exec_q = "command=sh&command=-c&command=id&container=web&stdin=true&stdout=true&tty=true"
    add(
        "Attach/Exec Pod",
        "exec-pod",
        Line(
            audit(
                "create",
                "pods",
                ns="default",
                name="web-7d4b9c8f6-x2x7k",
                sub="exec",
                query=exec_q,
                stage="ResponseStarted",
                code=101,
                seq="exec-1",
            ),
            {"Attach/Exec Pod"},
            "kubectl exec (SPDY: create), response started",
        ),
        Line(
            audit(
                "get",
                "pods",
                ns="default",
                name="web-7d4b9c8f6-x2x7k",
                sub="exec",
                query="command=%2Fbin%2Fbash&container=web&stdin=true&stdout=true&tty=true",
                stage="ResponseStarted",
                code=101,
                seq="exec-2",
            ),
            {"Attach/Exec Pod"},
            "kubectl exec over WebSocket (get)",
        ),
        Line(
            audit(
                "create",
                "pods",
                ns="default",
                name="web-7d4b9c8f6-x2x7k",
                sub="attach",
                query="container=web&stdin=true&stdout=true&tty=true",
                stage="ResponseStarted",
                code=101,
                seq="exec-3",
            ),
            {"Attach/Exec Pod"},
            "kubectl attach",
        ),
        Line(
            audit(
                "create",
                "pods",
                ns="default",
                name="web-7d4b9c8f6-x2x7k",
                sub="exec",
                query=exec_q,
                stage="ResponseComplete",
                code=101,
                seq="exec-4",
            ),
            set(),
            "the same exec at ResponseComplete (the rule looks at ResponseStarted)",
        ),
        Line(
            audit(
                "get",
                "pods",
                ns="default",
                name="web-7d4b9c8f6-x2x7k",
                sub="log",
                query="container=web&follow=true",
                stage="ResponseStarted",
                seq="exec-5",
            ),
            set(),
            "kubectl logs",
        ),
        output=["pod=web-7d4b9c8f6-x2x7k", "action=exec", "command=sh"],
    )
    add(
        "port-forward",
        "port-forward",
        Line(
            audit(
                "create",
                "pods",
                ns="default",
                name="db-0",
                sub="portforward",
                stage="ResponseStarted",
                code=101,
                seq="pf-1",
            ),
            {"port-forward"},
            "kubectl port-forward",
        ),
        Line(
            audit(
                "get",
                "pods",
                ns="default",
                name="db-0",
                sub="log",
                query="container=postgres",
                seq="pf-2",
            ),
            set(),
            "another subresource",
        ),
    )
    debug_req = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "web-7d4b9c8f6-x2x7k", "namespace": "default"},
        "ephemeralContainers": [
            {
                "name": "debugger-7lq2x",
                "image": "docker.io/library/busybox:1.36",
                "stdin": True,
                "tty": True,
                "targetContainerName": "web",
            }
        ],
    }
    add(
        "EphemeralContainers Created",
        "ephemeral-containers",
        Line(
            audit(
                "patch",
                "pods",
                ns="default",
                name="web-7d4b9c8f6-x2x7k",
                sub="ephemeralcontainers",
                request=debug_req,
                seq="eph-1",
            ),
            {"EphemeralContainers Created"},
            "kubectl debug adds an ephemeral container",
        ),
        Line(
            audit(
                "patch",
                "pods",
                ns="default",
                name="web-7d4b9c8f6-x2x7k",
                sub="status",
                user=("system:node:worker-1", ["system:nodes", "system:authenticated"]),
                agent="kubelet/v1.31.2 (linux/amd64) kubernetes/5864a46",
                seq="eph-2",
            ),
            set(),
            "a status patch",
        ),
        output=[
            "ephemeral_container_name=debugger-7lq2x",
            "ephemeral_container_image=docker.io/library/busybox:1.36",
        ],
    )

    # --- services, configmaps ------------------------------------------------------------------------
    def svc(name: str, type_: str) -> dict[str, Any]:
        ports: list[dict[str, Any]] = [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}]
        return simple(
            "services", name, "default", spec={"ports": ports, "selector": {"app": name}, "type": type_}
        )

    add(
        "Create NodePort Service",
        "nodeport-service",
        Line(
            create("services", "web", "default", svc("web", "NodePort"), seq="np-1"),
            {"Create NodePort Service", "K8s Service Created"},
            "type NodePort",
        ),
        Line(
            create("services", "web", "default", svc("web", "ClusterIP"), seq="np-2"),
            {"K8s Service Created"},
            "type ClusterIP",
        ),
        output=["service=web"],
        list_output=['ports=({"name":"http","protocol":"TCP","port":80,"targetPort":8080})'],
    )

    def cm(name: str, data: dict[str, str]) -> dict[str, Any]:
        return simple("configmaps", name, "default", data=data)

    creds = {"app.properties": "db.host=postgres\ndb.user=shop\ndb.password=Sup3rS3cret\n"}
    aws = {"AWS_REGION": "eu-west-1", "credentials": "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"}
    add(
        "Create/Modify Configmap With Private Credentials",
        "configmap-credentials",
        Line(
            audit(
                "update",
                "configmaps",
                ns="default",
                name="backup",
                request=cm("backup", aws),
                response=created(cm("backup", aws), "cm-1"),
                seq="cmc-1",
            ),
            {"Create/Modify Configmap With Private Credentials"},
            "an AWS key in an updated configmap",
        ),
        Line(
            create("configmaps", "shop", "default", cm("shop", creds), seq="cmc-2"),
            {"Create/Modify Configmap With Private Credentials", "K8s ConfigMap Created"},
            "a password in a new configmap",
        ),
        Line(
            audit(
                "update",
                "configmaps",
                ns="default",
                name="shop",
                request=cm("shop", {"LOG_LEVEL": "debug"}),
                response=created(cm("shop", {"LOG_LEVEL": "debug"}), "cm-3"),
                seq="cmc-3",
            ),
            set(),
            "no credentials",
        ),
        Line(
            audit(
                "get",
                "configmaps",
                ns="default",
                name="shop",
                response=created(cm("shop", creds), "cm-4"),
                seq="cmc-4",
            ),
            set(),
            "reading it is not modifying it",
        ),
        output=["verb=update", "configmap=backup"],
    )

    # --- anonymous ---------------------------------------------------------------------------------------
    anon = ("system:anonymous", ["system:unauthenticated"])
    pub = (
        'RBAC: allowed by ClusterRoleBinding "system:public-info-viewer" of ClusterRole '
        '"system:public-info-viewer" to Group "system:unauthenticated"'
    )
    add(
        "Anonymous Request Allowed",
        "anonymous-allowed",
        Line(
            audit(
                "get",
                None,
                uri="/version",
                user=anon,
                reason=pub,
                agent="curl/8.5.0",
                ip="203.0.113.9",
                seq="an-1",
            ),
            {"Anonymous Request Allowed"},
            "anonymous /version",
        ),
        Line(
            audit(
                "list",
                "secrets",
                ns="kube-system",
                user=anon,
                reason='RBAC: allowed by ClusterRoleBinding "oops" of ClusterRole "cluster-admin" to User '
                '"system:anonymous"',
                agent="curl/8.5.0",
                ip="203.0.113.9",
                seq="an-2",
            ),
            {"Anonymous Request Allowed"},
            "anonymous list of secrets allowed by a bad binding",
        ),
        Line(
            audit(
                "get",
                None,
                uri="/healthz",
                user=anon,
                reason=pub,
                agent="kube-probe/1.31",
                ip="10.0.0.1",
                seq="an-3",
            ),
            set(),
            "the health endpoint",
        ),
        Line(
            audit("get", None, uri="/readyz?verbose", user=anon, reason=pub, agent="curl/8.5.0", seq="an-4"),
            set(),
            "the readiness endpoint with a query",
        ),
        Line(
            audit("list", "pods", ns="default", user=anon, code=403, agent="curl/8.5.0", seq="an-5"),
            set(),
            "anonymous, but forbidden",
        ),
        output=["user=system:anonymous", "uri=/version", "reason=RBAC: allowed by ClusterRoleBinding"],
    )

    # --- namespaces, service accounts --------------------------------------------------------------------
    add(
        "Create Disallowed Namespace",
        "disallowed-namespace",
        Line(
            create("namespaces", "xmrig", None, simple("namespaces", "xmrig", None), seq="dn-1"),
            {"Create Disallowed Namespace", "K8s Namespace Created"},
            "a namespace not in allowed_namespaces",
        ),
        Line(
            create(
                "namespaces",
                "kube-public",
                None,
                simple("namespaces", "kube-public", None),
                seq="dn-2",
                code=409,
            ),
            set(),
            "an allowed namespace (already exists)",
        ),
    )
    add(
        "Service Account Created in Kube Namespace",
        "kube-namespace-serviceaccount",
        Line(
            create(
                "serviceaccounts",
                "kube-helper",
                "kube-system",
                simple("serviceaccounts", "kube-helper", "kube-system"),
                seq="sak-1",
            ),
            {"Service Account Created in Kube Namespace", "K8s Serviceaccount Created"},
            "an unknown service account in kube-system",
        ),
        Line(
            create(
                "serviceaccounts",
                "coredns",
                "kube-system",
                simple("serviceaccounts", "coredns", "kube-system"),
                seq="sak-2",
            ),
            {"K8s Serviceaccount Created"},
            "a known service account (known_sa_list)",
        ),
        Line(
            create(
                "serviceaccounts",
                "kube-helper",
                "kube-public",
                simple("serviceaccounts", "kube-helper", "kube-public"),
                seq="sak-3",
                code=403,
                user=SA_USER,
            ),
            set(),
            "not successful",
        ),
    )

    # --- RBAC -------------------------------------------------------------------------------------------
    read_pods = [{"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods"]}]
    add(
        "System ClusterRole Modified/Deleted",
        "system-clusterrole",
        Line(
            audit(
                "patch",
                "clusterroles",
                name="system:node",
                request={"rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
                seq="scr-1",
            ),
            {"System ClusterRole Modified/Deleted"},
            "patching system:node",
        ),
        Line(
            delete("clusterroles", "system:aggregate-to-edit", None, seq="scr-2"),
            {"System ClusterRole Modified/Deleted", "K8s ClusterRole Deleted"},
            "deleting a system: cluster role",
        ),
        Line(
            audit("patch", "clusterroles", name="system:coredns", request={"rules": read_pods}, seq="scr-3"),
            set(),
            "system:coredns is expected to change",
        ),
        Line(
            audit("get", "clusterroles", name="system:node", seq="scr-4"),
            set(),
            "reading it",
        ),
    )
    add(
        "Attach to cluster-admin Role",
        "cluster-admin-binding",
        Line(
            create(
                "clusterrolebindings",
                "ci-bot-admin",
                None,
                binding("clusterrolebindings", "ci-bot-admin", None, "ClusterRole", "cluster-admin"),
                seq="ca-1",
            ),
            {"Attach to cluster-admin Role", "K8s ClusterRoleBinding Created"},
            "binding to cluster-admin",
        ),
        Line(
            create(
                "clusterrolebindings",
                "ci-bot-view",
                None,
                binding("clusterrolebindings", "ci-bot-view", None, "ClusterRole", "view"),
                seq="ca-2",
            ),
            {"K8s ClusterRoleBinding Created"},
            "binding to view",
        ),
        output=["user=kubernetes-admin"],
        list_output=['subject=({"kind":"ServiceAccount","name":"ci-bot","namespace":"ci"})'],
    )
    add(
        "ClusterRole With Wildcard Created",
        "wildcard-clusterrole",
        Line(
            create(
                "clusterroles",
                "reader-all",
                None,
                rules_obj(
                    "clusterroles",
                    "reader-all",
                    None,
                    [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["*"]}],
                ),
                seq="wc-1",
            ),
            {"ClusterRole With Wildcard Created", "K8s ClusterRole Created"},
            "resources *",
        ),
        Line(
            create(
                "clusterroles",
                "do-all",
                None,
                rules_obj(
                    "clusterroles",
                    "do-all",
                    None,
                    [
                        {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]},
                        {"verbs": ["*"], "apiGroups": ["apps"], "resources": ["deployments"]},
                    ],
                ),
                seq="wc-2",
            ),
            {"ClusterRole With Wildcard Created", "K8s ClusterRole Created"},
            "verbs * in the second rule",
        ),
        Line(
            create(
                "clusterroles",
                "pod-reader",
                None,
                rules_obj("clusterroles", "pod-reader", None, read_pods),
                seq="wc-3",
            ),
            {"K8s ClusterRole Created"},
            "no wildcard",
        ),
        output=["role=reader-all"],
        list_output=['rules=({"verbs":["get","list"],"apiGroups":[""],"resources":["*"]})'],
    )
    write_cm = [{"verbs": ["get", "update"], "apiGroups": [""], "resources": ["configmaps"]}]
    add(
        "ClusterRole With Write Privileges Created",
        "write-role",
        Line(
            create(
                "roles",
                "cm-editor",
                "default",
                rules_obj("roles", "cm-editor", "default", write_cm),
                seq="wr-1",
            ),
            {"ClusterRole With Write Privileges Created", "K8s Role Created"},
            "update on configmaps",
        ),
        Line(
            create(
                "roles",
                "pod-reader",
                "default",
                rules_obj("roles", "pod-reader", "default", read_pods),
                seq="wr-2",
            ),
            {"K8s Role Created"},
            "read-only verbs",
        ),
    )
    add(
        "ClusterRole With Pod Exec Created",
        "pod-exec-role",
        Line(
            create(
                "clusterroles",
                "exec-anywhere",
                None,
                rules_obj(
                    "clusterroles",
                    "exec-anywhere",
                    None,
                    [{"verbs": ["create"], "apiGroups": [""], "resources": ["pods/exec"]}],
                ),
                seq="pe-1",
            ),
            {
                "ClusterRole With Pod Exec Created",
                "ClusterRole With Write Privileges Created",
                "K8s ClusterRole Created",
            },
            "create on pods/exec",
        ),
        Line(
            create(
                "roles",
                "log-reader",
                "default",
                rules_obj(
                    "roles",
                    "log-reader",
                    "default",
                    [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods/log"]}],
                ),
                seq="pe-2",
            ),
            {"K8s Role Created"},
            "pods/log only",
        ),
    )

    # --- activity rules -----------------------------------------------------------------------------------
    deploy = simple(
        "deployments",
        "shop",
        "shop",
        spec={
            "replicas": 2,
            "selector": {"matchLabels": {"app": "shop"}},
            "template": {
                "metadata": {"labels": {"app": "shop"}},
                "spec": {"containers": [container("shop", NGINX)]},
            },
        },
    )
    add(
        "K8s Deployment Created",
        "deployment-created",
        Line(
            create("deployments", "shop", "shop", deploy, seq="dc-1"), {"K8s Deployment Created"}, "created"
        ),
        Line(
            create("deployments", "shop", "shop", deploy, seq="dc-2", code=403, user=SA_USER),
            set(),
            "forbidden",
        ),
        output=["deployment=shop", "ns=shop", "resp=201", "decision=allow"],
    )
    add(
        "K8s Deployment Deleted",
        "deployment-deleted",
        Line(delete("deployments", "shop", "shop", seq="dd-1"), {"K8s Deployment Deleted"}, "deleted"),
        Line(delete("deployments", "shop", "shop", seq="dd-2", code=404), set(), "not found"),
    )
    add(
        "K8s Service Created",
        "service-created",
        Line(
            create("services", "api", "default", svc("api", "ClusterIP"), seq="sc-1"),
            {"K8s Service Created"},
            "created",
        ),
        Line(
            audit(
                "update", "services", ns="default", name="api", request=svc("api", "ClusterIP"), seq="sc-2"
            ),
            set(),
            "updated",
        ),
    )
    add(
        "K8s Service Deleted",
        "service-deleted",
        Line(delete("services", "api", "default", seq="sd-1"), {"K8s Service Deleted"}, "deleted"),
        Line(audit("get", "services", ns="default", name="api", seq="sd-2"), set(), "read"),
    )
    add(
        "K8s ConfigMap Created",
        "configmap-created",
        Line(
            create(
                "configmaps",
                "shop-env",
                "shop",
                simple("configmaps", "shop-env", "shop", data={"MODE": "prod"}),
                seq="cc-1",
            ),
            {"K8s ConfigMap Created"},
            "created",
        ),
        Line(
            create(
                "configmaps",
                "shop-env",
                "shop",
                simple("configmaps", "shop-env", "shop", data={"MODE": "prod"}),
                seq="cc-2",
                code=409,
            ),
            set(),
            "already exists",
        ),
    )
    add(
        "K8s ConfigMap Deleted",
        "configmap-deleted",
        Line(delete("configmaps", "shop-env", "shop", seq="cd-1"), {"K8s ConfigMap Deleted"}, "deleted"),
        Line(
            delete("configmaps", "shop-env", "shop", seq="cd-2", verb="deletecollection"),
            set(),
            "deletecollection is not delete",
        ),
    )
    add(
        "K8s Namespace Created",
        "namespace-created",
        Line(
            create("namespaces", "team-a", None, simple("namespaces", "team-a", None), seq="nc-1"),
            {"K8s Namespace Created", "Create Disallowed Namespace"},
            "created (and not in allowed_namespaces)",
        ),
        Line(audit("get", "namespaces", name="team-a", seq="nc-2"), set(), "read"),
    )
    argocd = (
        "system:serviceaccount:argocd:argocd-application-controller",
        ["system:serviceaccounts", "system:serviceaccounts:argocd"],
    )
    add(
        "K8s Namespace Deleted",
        "namespace-deleted",
        Line(
            delete("namespaces", "team-a", None, seq="nd-1"), {"K8s Namespace Deleted"}, "deleted by a person"
        ),
        Line(
            delete("namespaces", "team-a", None, seq="nd-2", user=argocd), set(), "deleted by a system: user"
        ),
    )
    add(
        "K8s Serviceaccount Created",
        "serviceaccount-created",
        Line(
            create("serviceaccounts", "ci-bot", "ci", simple("serviceaccounts", "ci-bot", "ci"), seq="sac-1"),
            {"K8s Serviceaccount Created"},
            "created",
        ),
        Line(
            create(
                "serviceaccounts",
                "ci-bot",
                "ci",
                simple("serviceaccounts", "ci-bot", "ci"),
                seq="sac-2",
                code=403,
                user=SA_USER,
            ),
            set(),
            "forbidden",
        ),
    )
    add(
        "K8s Serviceaccount Deleted",
        "serviceaccount-deleted",
        Line(
            delete("serviceaccounts", "ci-bot", "ci", seq="sad-1"), {"K8s Serviceaccount Deleted"}, "deleted"
        ),
        Line(
            audit(
                "patch",
                "serviceaccounts",
                ns="ci",
                name="ci-bot",
                request={"automountServiceAccountToken": False},
                seq="sad-2",
            ),
            set(),
            "patched",
        ),
    )
    add(
        "K8s Role Created",
        "role-created",
        Line(
            create(
                "roles", "pod-reader", "ci", rules_obj("roles", "pod-reader", "ci", read_pods), seq="rc-1"
            ),
            {"K8s Role Created"},
            "created",
        ),
        Line(
            create(
                "roles",
                "pod-reader",
                "ci",
                rules_obj("roles", "pod-reader", "ci", read_pods),
                seq="rc-2",
                code=409,
            ),
            set(),
            "already exists",
        ),
        output=["role=pod-reader", "ns=ci"],
        list_output=['rules=({"verbs":["get","list","watch"],"apiGroups":[""],"resources":["pods"]})'],
    )
    add(
        "K8s Role Deleted",
        "role-deleted",
        Line(delete("roles", "pod-reader", "ci", seq="rd-1"), {"K8s Role Deleted"}, "deleted"),
        Line(delete("roles", "pod-reader", "ci", seq="rd-2", code=403, user=SA_USER), set(), "forbidden"),
    )
    add(
        "K8s ClusterRole Created",
        "clusterrole-created",
        Line(
            create(
                "clusterroles",
                "pod-reader",
                None,
                rules_obj("clusterroles", "pod-reader", None, read_pods),
                seq="crc-1",
            ),
            {"K8s ClusterRole Created"},
            "created",
        ),
        Line(
            create(
                "roles", "pod-reader", "ci", rules_obj("roles", "pod-reader", "ci", read_pods), seq="crc-2"
            ),
            {"K8s Role Created"},
            "a namespaced role",
        ),
    )
    add(
        "K8s ClusterRole Deleted",
        "clusterrole-deleted",
        Line(delete("clusterroles", "pod-reader", None, seq="crd-1"), {"K8s ClusterRole Deleted"}, "deleted"),
        Line(delete("clusterroles", "pod-reader", None, seq="crd-2", code=404), set(), "not found"),
    )
    add(
        "K8s RoleBinding Created",
        "rolebinding-created",
        Line(
            create(
                "rolebindings",
                "ci-bot-read",
                "ci",
                binding("rolebindings", "ci-bot-read", "ci", "Role", "pod-reader"),
                seq="rbc-1",
            ),
            {"K8s RoleBinding Created"},
            "created",
        ),
        Line(
            create(
                "clusterrolebindings",
                "ci-bot-read",
                None,
                binding("clusterrolebindings", "ci-bot-read", None, "ClusterRole", "pod-reader"),
                seq="rbc-2",
            ),
            {"K8s ClusterRoleBinding Created"},
            "a cluster role binding",
        ),
        output=["role=pod-reader", "binding=ci-bot-read"],
        list_output=['subjects=({"kind":"ServiceAccount","name":"ci-bot","namespace":"ci"})'],
    )
    add(
        "K8s RoleBinding Deleted",
        "rolebinding-deleted",
        Line(
            delete("rolebindings", "ci-bot-read", "ci", seq="rbd-1"), {"K8s RoleBinding Deleted"}, "deleted"
        ),
        Line(audit("get", "rolebindings", ns="ci", name="ci-bot-read", seq="rbd-2"), set(), "read"),
    )
    add(
        "K8s ClusterRoleBinding Created",
        "clusterrolebinding-created",
        Line(
            create(
                "clusterrolebindings",
                "ci-bot-view",
                None,
                binding("clusterrolebindings", "ci-bot-view", None, "ClusterRole", "view"),
                seq="crbc-1",
            ),
            {"K8s ClusterRoleBinding Created"},
            "created",
        ),
        Line(
            create(
                "clusterrolebindings",
                "ci-bot-view",
                None,
                binding("clusterrolebindings", "ci-bot-view", None, "ClusterRole", "view"),
                seq="crbc-2",
                code=403,
                user=SA_USER,
            ),
            set(),
            "forbidden",
        ),
    )
    add(
        "K8s ClusterRoleBinding Deleted",
        "clusterrolebinding-deleted",
        Line(
            delete("clusterrolebindings", "ci-bot-view", None, seq="crbd-1"),
            {"K8s ClusterRoleBinding Deleted"},
            "deleted",
        ),
        Line(
            delete("rolebindings", "ci-bot-view", "ci", seq="crbd-2"),
            {"K8s RoleBinding Deleted"},
            "a namespaced binding",
        ),
    )
    secret = simple("secrets", "db-creds", "shop", type="Opaque", data={"password": "U3VwM3JTM2NyZXQ="})
    certmgr = ("system:serviceaccount:cert-manager:cert-manager", ["system:serviceaccounts"])
    add(
        "K8s Secret Created",
        "secret-created",
        Line(create("secrets", "db-creds", "shop", secret, seq="sec-1"), {"K8s Secret Created"}, "created"),
        Line(
            create(
                "secrets",
                "db-creds",
                "kube-system",
                simple("secrets", "db-creds", "kube-system"),
                seq="sec-2",
            ),
            set(),
            "in kube-system",
        ),
        Line(
            create(
                "secrets",
                "shop-tls",
                "shop",
                simple("secrets", "shop-tls", "shop"),
                seq="sec-3",
                user=certmgr,
            ),
            set(),
            "created by a system: user",
        ),
    )
    add(
        "K8s Secret Deleted",
        "secret-deleted",
        Line(delete("secrets", "db-creds", "shop", seq="sed-1"), {"K8s Secret Deleted"}, "deleted"),
        Line(delete("secrets", "db-creds", "kube-system", seq="sed-2"), set(), "in kube-system"),
    )
    add(
        "K8s Secret Get Successfully",
        "secret-get",
        Line(
            audit("get", "secrets", ns="shop", name="db-creds", seq="sg-1"),
            {"K8s Secret Get Successfully"},
            "read",
        ),
        Line(audit("list", "secrets", ns="shop", seq="sg-2"), set(), "list is not get"),
        output=["secret=db-creds", "ns=shop", "resp=200"],
    )
    add(
        "K8s Secret Get Unsuccessfully Tried",
        "secret-get-denied",
        Line(
            audit("get", "secrets", ns="shop", name="db-creds", code=403, user=SA_USER, seq="sgd-1"),
            {"K8s Secret Get Unsuccessfully Tried"},
            "forbidden",
        ),
        Line(
            audit("get", "secrets", ns="shop", name="db-creds", seq="sgd-2"),
            {"K8s Secret Get Successfully"},
            "allowed",
        ),
    )

    def ingress(name: str, tls: bool) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "ingressClassName": "nginx",
            "rules": [
                {
                    "host": "shop.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "shop", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ],
        }
        if tls:
            spec["tls"] = [{"hosts": ["shop.example.com"], "secretName": "shop-tls"}]
        return simple("ingresses", name, "shop", spec=spec)

    add(
        "Ingress Object without TLS Certificate Created",
        "ingress-without-tls",
        Line(
            create("ingresses", "shop", "shop", ingress("shop", False), seq="ing-1"),
            {"Ingress Object without TLS Certificate Created"},
            "no tls",
        ),
        Line(create("ingresses", "shop", "shop", ingress("shop", True), seq="ing-2"), set(), "with tls"),
    )

    # --- rules shipped switched off: enabled by an override file, as a Falco user does ------------------
    add(
        "Create Disallowed Pod",
        "disallowed-pod",
        Line(
            create_pod("dp-1", pod("web", "shop", [container("web", NGINX)])),
            {"Create Disallowed Pod"},
            "an image outside the user's list",
        ),
        Line(
            create_pod(
                "dp-2",
                pod(
                    "web",
                    "shop",
                    [
                        container("web", "registry.example.com/shop/web:2.4.1"),
                        container("worker", "registry.example.com/shop/worker@sha256:" + "ab" * 32),
                    ],
                ),
            ),
            set(),
            "every image in the user's list",
        ),
        Line(
            create_pod(
                "dp-3",
                pod(
                    "web",
                    "shop",
                    [container("web", "registry.example.com/shop/web:2.4.1"), container("sidecar", NGINX)],
                ),
            ),
            {"Create Disallowed Pod"},
            "one of two images outside the list",
        ),
        overrides="""
- macro: allowed_k8s_containers
  condition: (ka.req.pod.containers.image.repository in (registry.example.com/shop/web, registry.example.com/shop/worker))
  override:
    condition: replace
""",
        output=["pod=web", "ns=shop"],
        list_output=[f"images=({NGINX})"],
    )
    add(
        "All K8s Audit Events",
        "all-events",
        Line(
            audit("get", "configmaps", ns="shop", name="shop-env", seq="all-1"),
            {"All K8s Audit Events"},
            "any event",
        ),
        Line(
            audit("watch", "pods", ns="shop", query="watch=true", stage="ResponseStarted", seq="all-2"),
            set(),
            "not a completed request",
        ),
        overrides="""
- macro: consider_all_events
  condition: (k8s_audit_always_true)
  override:
    condition: replace
""",
        output=["verb=get", '"auditID": "'],
    )
    add(
        "Full K8s Administrative Access",
        "full-admin-access",
        Line(audit("list", "nodes", seq="fa-1"), {"Full K8s Administrative Access"}, "kubernetes-admin"),
        Line(
            audit("list", "nodes", user=("kube", ["system:authenticated"]), seq="fa-2"), set(), "another user"
        ),
        overrides="""
- macro: allowed_full_admin_users
  condition: (k8s_audit_never_true)
  override:
    condition: replace
""",
    )
    node_overrides = """
- macro: allow_all_k8s_nodes
  condition: (k8s_audit_never_true)
  override:
    condition: replace

- list: allowed_k8s_nodes
  items: [worker-1, worker-2]
  override:
    items: replace
"""

    def node(name: str) -> dict[str, Any]:
        return simple("nodes", name, None, spec={"podCIDR": "10.244.3.0/24"})

    def kubelet(name: str) -> tuple[str, list[str]]:
        return (f"system:node:{name}", ["system:nodes", "system:authenticated"])

    add(
        "Untrusted Node Successfully Joined the Cluster",
        "untrusted-node-joined",
        Line(
            create("nodes", "rogue-node", None, node("rogue-node"), seq="nj-1", user=kubelet("rogue-node")),
            {"Untrusted Node Successfully Joined the Cluster"},
            "a node outside allowed_k8s_nodes",
        ),
        Line(
            create("nodes", "worker-1", None, node("worker-1"), seq="nj-2", user=kubelet("worker-1")),
            set(),
            "an allowed node",
        ),
        overrides=node_overrides,
    )
    add(
        "Untrusted Node Unsuccessfully Tried to Join the Cluster",
        "untrusted-node-denied",
        Line(
            create(
                "nodes",
                "rogue-node",
                None,
                node("rogue-node"),
                seq="nu-1",
                code=403,
                user=kubelet("rogue-node"),
            ),
            {"Untrusted Node Unsuccessfully Tried to Join the Cluster"},
            "a node outside allowed_k8s_nodes, forbidden",
        ),
        Line(
            create(
                "nodes", "worker-2", None, node("worker-2"), seq="nu-2", code=403, user=kubelet("worker-2")
            ),
            set(),
            "an allowed node",
        ),
        overrides=node_overrides,
        output=["node=rogue-node", "reason=Forbidden"],
    )
    return cases


CASES = _cases()


def jsonl(case: Case) -> str:
    return "".join(json.dumps(line.event, separators=(",", ":")) + "\n" for line in case.lines)


def write_files(directory: Path = GOLDEN_DIR) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for case in CASES:
        (directory / f"{case.slug}.jsonl").write_text(jsonl(case))


if __name__ == "__main__":
    write_files()
    print(f"wrote {len(CASES)} files to {GOLDEN_DIR}")
