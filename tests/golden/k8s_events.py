"""The golden cases of Falco's k8s_audit_rules.yaml, and the builders of their Kubernetes audit events
(audit.k8s.io/v1 ``Event`` objects).

Every event is shaped as a kube-apiserver (v1.31) audit log backend writes it: ``kind``,
``apiVersion``, ``level``, a uuid ``auditID``, ``stage``, ``requestURI``, ``verb``, ``user``,
``sourceIPs``, ``userAgent``, ``objectRef``, ``responseStatus``, ``requestObject``/``responseObject``
(level RequestResponse, defaults filled in as the server decodes them), both timestamps and the
authorization annotations. auditIDs and times are derived from a counter, so the events (and the
JSON Lines files written from them) are the same on every run.

Every rule of the file has one ``Case``: events that must fire it and near misses that must not, each
with the exact set of rules that fire on it (``rule_matching="all"``), and the edge cases of the rule
(each branch of its condition, each exception list, the other stages, verbs and response codes that
must not fire it). Rules the file ships switched off carry the override a Falco user would write. The
events are also stored, one file per rule, in tests/data/k8s_audit/golden/<slug>.jsonl as replay
examples; regenerate them after changing a case with

    .venv/bin/python tests/golden/k8s_events.py
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

KUBECTL = "kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46"
KUBELET = "kubelet/v1.31.2 (linux/amd64) kubernetes/5864a46"
HELM = "Helm/3.16.2"
ARGOCD = "argocd-application-controller/v0.0.0 (linux/amd64) kubernetes/$Format"
CURL = "curl/8.5.0"

_T0 = datetime(2026, 11, 20, 9, 30, 0, tzinfo=UTC)
_NS = uuid.UUID("0b5b2f0e-8f7e-4f0c-9d55-6c8a1f3e2a41")

_RESOURCE_KIND = {
    "pods": "Pod",
    "services": "Service",
    "configmaps": "ConfigMap",
    "secrets": "Secret",
    "namespaces": "Namespace",
    "serviceaccounts": "ServiceAccount",
    "nodes": "Node",
    "deployments": "Deployment",
    "ingresses": "Ingress",
    "roles": "Role",
    "clusterroles": "ClusterRole",
    "rolebindings": "RoleBinding",
    "clusterrolebindings": "ClusterRoleBinding",
}


@dataclass(frozen=True)
class User:
    username: str
    groups: tuple[str, ...]
    uid: str | None = None
    ip: str = "10.20.0.15"
    agent: str = KUBECTL
    #: the RBAC reason the API server gives when it allows this user
    allow_reason: str = ""

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"username": self.username}
        if self.uid:
            out["uid"] = self.uid
        out["groups"] = list(self.groups)
        return out


ADMIN = User(
    "kubernetes-admin",
    ("kubeadm:cluster-admins", "system:authenticated"),
    ip="192.168.56.1",
    allow_reason='RBAC: allowed by ClusterRoleBinding "kubeadm:cluster-admins" of ClusterRole '
    '"cluster-admin" to Group "kubeadm:cluster-admins"',
)
ALICE = User(
    "alice",
    ("developers", "system:authenticated"),
    uid="f3a8c2d4-5b6e-4d1f-9a07-2c4b8e1d6f90",
    ip="10.20.0.15",
    allow_reason='RBAC: allowed by ClusterRoleBinding "developers-admin" of ClusterRole "admin" '
    'to Group "developers"',
)
ARGO = User(
    "system:serviceaccount:argocd:argocd-application-controller",
    ("system:serviceaccounts", "system:serviceaccounts:argocd", "system:authenticated"),
    uid="4e0c7b9a-1d2f-4a3b-8c5d-6e7f8091a2b3",
    ip="10.244.1.23",
    agent=ARGOCD,
    allow_reason='RBAC: allowed by ClusterRoleBinding "argocd-application-controller" of ClusterRole '
    '"argocd-application-controller" to ServiceAccount "argocd-application-controller/argocd"',
)
ANONYMOUS = User("system:anonymous", ("system:unauthenticated",), ip="203.0.113.77", agent=CURL)
#: a person signed in through OIDC, not in allowed_k8s_users
MALLORY = User(
    "mallory@example.com",
    ("oidc:contractors", "system:authenticated"),
    ip="10.20.0.77",
    allow_reason='RBAC: allowed by RoleBinding "contractors/payments" of ClusterRole "view" to Group '
    '"oidc:contractors"',
)
#: in allowed_k8s_users, but not one of the full administrators (admin_k8s_users)
KUBE = User(
    "kube",
    ("system:authenticated",),
    ip="192.168.56.1",
    allow_reason='RBAC: allowed by ClusterRoleBinding "kube-ops" of ClusterRole "view" to User "kube"',
)


def node_user(node: str) -> User:
    return User(
        f"system:node:{node}",
        ("system:nodes", "system:authenticated"),
        ip="192.168.56.31",
        agent=KUBELET,
        allow_reason="",
    )


# ---------------------------------------------------------------------------------------------
# the event builder
# ---------------------------------------------------------------------------------------------


class _Clock:
    """Deterministic auditIDs and timestamps, one tick per event."""

    def __init__(self) -> None:
        self.n = 0

    def tick(self) -> tuple[str, datetime]:
        self.n += 1
        return str(uuid.uuid5(_NS, f"event-{self.n}")), _T0 + timedelta(
            seconds=11 * self.n, microseconds=1013 * self.n
        )


_clock = _Clock()


def ts(t: datetime) -> str:
    """RFC 3339 with microseconds, as the API server writes audit times."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _path(
    resource: str, namespace: str | None, name: str | None, subresource: str | None, group: str, version: str
) -> str:
    p = "/api/v1" if not group else f"/apis/{group}/{version}"
    if namespace and resource != "namespaces":
        p += f"/namespaces/{namespace}"
    p += f"/{resource}"
    if name:
        p += f"/{name}"
    if subresource:
        p += f"/{subresource}"
    return p


_FAILURE_REASON = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    409: "AlreadyExists",
    422: "Invalid",
}


def _default_code(verb: str, subresource: str | None, stage: str) -> int:
    """201 for a create, 101 for a stream that has started, else 200."""
    if stage == "ResponseStarted":
        return 101
    return 201 if verb == "create" and not subresource else 200


def _uri(
    verb: str,
    resource: str,
    namespace: str | None,
    name: str | None,
    subresource: str | None,
    group: str,
    version: str,
    query: str | None,
) -> str:
    """The request URI kubectl sends (its fieldManager query for writes)."""
    if query is None:
        query = {
            "create": "fieldManager=kubectl-create&fieldValidation=Strict",
            "patch": "fieldManager=kubectl-edit&fieldValidation=Strict",
            "update": "fieldManager=kubectl-replace&fieldValidation=Strict",
        }.get(verb, "")
        if subresource:
            query = ""
    # create (POST) goes to the collection; a subresource of a named object keeps the name
    in_path = name if (verb != "create" or subresource) else None
    uri = _path(resource, namespace, in_path, subresource, group, version)
    return f"{uri}?{query}" if query else uri


def _object_ref(
    resource: str,
    namespace: str | None,
    name: str | None,
    group: str,
    version: str,
    subresource: str | None,
) -> dict[str, Any]:
    """The event's objectRef, keys in the order the API server writes them."""
    ref: dict[str, Any] = {"resource": resource}
    if namespace:
        ref["namespace"] = namespace
    if name:
        ref["name"] = name
    if group:
        ref["apiGroup"] = group
    ref["apiVersion"] = version
    if subresource:
        ref["subresource"] = subresource
    return ref


def _failure(code: int, message: str, ref: dict[str, Any]) -> dict[str, Any]:
    """The Status of a failed request."""
    name = ref.get("name")
    status: dict[str, Any] = {
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": _FAILURE_REASON.get(code, "InternalError"),
        "details": {"name": name, "kind": ref["resource"]} if name else {"kind": ref["resource"]},
        "code": code,
    }
    if "apiGroup" in ref:
        status["details"]["group"] = ref["apiGroup"]
    return status


def _failure_message(code: int, verb: str, ref: dict[str, Any], user: User, admission: str | None) -> str:
    """The message of the Status the API server answers a failed request with."""
    resource, group, name = ref["resource"], ref.get("apiGroup", ""), ref.get("name")
    kind_name = resource if not group else f"{resource}.{group}"
    what = f'{kind_name} "{name}"' if name else kind_name
    namespace = ref.get("namespace")
    scope = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    return {
        403: f"{what} is forbidden: "
        + (
            admission
            if admission is not None
            else f'User "{user.username}" cannot {verb} resource "{resource}" in API group "{group}"{scope}'
        ),
        404: f"{what} not found",
        409: f"{what} already exists",
        422: f"{what} is invalid: spec: Invalid value",
    }.get(code, f"{what}: error")


def audit(
    verb: str,
    resource: str,
    *,
    name: str | None = None,
    namespace: str | None = None,
    subresource: str | None = None,
    group: str = "",
    version: str = "v1",
    user: User = ADMIN,
    request: dict[str, Any] | None = None,
    response: dict[str, Any] | None = None,
    code: int | None = None,
    stage: str = "ResponseComplete",
    query: str | None = None,
    uri: str | None = None,
    message: str | None = None,
    annotations: dict[str, str] | None = None,
    admission: str | None = None,
) -> dict[str, Any]:
    """One audit Event. ``code`` defaults to 201 for create, 101 for a ResponseStarted stream, else
    200; a failing code gets the Status the server writes. A 403 is an RBAC denial (``forbid``
    decision) unless ``admission`` gives the reason an admission controller rejected the request."""
    audit_id, received = _clock.tick()
    if code is None:
        code = _default_code(verb, subresource, stage)
    done = received + timedelta(microseconds=2417 if stage != "ResponseStarted" else 31877)
    if stage == "RequestReceived":
        done = received
    if uri is None:
        uri = _uri(verb, resource, namespace, name, subresource, group, version, query)
    level = "RequestResponse" if (request is not None or response is not None) else "Metadata"
    forbidden = code == 403
    if forbidden and admission is None:
        # RBAC denies before the body is read: no request/response object, and a create (whose name
        # is only in the body) has no objectRef.name
        request = response = None
        if verb == "create" and not subresource:
            name = None
    ref = _object_ref(resource, namespace, name, group, version, subresource)
    status: dict[str, Any] = {"metadata": {}, "code": code}
    if code >= 400:
        status = _failure(code, message or _failure_message(code, verb, ref, user, admission), ref)
    rbac_denied = forbidden and admission is None
    ann = {
        "authorization.k8s.io/decision": "forbid" if rbac_denied else "allow",
        "authorization.k8s.io/reason": "" if rbac_denied else user.allow_reason,
    }
    if annotations:
        ann.update(annotations)
    ev: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": level,
        "auditID": audit_id,
        "stage": stage,
        "requestURI": uri,
        "verb": verb,
        "user": user.as_json(),
        "sourceIPs": [user.ip],
        "userAgent": user.agent,
        "objectRef": ref,
    }
    if stage != "RequestReceived":
        ev["responseStatus"] = status
    if request is not None:
        ev["requestObject"] = request
    if response is not None and stage == "ResponseComplete":
        ev["responseObject"] = response if code < 400 else status | {"kind": "Status", "apiVersion": "v1"}
    ev["requestReceivedTimestamp"] = ts(received)
    ev["stageTimestamp"] = ts(done)
    if stage != "RequestReceived":
        ev["annotations"] = ann
    return ev


def variant(ev: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of ``ev`` with a new auditID/time and top-level keys changed (None deletes). The
    RequestReceived stage is logged before the body is read and the request authorized: it has no
    objects, response status or authorization annotations."""
    audit_id, received = _clock.tick()
    out = copy.deepcopy(ev)
    out["auditID"] = audit_id
    out["requestReceivedTimestamp"] = ts(received)
    out["stageTimestamp"] = ts(received + timedelta(microseconds=2417))
    for k, v in changes.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    if out["stage"] == "RequestReceived":
        for k in ("responseStatus", "requestObject", "responseObject", "annotations"):
            out.pop(k, None)
        out["stageTimestamp"] = out["requestReceivedTimestamp"]
    return out


def as_user(ev: dict[str, Any], user: User) -> dict[str, Any]:
    """A copy of ``ev`` (new auditID/time) made by another user."""
    out = variant(ev, user=user.as_json(), sourceIPs=[user.ip], userAgent=user.agent)
    if "annotations" in out and out["annotations"].get("authorization.k8s.io/decision") == "allow":
        out["annotations"]["authorization.k8s.io/reason"] = user.allow_reason
    return out


def _meta(name: str, namespace: str | None, n: int, **extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"name": name}
    if namespace:
        m["namespace"] = namespace
    m["uid"] = str(uuid.uuid5(_NS, f"obj-{name}-{namespace}-{n}"))
    m["resourceVersion"] = str(480000 + 37 * n)
    m["creationTimestamp"] = ts(_T0 + timedelta(seconds=11 * n)).split(".")[0] + "Z"
    m.update(extra)
    return m


def _stored(req: dict[str, Any], n: int) -> dict[str, Any]:
    """The object the server returns for a created request object (uid, resourceVersion, time)."""
    out = copy.deepcopy(req)
    md = out.get("metadata", {})
    extra = {k: v for k, v in md.items() if k not in ("name", "namespace", "creationTimestamp")}
    out["metadata"] = _meta(md["name"], md.get("namespace"), n, **extra)
    return out


# ---------------------------------------------------------------------------------------------
# object builders (as the server decodes them, defaults filled in)
# ---------------------------------------------------------------------------------------------


def container(
    name: str,
    image: str,
    *,
    privileged: bool | None = None,
    ports: list[dict[str, Any]] | None = None,
    mounts: list[dict[str, Any]] | None = None,
    command: list[str] | None = None,
) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "image": image}
    if command:
        c["command"] = command
    if ports:
        c["ports"] = ports
    c["resources"] = {}
    if mounts:
        c["volumeMounts"] = mounts
    c["terminationMessagePath"] = "/dev/termination-log"
    c["terminationMessagePolicy"] = "File"
    c["imagePullPolicy"] = "Always" if image.endswith(":latest") or ":" not in image else "IfNotPresent"
    if privileged is not None:
        c["securityContext"] = {"privileged": privileged}
    return c


def pod_request(
    name: str,
    namespace: str,
    containers: list[dict[str, Any]],
    *,
    init: list[dict[str, Any]] | None = None,
    volumes: list[dict[str, Any]] | None = None,
    host_network: bool | None = None,
    host_pid: bool | None = None,
    host_ipc: bool | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if volumes:
        spec["volumes"] = volumes
    if init:
        spec["initContainers"] = init
    spec["containers"] = containers
    spec.update(
        {
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirstWithHostNet" if host_network else "ClusterFirst",
        }
    )
    if host_network is not None:
        spec["hostNetwork"] = host_network
    if host_pid is not None:
        spec["hostPID"] = host_pid
    if host_ipc is not None:
        spec["hostIPC"] = host_ipc
    spec.update(
        {
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
        }
    )
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {"run": name}},
        "spec": spec,
        "status": {},
    }


def create_pod(req: dict[str, Any], *, user: User = ADMIN, code: int | None = None) -> dict[str, Any]:
    """A kubectl create of a pod (level RequestResponse) and the pod the server stored."""
    n = _clock.n + 1
    resp = _stored(req, n)
    resp["spec"]["serviceAccountName"] = "default"
    resp["spec"]["serviceAccount"] = "default"
    resp["spec"]["tolerations"] = [
        {
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
        {
            "key": "node.kubernetes.io/unreachable",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        },
    ]
    resp["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    md = req["metadata"]
    return audit(
        "create",
        "pods",
        name=md["name"],
        namespace=md["namespace"],
        user=user,
        request=req,
        response=resp,
        code=code,
        annotations={"pod-security.kubernetes.io/enforce-policy": "privileged:latest"},
    )


def host_path(name: str, path: str, kind: str = "") -> dict[str, Any]:
    hp: dict[str, Any] = {"path": path, "type": kind}
    return {"name": name, "hostPath": hp}


def create_object(
    resource: str,
    name: str,
    *,
    namespace: str | None = None,
    group: str = "",
    version: str = "v1",
    body: dict[str, Any] | None = None,
    user: User = ADMIN,
    code: int | None = None,
    verb: str = "create",
    level_metadata: bool = False,
    admission: str | None = None,
) -> dict[str, Any]:
    """A create (or update/patch with ``verb``) of any object, with its request and stored object."""
    kind = _RESOURCE_KIND[resource]
    api_version = f"{group}/{version}" if group else version
    md: dict[str, Any] = {"name": name}
    if namespace:
        md["namespace"] = namespace
    req: dict[str, Any] = {"kind": kind, "apiVersion": api_version, "metadata": md}
    if body:
        req.update(copy.deepcopy(body))
    resp = _stored(req, _clock.n + 1)
    return audit(
        verb,
        resource,
        name=name,
        namespace=namespace,
        group=group,
        version=version,
        user=user,
        request=None if level_metadata else req,
        response=None if level_metadata else resp,
        code=code,
        admission=admission,
    )


def delete_object(
    resource: str,
    name: str,
    *,
    namespace: str | None = None,
    group: str = "",
    version: str = "v1",
    user: User = ADMIN,
    code: int | None = None,
) -> dict[str, Any]:
    """A kubectl delete (level Metadata: kubectl sends DeleteOptions, the policy logs metadata)."""
    if resource == "namespaces":
        namespace = name  # the API server files a namespace under itself
    return audit(
        "delete", resource, name=name, namespace=namespace, group=group, version=version, user=user, code=code
    )


def role_body(rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"rules": rules}


def binding_body(role_kind: str, role: str, subjects: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "subjects": subjects,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
    }


RBAC = "rbac.authorization.k8s.io"


# ---------------------------------------------------------------------------------------------
# golden cases
# ---------------------------------------------------------------------------------------------


@dataclass
class Variant:
    event: dict[str, Any]
    #: exactly the rules that must fire on this event
    fires: frozenset[str]
    why: str


@dataclass
class Case:
    rule: str
    #: tests/data/k8s_audit/golden/<slug>.jsonl holds this case's events
    slug: str
    fire: list[Variant]
    miss: list[Variant]
    #: substrings the rule's output must contain (for the first firing event); a list field prints
    #: as Falco prints it, "(a,b)"
    output_has: list[str] = field(default_factory=list)
    #: a rules file loaded after k8s_audit_rules.yaml: how a Falco user turns the rule on
    overrides: str | None = None

    @property
    def variants(self) -> list[Variant]:
        """Every event of the case, as its file holds them: those that fire, then the near misses."""
        return [*self.fire, *self.miss]


def V(event: dict[str, Any], fires: set[str] | frozenset[str], why: str) -> Variant:
    return Variant(event, frozenset(fires), why)


CASES: list[Case] = []


def case(c: Case) -> None:
    CASES.append(c)


DU = "Disallowed K8s User"

# --- users -------------------------------------------------------------------------------------

_ev = audit("list", "pods", namespace="payments", user=ALICE, query="limit=500")
case(
    Case(
        DU,
        "disallowed-user",
        [
            V(_ev, {DU}, "alice is not in allowed_k8s_users"),
            V(
                audit("get", "pods", name="api-5c9f7", namespace="payments", user=MALLORY),
                {DU},
                "an OIDC user (an e-mail address) outside the allowed list",
            ),
        ],
        [
            V(as_user(_ev, ADMIN), set(), "kubernetes-admin is allowed"),
            V(variant(_ev, stage="RequestReceived"), set(), "not ResponseComplete"),
            V(as_user(_ev, ARGO), set(), "system: users are excluded"),
        ],
        [
            "user=alice",
            "target=<NA>/pods",
            "verb=list",
            "uri=/api/v1/namespaces/payments/pods?limit=500",
            "resp=200",
        ],
    )
)

_FULL_ADMIN = """
- macro: allowed_full_admin_users
  condition: (k8s_audit_never_true)
  override:
    condition: replace
"""
_ev = audit("get", "namespaces", name="payments", namespace="payments", user=ADMIN)
case(
    Case(
        "Full K8s Administrative Access",
        "full-admin-access",
        [V(_ev, {"Full K8s Administrative Access"}, "kubernetes-admin is a default full admin")],
        [
            V(as_user(_ev, ALICE), {DU}, "alice is not a default admin user"),
            V(as_user(_ev, KUBE), set(), "kube is an allowed user, not a full administrator"),
            V(variant(_ev, stage="RequestReceived"), set(), "not ResponseComplete"),
        ],
        ["user=kubernetes-admin", "target=payments/namespaces", "verb=get", "resp=200"],
        overrides=_FULL_ADMIN,
    )
)

_ALL = """
- macro: consider_all_events
  condition: (k8s_audit_always_true)
  override:
    condition: replace
"""
_ev = audit("watch", "configmaps", namespace="payments", user=ADMIN, query="watch=true&resourceVersion=48121")
case(
    Case(
        "All K8s Audit Events",
        "all-events",
        [V(_ev, {"All K8s Audit Events"}, "every completed request, once enabled")],
        [
            V(
                variant(_ev, stage="ResponseStarted", responseStatus={"metadata": {}, "code": 200}),
                set(),
                "a watch stream that has only started",
            )
        ],
        ["user=kubernetes-admin", "verb=watch", '"auditID": "' + _ev["auditID"] + '"'],
        overrides=_ALL,
    )
)

_ev = audit(
    "get",
    "configmaps",
    name="cluster-info",
    namespace="kube-public",
    user=User(
        "system:anonymous",
        ("system:unauthenticated",),
        ip="203.0.113.77",
        agent=CURL,
        allow_reason='RBAC: allowed by RoleBinding "kubeadm:bootstrap-signer-clusterinfo/kube-public" of '
        'Role "kubeadm:bootstrap-signer-clusterinfo" to User "system:anonymous"',
    ),
)


def _public_info(uri: str) -> dict[str, Any]:
    """An anonymous request of a non-resource URL (no objectRef), allowed by system:public-info-viewer."""
    ev = variant(_ev, requestURI=uri, objectRef=None)
    ev["annotations"]["authorization.k8s.io/reason"] = (
        'RBAC: allowed by ClusterRoleBinding "system:public-info-viewer" of ClusterRole '
        '"system:public-info-viewer" to Group "system:unauthenticated"'
    )
    return ev


_denied = audit("list", "secrets", namespace="kube-system", user=ANONYMOUS, code=403)
case(
    Case(
        "Anonymous Request Allowed",
        "anonymous-allowed",
        [
            V(_ev, {"Anonymous Request Allowed"}, "anonymous read of kube-public/cluster-info allowed"),
            V(_public_info("/version"), {"Anonymous Request Allowed"}, "anonymous /version"),
        ],
        [
            V(_public_info("/healthz?verbose"), set(), "health endpoints are excluded (with a query)"),
            V(_public_info("/healthz"), set(), "the health endpoint itself"),
            V(_public_info("/readyz?verbose"), set(), "the readiness endpoint"),
            V(_denied, set(), "anonymous request forbidden"),
        ],
        [
            "user=system:anonymous",
            "verb=get",
            "uri=/api/v1/namespaces/kube-public/configmaps/cluster-info",
            'reason=RBAC: allowed by RoleBinding "kubeadm:bootstrap-signer-clusterinfo/kube-public"',
        ],
    )
)

# --- pods --------------------------------------------------------------------------------------

_DISALLOWED_POD = """
- list: my_allowed_images
  items: [docker.io/library/nginx, registry.example.com/shop/api, registry.example.com/shop/worker]

- macro: allowed_k8s_containers
  condition: (ka.req.pod.containers.image.repository in (my_allowed_images))
  override:
    condition: replace
"""
_ev = create_pod(
    pod_request("cache", "shop", [container("redis", "docker.io/library/redis:7.4.1")]), user=ALICE
)
_two = create_pod(
    pod_request(
        "api-canary",
        "shop",
        [
            container("api", "registry.example.com/shop/api:2.14.0"),
            container("miner", "docker.io/xmrig/xmrig:6.22.0"),
        ],
    )
)
case(
    Case(
        "Create Disallowed Pod",
        "disallowed-pod",
        [
            V(_ev, {"Create Disallowed Pod", DU}, "redis is not an allowed image"),
            V(_two, {"Create Disallowed Pod"}, "one of two containers is not allowed"),
        ],
        [
            V(
                create_pod(
                    pod_request("web", "shop", [container("nginx", "docker.io/library/nginx:1.27.2")]),
                    user=ALICE,
                ),
                {DU},
                "nginx is allowed (only alice's own rule fires)",
            ),
            V(
                create_pod(
                    pod_request(
                        "api-0",
                        "shop",
                        [
                            container("api", "registry.example.com/shop/api:2.14.0"),
                            container("proxy", "docker.io/library/nginx:1.27.2"),
                        ],
                    )
                ),
                set(),
                "both containers allowed",
            ),
            V(
                create_pod(
                    pod_request(
                        "worker-0",
                        "shop",
                        [
                            container("api", "registry.example.com/shop/api:2.14.0"),
                            container("worker", "registry.example.com/shop/worker@sha256:" + "ab" * 32),
                        ],
                    )
                ),
                set(),
                "allowed images, one named by digest (its repository has no tag)",
            ),
        ],
        ["user=alice", "pod=cache", "ns=shop", "images=(docker.io/library/redis:7.4.1)"],
        overrides=_DISALLOWED_POD,
    )
)

_priv = create_pod(
    pod_request(
        "debug-tools",
        "default",
        [
            container(
                "shell", "docker.io/library/ubuntu:24.04", privileged=True, command=["sleep", "infinity"]
            )
        ],
    )
)
_priv_init = create_pod(
    pod_request(
        "sysctl-tuner",
        "shop",
        [container("app", "registry.example.com/shop/api:2.14.0")],
        init=[
            container(
                "sysctl",
                "docker.io/library/busybox:1.37",
                privileged=True,
                command=["sysctl", "-w", "net.core.somaxconn=4096"],
            )
        ],
    )
)
_calico = create_pod(
    pod_request(
        "calico-node-debug",
        "calico-system",
        [container("calico-node", "calico/node:v3.28.2", privileged=True)],
    )
)
case(
    Case(
        "Create Privileged Pod",
        "privileged-pod",
        [
            V(_priv, {"Create Privileged Pod"}, "privileged container"),
            V(_priv_init, {"Create Privileged Pod"}, "privileged init container"),
        ],
        [
            V(
                create_pod(
                    pod_request(
                        "debug-tools-2",
                        "default",
                        [
                            container(
                                "shell",
                                "docker.io/library/ubuntu:24.04",
                                privileged=False,
                                command=["sleep", "infinity"],
                            )
                        ],
                    )
                ),
                set(),
                "privileged: false",
            ),
            V(_calico, set(), "calico/node is a known privileged image"),
        ],
        [
            "user=kubernetes-admin",
            "pod=debug-tools",
            "ns=default",
            "images=(docker.io/library/ubuntu:24.04)",
            "resource=pods",
            "init_images=<NA> ephemeral_images=<NA>",
        ],
    )
)

_mount = create_pod(
    pod_request(
        "docker-builder",
        "ci",
        [
            container(
                "builder",
                "docker.io/library/docker:27.3-cli",
                mounts=[{"name": "docker-sock", "mountPath": "/var/run/docker.sock"}],
            )
        ],
        volumes=[host_path("docker-sock", "/var/run/docker.sock", "Socket")],
    ),
    user=ALICE,
)
case(
    Case(
        "Create Sensitive Mount Pod",
        "sensitive-mount-pod",
        [
            V(_mount, {"Create Sensitive Mount Pod", DU}, "hostPath /var/run/docker.sock"),
            V(
                create_pod(
                    pod_request(
                        "node-shell",
                        "default",
                        [container("shell", "docker.io/library/alpine:3.20")],
                        volumes=[{"name": "cache", "emptyDir": {}}, host_path("etc", "/etc")],
                    )
                ),
                {"Create Sensitive Mount Pod"},
                "hostPath /etc, the second volume",
            ),
        ],
        [
            V(
                create_pod(
                    pod_request(
                        "log-shipper",
                        "ci",
                        [
                            container(
                                "fluent-bit",
                                "cr.fluentbit.io/fluent/fluent-bit:3.1.9",
                                mounts=[{"name": "varlog", "mountPath": "/var/log", "readOnly": True}],
                            )
                        ],
                        volumes=[host_path("varlog", "/var/log", "Directory")],
                    )
                ),
                set(),
                "hostPath /var/log is not sensitive",
            ),
            V(
                create_pod(
                    pod_request(
                        "datadog-agent-x7k2p",
                        "datadog",
                        [
                            container(
                                "agent",
                                "docker.io/datadog/agent:7.58.2",
                                mounts=[{"name": "procdir", "mountPath": "/host/proc", "readOnly": True}],
                            )
                        ],
                        volumes=[host_path("procdir", "/proc")],
                    )
                ),
                set(),
                "docker.io/datadog/agent is a known image",
            ),
        ],
        [
            "user=alice",
            "pod=docker-builder",
            "ns=ci",
            "images=(docker.io/library/docker:27.3-cli)",
            '"path":"/var/run/docker.sock"',
        ],
    )
)

_hostnet = create_pod(
    pod_request(
        "net-debug",
        "default",
        [container("netshoot", "docker.io/nicolaka/netshoot:v0.13")],
        host_network=True,
    )
)
case(
    Case(
        "Create HostNetwork Pod",
        "hostnetwork-pod",
        [V(_hostnet, {"Create HostNetwork Pod"}, "hostNetwork: true")],
        [
            V(
                create_pod(
                    pod_request(
                        "net-debug-2",
                        "default",
                        [container("netshoot", "docker.io/nicolaka/netshoot:v0.13")],
                        host_network=False,
                    )
                ),
                set(),
                "hostNetwork: false",
            ),
            V(
                create_pod(
                    pod_request(
                        "ip-masq-agent-7xq2d",
                        "kube-net",
                        [container("ip-masq-agent", "registry.k8s.io/ip-masq-agent-amd64:v2.8.0")],
                        host_network=True,
                    )
                ),
                set(),
                "a known host-network image",
            ),
        ],
        ["pod=net-debug", "ns=default", "images=(docker.io/nicolaka/netshoot:v0.13)"],
    )
)

_hostpid = create_pod(
    pod_request(
        "nsenter-node",
        "default",
        [container("nsenter", "docker.io/library/alpine:3.20", command=["nsenter", "-t", "1", "-a", "sh"])],
        host_pid=True,
    ),
    user=ALICE,
)
case(
    Case(
        "Create HostPid Pod",
        "hostpid-pod",
        [V(_hostpid, {"Create HostPid Pod", DU}, "hostPID: true")],
        [
            V(
                create_pod(
                    pod_request(
                        "nsenter-node-2",
                        "default",
                        [container("nsenter", "docker.io/library/alpine:3.20")],
                        host_pid=False,
                    ),
                    user=ALICE,
                ),
                {DU},
                "hostPID: false",
            ),
            V(
                create_pod(
                    pod_request(
                        "nsenter-node-3", "default", [container("nsenter", "docker.io/library/alpine:3.20")]
                    )
                ),
                set(),
                "no hostPID at all",
            ),
        ],
        ["user=alice", "pod=nsenter-node", "images=(docker.io/library/alpine:3.20)"],
    )
)

_hostipc = create_pod(
    pod_request(
        "shm-reader", "shop", [container("reader", "docker.io/library/python:3.13-slim")], host_ipc=True
    )
)
case(
    Case(
        "Create HostIPC Pod",
        "hostipc-pod",
        [V(_hostipc, {"Create HostIPC Pod"}, "hostIPC: true")],
        [
            V(
                variant(
                    _hostipc,
                    verb="get",
                    requestURI="/api/v1/namespaces/shop/pods/shm-reader",
                    requestObject=None,
                    level="Metadata",
                    responseObject=None,
                ),
                set(),
                "a get of the same pod",
            ),
            V(
                create_pod(
                    pod_request(
                        "shm-reader-2",
                        "shop",
                        [container("reader", "docker.io/library/python:3.13-slim")],
                        host_ipc=False,
                    )
                ),
                set(),
                "hostIPC: false",
            ),
        ],
        ["pod=shm-reader", "ns=shop", "images=(docker.io/library/python:3.13-slim)"],
    )
)

_kube = create_pod(
    pod_request("kube-proxy-debug", "kube-system", [container("shell", "docker.io/library/alpine:3.20")])
)
case(
    Case(
        "Pod Created in Kube Namespace",
        "kube-namespace-pod",
        [V(_kube, {"Pod Created in Kube Namespace"}, "a pod in kube-system with an unknown image")],
        [
            V(
                create_pod(
                    pod_request(
                        "kube-apiserver-cp1",
                        "kube-system",
                        [container("kube-apiserver", "registry.k8s.io/kube-apiserver:v1.31.2")],
                    )
                ),
                set(),
                "a known kube-system image",
            ),
            V(
                create_pod(
                    pod_request(
                        "kube-proxy-debug", "default", [container("shell", "docker.io/library/alpine:3.20")]
                    )
                ),
                set(),
                "same pod in default",
            ),
        ],
        ["pod=kube-proxy-debug", "ns=kube-system", "images=(docker.io/library/alpine:3.20)"],
    )
)

# --- pod subresources ------------------------------------------------------------------------------

_exec = audit(
    "create",
    "pods",
    name="api-7d9c6b5f4-x2k8m",
    namespace="shop",
    subresource="exec",
    user=ALICE,
    stage="ResponseStarted",
    uri="/api/v1/namespaces/shop/pods/api-7d9c6b5f4-x2k8m/exec?command=cat&command=%2Fetc%2Fshadow"
    "&container=api&stderr=true&stdout=true",
)
_attach = audit(
    "get",
    "pods",
    name="api-7d9c6b5f4-x2k8m",
    namespace="shop",
    subresource="attach",
    stage="ResponseStarted",
    uri="/api/v1/namespaces/shop/pods/api-7d9c6b5f4-x2k8m/attach?container=api&stdin=true&stdout=true&tty=true",
)
case(
    Case(
        "Attach/Exec Pod",
        "exec-pod",
        [
            V(_exec, {"Attach/Exec Pod"}, "kubectl exec (SPDY: create) when the stream starts"),
            V(_attach, {"Attach/Exec Pod"}, "kubectl attach (websocket: get)"),
            V(
                variant(
                    _attach,
                    verb="get",
                    requestURI="/api/v1/namespaces/shop/pods/api-7d9c6b5f4-x2k8m/exec?command=%2Fbin%2Fbash"
                    "&container=api&stdin=true&stdout=true&tty=true",
                    objectRef={**_attach["objectRef"], "subresource": "exec"},
                ),
                {"Attach/Exec Pod"},
                "kubectl exec over WebSocket (get)",
            ),
            V(
                variant(
                    _attach,
                    verb="create",
                    requestURI="/api/v1/namespaces/shop/pods/api-7d9c6b5f4-x2k8m/attach?container=api"
                    "&stdin=true&stdout=true&tty=true",
                ),
                {"Attach/Exec Pod"},
                "kubectl attach over SPDY (create)",
            ),
        ],
        [
            V(
                variant(_exec, stage="ResponseComplete", responseStatus={"metadata": {}, "code": 101}),
                {DU},
                "the same exec when it completes",
            ),
            V(
                audit(
                    "get",
                    "pods",
                    name="api-7d9c6b5f4-x2k8m",
                    namespace="shop",
                    subresource="log",
                    stage="ResponseStarted",
                    uri="/api/v1/namespaces/shop/pods/api-7d9c6b5f4-x2k8m/log?follow=true",
                ),
                set(),
                "kubectl logs -f",
            ),
        ],
        ["user=alice", "pod=api-7d9c6b5f4-x2k8m", "ns=shop", "action=exec", "command=cat"],
    )
)

_pf = audit(
    "create",
    "pods",
    name="postgres-0",
    namespace="payments",
    subresource="portforward",
    stage="ResponseStarted",
    user=ALICE,
)
case(
    Case(
        "port-forward",
        "port-forward",
        [
            V(_pf, {"port-forward"}, "kubectl port-forward"),
            V(
                variant(_pf, stage="ResponseComplete", responseStatus={"metadata": {}, "code": 101}),
                {"port-forward", DU},
                "the port-forward rule has no stage filter",
            ),
        ],
        [V(variant(_exec, stage="ResponseStarted"), {"Attach/Exec Pod"}, "exec, not port-forward")],
        ["user=alice", "pod=postgres-0", "ns=payments", "action=portforward"],
    )
)

_eph_req = {
    "kind": "EphemeralContainers",
    "apiVersion": "v1",
    "metadata": {"name": "api-7d9c6b5f4-x2k8m", "namespace": "shop"},
    "ephemeralContainers": [
        {
            "name": "debugger-5xkvq",
            "image": "docker.io/library/busybox:1.37",
            "resources": {},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent",
            "stdin": True,
            "tty": True,
            "targetContainerName": "api",
        }
    ],
}
_eph = audit(
    "update",
    "pods",
    name="api-7d9c6b5f4-x2k8m",
    namespace="shop",
    subresource="ephemeralcontainers",
    user=ALICE,
    request=_eph_req,
    response=_stored(_eph_req, 900),
)
_eph_patch = audit(
    "patch",
    "pods",
    name="api-7d9c6b5f4-x2k8m",
    namespace="shop",
    subresource="ephemeralcontainers",
    request={
        "spec": {
            "ephemeralContainers": [
                {
                    "name": "debugger-q8wzt",
                    "image": "docker.io/library/busybox:1.37",
                    "stdin": True,
                    "tty": True,
                    "targetContainerName": "api",
                }
            ]
        }
    },
)
case(
    Case(
        "EphemeralContainers Created",
        "ephemeral-containers",
        [
            V(_eph, {"EphemeralContainers Created", DU}, "kubectl debug (1.22: update EphemeralContainers)"),
            V(_eph_patch, {"EphemeralContainers Created"}, "kubectl debug (1.23+: strategic merge patch)"),
            V(
                audit(
                    "patch",
                    "pods",
                    name="web-7d4b9c8f6-x2x7k",
                    namespace="default",
                    subresource="ephemeralcontainers",
                    request={
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
                    },
                ),
                {"EphemeralContainers Created"},
                "a patch whose body holds the whole list (the output reads its first item)",
            ),
        ],
        [
            V(
                audit(
                    "get",
                    "pods",
                    name="api-7d9c6b5f4-x2k8m",
                    namespace="shop",
                    subresource="ephemeralcontainers",
                ),
                set(),
                "a get of the subresource",
            ),
            V(
                audit(
                    "patch",
                    "pods",
                    name="api-7d9c6b5f4-x2k8m",
                    namespace="shop",
                    subresource="status",
                    user=node_user("worker-1"),
                    request={"status": {"phase": "Running"}},
                ),
                set(),
                "the kubelet's status patch: another subresource",
            ),
            V(
                variant(_eph, stage="RequestReceived", responseStatus=None, responseObject=None),
                set(),
                "not ResponseComplete",
            ),
        ],
        [
            "user=alice",
            "pod=api-7d9c6b5f4-x2k8m",
            "ns=shop",
            "ephemeral_container_name=debugger-5xkvq",
            "ephemeral_container_image=docker.io/library/busybox:1.37",
        ],
    )
)

# --- services, configmaps, ingresses -------------------------------------------------------------

_np_body: dict[str, Any] = {
    "spec": {
        "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30080}],
        "selector": {"app": "shop-api"},
        "type": "NodePort",
        "sessionAffinity": "None",
        "externalTrafficPolicy": "Cluster",
    },
    "status": {"loadBalancer": {}},
}
_np = create_object("services", "shop-api-nodeport", namespace="shop", body=_np_body)
_cip_body = copy.deepcopy(_np_body)
_cip_body["spec"]["type"] = "ClusterIP"
del _cip_body["spec"]["ports"][0]["nodePort"], _cip_body["spec"]["externalTrafficPolicy"]
SC, SD = "K8s Service Created", "K8s Service Deleted"
case(
    Case(
        "Create NodePort Service",
        "nodeport-service",
        [V(_np, {"Create NodePort Service", SC}, "type NodePort")],
        [V(create_object("services", "shop-api", namespace="shop", body=_cip_body), {SC}, "type ClusterIP")],
        [
            "service=shop-api-nodeport",
            "ns=shop",
            'ports=({"name":"http","protocol":"TCP","port":80,"targetPort":8080,"nodePort":30080})',
        ],
    )
)
_svc = create_object("services", "shop-api", namespace="shop", body=_cip_body)
case(
    Case(
        SC,
        "service-created",
        [V(_svc, {SC}, "service created")],
        [
            V(
                create_object("services", "shop-api", namespace="shop", body=_cip_body, code=409),
                set(),
                "409 AlreadyExists",
            ),
            V(
                create_object("services", "shop-api", namespace="shop", body=_cip_body, verb="update"),
                set(),
                "an update, not a create",
            ),
        ],
        [
            "user=kubernetes-admin",
            "service=shop-api",
            "ns=shop",
            "resp=201",
            "decision=allow",
            'reason=RBAC: allowed by ClusterRoleBinding "kubeadm:cluster-admins"',
        ],
    )
)
case(
    Case(
        SD,
        "service-deleted",
        [V(delete_object("services", "shop-api", namespace="shop"), {SD}, "service deleted")],
        [
            V(delete_object("services", "shop-api", namespace="shop", code=404), set(), "404 NotFound"),
            V(audit("get", "services", name="shop-api", namespace="shop"), set(), "a get, not a delete"),
        ],
        ["service=shop-api", "ns=shop", "resp=200"],
    )
)

CC, CD, CRED = (
    "K8s ConfigMap Created",
    "K8s ConfigMap Deleted",
    "Create/Modify Configmap With Private Credentials",
)
_cm_creds = create_object(
    "configmaps",
    "backup-config",
    namespace="payments",
    body={
        "data": {
            "BACKUP_BUCKET": "s3://acme-backups",
            "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
            "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        }
    },
    user=ALICE,
)
_cm_plain_body = {"data": {"BACKUP_BUCKET": "s3://acme-backups", "BACKUP_SCHEDULE": "0 3 * * *"}}
_cm_patch = audit(
    "patch",
    "configmaps",
    name="app-settings",
    namespace="payments",
    request={"data": {"db.password": "hunter2"}},
    response=_stored(
        {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {"name": "app-settings", "namespace": "payments"},
            "data": {"db.host": "postgres", "db.password": "hunter2"},
        },
        901,
    ),
)
_aws_file = {
    "AWS_REGION": "eu-west-1",
    "credentials": "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
}
_props = {"app.properties": "db.host=postgres\ndb.user=shop\ndb.password=Sup3rS3cret\n"}
case(
    Case(
        CRED,
        "configmap-credentials",
        [
            V(_cm_creds, {CRED, CC, DU}, "aws_access_key_id in data"),
            V(_cm_patch, {CRED}, "a patch that adds a password"),
            V(
                create_object(
                    "configmaps", "backup", namespace="default", body={"data": _aws_file}, verb="update"
                ),
                {CRED},
                "an update: the key is inside a value (a credentials file)",
            ),
            V(
                create_object("configmaps", "shop", namespace="default", body={"data": _props}),
                {CRED, CC},
                "a password inside a properties file of a new configmap",
            ),
        ],
        [
            V(
                create_object(
                    "configmaps", "backup-config", namespace="payments", body=_cm_plain_body, user=ALICE
                ),
                {CC, DU},
                "no credential",
            ),
            V(
                audit("get", "configmaps", name="backup-config", namespace="payments", user=ADMIN),
                set(),
                "a get of the configmap",
            ),
            V(
                create_object(
                    "configmaps",
                    "shop",
                    namespace="default",
                    body={"data": {"LOG_LEVEL": "debug"}},
                    verb="update",
                ),
                set(),
                "an update without credentials",
            ),
            V(
                audit(
                    "get",
                    "configmaps",
                    name="shop",
                    namespace="default",
                    response=_stored(
                        {
                            "kind": "ConfigMap",
                            "apiVersion": "v1",
                            "metadata": {"name": "shop", "namespace": "default"},
                            "data": _props,
                        },
                        902,
                    ),
                ),
                set(),
                "a get whose response holds a password: reading is not modifying",
            ),
        ],
        ["user=alice", "verb=create", "configmap=backup-config", "resource=configmaps"],
    )
)
case(
    Case(
        CC,
        "configmap-created",
        [
            V(
                create_object("configmaps", "feature-flags", namespace="shop", body=_cm_plain_body),
                {CC},
                "configmap created",
            )
        ],
        [
            V(
                create_object(
                    "configmaps", "feature-flags", namespace="shop", body=_cm_plain_body, user=ALICE, code=403
                ),
                {DU},
                "403 Forbidden",
            ),
            V(
                create_object("configmaps", "feature-flags", namespace="shop", body=_cm_plain_body, code=409),
                set(),
                "409 AlreadyExists",
            ),
        ],
        ["configmap=feature-flags", "ns=shop", "resp=201"],
    )
)
case(
    Case(
        CD,
        "configmap-deleted",
        [
            V(
                delete_object("configmaps", "feature-flags", namespace="shop", user=ARGO),
                {CD},
                "configmap deleted (by a service account: no user filter)",
            )
        ],
        [
            V(
                audit("deletecollection", "configmaps", namespace="shop"),
                set(),
                "deletecollection is not delete",
            )
        ],
        [
            "user=system:serviceaccount:argocd:argocd-application-controller",
            "configmap=feature-flags",
            "ns=shop",
        ],
    )
)

_ING = "Ingress Object without TLS Certificate Created"
_ing_body: dict[str, Any] = {
    "spec": {
        "ingressClassName": "nginx",
        "rules": [
            {
                "host": "shop.example.com",
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "shop-api", "port": {"number": 80}}},
                        }
                    ]
                },
            }
        ],
    },
    "status": {"loadBalancer": {}},
}
_ing_tls = copy.deepcopy(_ing_body)
_ing_tls["spec"]["tls"] = [{"hosts": ["shop.example.com"], "secretName": "shop-example-com-tls"}]
case(
    Case(
        _ING,
        "ingress-without-tls",
        [
            V(
                create_object(
                    "ingresses", "shop", namespace="shop", group="networking.k8s.io", body=_ing_body
                ),
                {_ING},
                "no spec.tls",
            )
        ],
        [
            V(
                create_object(
                    "ingresses", "shop", namespace="shop", group="networking.k8s.io", body=_ing_tls
                ),
                set(),
                "spec.tls set",
            ),
            V(
                create_object(
                    "ingresses", "shop", namespace="shop", group="networking.k8s.io", body=_ing_body, code=422
                ),
                set(),
                "422 Invalid",
            ),
        ],
        ["user=kubernetes-admin", "ingress=shop", "namespace=shop", "resource=ingresses"],
    )
)

# --- deployments -------------------------------------------------------------------------------

_deploy_body = {
    "spec": {
        "replicas": 3,
        "selector": {"matchLabels": {"app": "shop-api"}},
        "template": {
            "metadata": {"labels": {"app": "shop-api"}},
            "spec": {"containers": [container("api", "registry.example.com/shop/api:2.14.0")]},
        },
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
    },
    "status": {},
}
DC, DD = "K8s Deployment Created", "K8s Deployment Deleted"


def _deploy(code: int | None = None) -> dict[str, Any]:
    """Argo CD creates the shop-api deployment."""
    return create_object(
        "deployments", "shop-api", namespace="shop", group="apps", body=_deploy_body, user=ARGO, code=code
    )


case(
    Case(
        DC,
        "deployment-created",
        [V(_deploy(), {DC}, "deployment created")],
        [V(_deploy(409), set(), "409 AlreadyExists"), V(_deploy(403), set(), "403 Forbidden")],
        ["deployment=shop-api", "ns=shop", "resource=deployments", "resp=201", "decision=allow"],
    )
)
case(
    Case(
        DD,
        "deployment-deleted",
        [
            V(
                delete_object("deployments", "shop-api", namespace="shop", group="apps", user=ALICE),
                {DD, DU},
                "deployment deleted",
            )
        ],
        [
            V(
                delete_object(
                    "deployments", "shop-api", namespace="shop", group="apps", user=ALICE, code=403
                ),
                {DU},
                "403 Forbidden",
            ),
            V(
                delete_object("deployments", "shop-api", namespace="shop", group="apps", code=404),
                set(),
                "404 NotFound",
            ),
        ],
        ["user=alice", "deployment=shop-api", "ns=shop", "resp=200"],
    )
)

# --- namespaces, service accounts, secrets ---------------------------------------------------------

NC, ND = "K8s Namespace Created", "K8s Namespace Deleted"
_ns_body = {"spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
_ns = create_object("namespaces", "xmr-pool", body=_ns_body)
case(
    Case(
        "Create Disallowed Namespace",
        "disallowed-namespace",
        [
            V(_ns, {"Create Disallowed Namespace", NC}, "namespace not in allowed_namespaces"),
            V(
                create_object("namespaces", "xmr-pool-2", body=_ns_body, user=ALICE, code=403),
                {"Create Disallowed Namespace", DU},
                "RBAC denied the create: no name is recorded, and the rule does not check success",
            ),
        ],
        [
            V(delete_object("namespaces", "xmr-pool"), {ND}, "a delete, not a create"),
            V(
                create_object("namespaces", "kube-public", body=_ns_body, code=409),
                set(),
                "a namespace in allowed_namespaces (409 AlreadyExists)",
            ),
        ],
        ["user=kubernetes-admin", "ns=xmr-pool", "resource=namespaces"],
    )
)
case(
    Case(
        NC,
        "namespace-created",
        [
            V(
                create_object("namespaces", "team-a", body=_ns_body),
                {NC, "Create Disallowed Namespace"},
                "namespace created",
            )
        ],
        [
            V(
                create_object("namespaces", "team-a", body=_ns_body, code=409),
                {"Create Disallowed Namespace"},
                "409 AlreadyExists",
            ),
            V(audit("get", "namespaces", name="team-a", namespace="team-a"), set(), "a get, not a create"),
        ],
        ["namespace=team-a", "resource=namespaces", "resp=201"],
    )
)
case(
    Case(
        ND,
        "namespace-deleted",
        [V(delete_object("namespaces", "team-a", user=ALICE), {ND, DU}, "namespace deleted")],
        [V(delete_object("namespaces", "team-a", user=ARGO), set(), "deleted by a system: user")],
        ["user=alice", "namespace=team-a", "resp=200"],
    )
)

SAC, SAD = "K8s Serviceaccount Created", "K8s Serviceaccount Deleted"
SAK = "Service Account Created in Kube Namespace"
case(
    Case(
        SAK,
        "kube-namespace-serviceaccount",
        [
            V(
                create_object("serviceaccounts", "backup-operator", namespace="kube-system"),
                {SAK, SAC},
                "unknown service account in kube-system",
            )
        ],
        [
            V(
                create_object("serviceaccounts", "coredns", namespace="kube-system"),
                {SAC},
                "coredns is known",
            ),
            V(
                create_object("serviceaccounts", "backup-operator", namespace="shop"),
                {SAC},
                "not a kube namespace",
            ),
            V(
                create_object(
                    "serviceaccounts", "backup-operator", namespace="kube-public", user=ARGO, code=403
                ),
                set(),
                "403 Forbidden: not created",
            ),
        ],
        ["serviceaccount=backup-operator", "ns=kube-system", "resource=serviceaccounts"],
    )
)
case(
    Case(
        SAC,
        "serviceaccount-created",
        [
            V(
                create_object("serviceaccounts", "shop-api", namespace="shop", user=ARGO),
                {SAC},
                "service account created",
            )
        ],
        [
            V(
                create_object("serviceaccounts", "shop-api", namespace="shop", user=ARGO, code=409),
                set(),
                "409 AlreadyExists",
            ),
            V(
                create_object("serviceaccounts", "shop-api", namespace="shop", user=ARGO, code=403),
                set(),
                "403 Forbidden",
            ),
        ],
        ["serviceaccount=shop-api", "ns=shop", "resp=201"],
    )
)
case(
    Case(
        SAD,
        "serviceaccount-deleted",
        [V(delete_object("serviceaccounts", "shop-api", namespace="shop"), {SAD}, "service account deleted")],
        [
            V(
                delete_object("serviceaccounts", "shop-api", namespace="shop", code=404),
                set(),
                "404 NotFound",
            ),
            V(
                audit(
                    "patch",
                    "serviceaccounts",
                    name="shop-api",
                    namespace="shop",
                    request={"automountServiceAccountToken": False},
                ),
                set(),
                "a patch, not a delete",
            ),
        ],
        ["serviceaccount=shop-api", "ns=shop"],
    )
)

SEC, SED = "K8s Secret Created", "K8s Secret Deleted"
SGS, SGU = "K8s Secret Get Successfully", "K8s Secret Get Unsuccessfully Tried"
_secret_body = {"data": {"password": "czNjcjN0LXBhc3N3MHJk"}, "type": "Opaque"}
case(
    Case(
        SEC,
        "secret-created",
        [
            V(
                create_object(
                    "secrets",
                    "db-credentials",
                    namespace="payments",
                    body=_secret_body,
                    user=ALICE,
                    level_metadata=True,
                ),
                {SEC, DU},
                "secret created (Metadata level, as policies log secrets)",
            )
        ],
        [
            V(
                create_object(
                    "secrets",
                    "bootstrap-token-abcdef",
                    namespace="kube-system",
                    body=_secret_body,
                    level_metadata=True,
                ),
                set(),
                "kube-system is excluded",
            ),
            V(
                create_object(
                    "secrets", "db-credentials", namespace="payments", user=ARGO, level_metadata=True
                ),
                set(),
                "system: users are excluded",
            ),
        ],
        ["user=alice", "secret=db-credentials", "ns=payments", "resp=201"],
    )
)
case(
    Case(
        SED,
        "secret-deleted",
        [V(delete_object("secrets", "db-credentials", namespace="payments"), {SED}, "secret deleted")],
        [
            V(
                delete_object("secrets", "db-credentials", namespace="payments", user=ARGO),
                set(),
                "system: user",
            ),
            V(
                delete_object("secrets", "bootstrap-token-abcdef", namespace="kube-system"),
                set(),
                "kube-system is excluded",
            ),
        ],
        ["secret=db-credentials", "ns=payments"],
    )
)
_get = audit("get", "secrets", name="db-credentials", namespace="payments", user=ALICE)
case(
    Case(
        SGS,
        "secret-get",
        [V(_get, {SGS, DU}, "secret read")],
        [
            V(
                audit("get", "secrets", name="db-credentials", namespace="payments", user=ALICE, code=403),
                {SGU, DU},
                "403: the other rule fires",
            ),
            V(audit("list", "secrets", namespace="payments", user=ARGO), set(), "list is not get"),
        ],
        ["user=alice", "secret=db-credentials", "ns=payments", "resp=200", "decision=allow"],
    )
)
case(
    Case(
        SGU,
        "secret-get-denied",
        [
            V(
                audit("get", "secrets", name="cloud-creds", namespace="kube-system", user=ARGO, code=403),
                {SGU},
                "secret read forbidden",
            )
        ],
        [V(audit("get", "secrets", name="cloud-creds", namespace="kube-system", user=ARGO), {SGS}, "200")],
        [
            "user=system:serviceaccount:argocd:argocd-application-controller",
            "secret=cloud-creds",
            "ns=kube-system",
            "resp=403",
            "decision=forbid",
        ],
    )
)

# --- RBAC --------------------------------------------------------------------------------------

RC, RD = "K8s Role Created", "K8s Role Deleted"
CRC, CRD = "K8s ClusterRole Created", "K8s ClusterRole Deleted"
RBC, RBD = "K8s RoleBinding Created", "K8s RoleBinding Deleted"
CRBC, CRBD = "K8s ClusterRoleBinding Created", "K8s ClusterRoleBinding Deleted"
WILD, WRITE, EXEC = (
    "ClusterRole With Wildcard Created",
    "ClusterRole With Write Privileges Created",
    "ClusterRole With Pod Exec Created",
)
_read_rules = [{"verbs": ["get", "list", "watch"], "apiGroups": [""], "resources": ["pods", "services"]}]


def _role(
    resource: str,
    name: str,
    rules: list[dict[str, Any]],
    *,
    ns: str | None = None,
    user: User = ADMIN,
    code: int | None = None,
) -> dict[str, Any]:
    return create_object(
        resource, name, namespace=ns, group=RBAC, body=role_body(rules), user=user, code=code
    )


case(
    Case(
        WILD,
        "wildcard-clusterrole",
        [
            V(
                _role(
                    "clusterroles", "superuser", [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
                ),
                {WILD, CRC},
                "verbs and resources *",
            ),
            V(
                _role(
                    "roles",
                    "all-deployments",
                    [{"verbs": ["*"], "apiGroups": ["apps"], "resources": ["deployments"]}],
                    ns="shop",
                ),
                {WILD, RC},
                "verbs * in a namespaced role",
            ),
            V(
                _role(
                    "clusterroles",
                    "reader-all",
                    [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["*"]}],
                ),
                {WILD, CRC},
                "resources * only",
            ),
            V(
                _role(
                    "clusterroles",
                    "do-all",
                    [
                        {"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]},
                        {"verbs": ["*"], "apiGroups": ["apps"], "resources": ["deployments"]},
                    ],
                ),
                {WILD, CRC},
                "verbs * in the second rule",
            ),
        ],
        [V(_role("clusterroles", "pod-reader", _read_rules), {CRC}, "explicit read verbs")],
        [
            "user=kubernetes-admin",
            "role=superuser",
            "resource=clusterroles",
            'rules=({"verbs":["*"],"apiGroups":["*"],"resources":["*"]})',
        ],
    )
)
case(
    Case(
        WRITE,
        "write-role",
        [
            V(
                _role(
                    "roles",
                    "deployer",
                    [
                        {
                            "verbs": ["get", "list", "create", "update", "patch"],
                            "apiGroups": ["apps"],
                            "resources": ["deployments"],
                        }
                    ],
                    ns="shop",
                ),
                {WRITE, RC},
                "create/update/patch",
            )
        ],
        [V(_role("roles", "viewer", _read_rules, ns="shop"), {RC}, "read only")],
        ["role=deployer", "resource=roles", '"resources":["deployments"]'],
    )
)
case(
    Case(
        EXEC,
        "pod-exec-role",
        [
            V(
                _role(
                    "clusterroles",
                    "pod-shell",
                    [{"verbs": ["get", "create"], "apiGroups": [""], "resources": ["pods", "pods/exec"]}],
                    user=ALICE,
                ),
                {EXEC, WRITE, CRC, DU},
                "pods/exec with create",
            )
        ],
        [
            V(
                _role(
                    "clusterroles",
                    "pod-logs",
                    [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods", "pods/log"]}],
                    user=ALICE,
                ),
                {CRC, DU},
                "pods/log only",
            )
        ],
        ["user=alice", "role=pod-shell", '"pods/exec"'],
    )
)
_sys_patch = audit(
    "patch",
    "clusterroles",
    name="system:aggregate-to-edit",
    group=RBAC,
    user=ALICE,
    request={"rules": [{"verbs": ["*"], "apiGroups": [""], "resources": ["secrets"]}]},
)
SYS = "System ClusterRole Modified/Deleted"
case(
    Case(
        SYS,
        "system-clusterrole",
        [
            V(_sys_patch, {SYS, DU}, "patch of a system: cluster role"),
            V(delete_object("clusterroles", "system:node-proxier", group=RBAC), {SYS, CRD}, "delete"),
        ],
        [
            V(
                audit(
                    "patch", "clusterroles", name="system:coredns", group=RBAC, request={"rules": _read_rules}
                ),
                set(),
                "system:coredns is excluded",
            ),
            V(audit("get", "clusterroles", name="system:aggregate-to-edit", group=RBAC), set(), "a get"),
        ],
        ["user=alice", "role=system:aggregate-to-edit", "resource=clusterroles", "ns=<NA>", "action=patch"],
    )
)
case(
    Case(
        RC,
        "role-created",
        [
            V(
                _role(
                    "roles",
                    "config-reader",
                    [{"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]}],
                    ns="payments",
                ),
                {RC},
                "role created",
            )
        ],
        [
            V(
                _role(
                    "roles",
                    "config-reader",
                    [{"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"]}],
                    ns="payments",
                    code=409,
                ),
                set(),
                "409 AlreadyExists",
            )
        ],
        [
            "role=config-reader",
            "ns=payments",
            'rules=({"verbs":["get"],"apiGroups":[""],"resources":["configmaps"]})',
            "resp=201",
        ],
    )
)
case(
    Case(
        RD,
        "role-deleted",
        [V(delete_object("roles", "config-reader", namespace="payments", group=RBAC), {RD}, "role deleted")],
        [
            V(
                delete_object("rolebindings", "config-reader", namespace="payments", group=RBAC),
                {RBD},
                "a role binding deleted, not a role",
            ),
            V(
                delete_object(
                    "roles", "config-reader", namespace="payments", group=RBAC, user=ARGO, code=403
                ),
                set(),
                "403 Forbidden",
            ),
        ],
        ["role=config-reader", "ns=payments", "resource=roles"],
    )
)
case(
    Case(
        CRC,
        "clusterrole-created",
        [
            V(
                _role(
                    "clusterroles",
                    "node-viewer",
                    [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["nodes"]}],
                ),
                {CRC},
                "cluster role created",
            )
        ],
        [
            V(
                _role(
                    "clusterroles",
                    "node-viewer",
                    [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["nodes"]}],
                    user=ALICE,
                    code=403,
                ),
                {DU},
                "403 Forbidden",
            ),
            V(
                _role(
                    "roles",
                    "node-viewer",
                    [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}],
                    ns="shop",
                ),
                {RC},
                "a namespaced role",
            ),
        ],
        ["role=node-viewer", "resource=clusterroles", "resp=201"],
    )
)
case(
    Case(
        CRD,
        "clusterrole-deleted",
        [V(delete_object("clusterroles", "node-viewer", group=RBAC), {CRD}, "cluster role deleted")],
        [V(delete_object("clusterroles", "node-viewer", group=RBAC, code=404), set(), "404 NotFound")],
        ["role=node-viewer", "resource=clusterroles"],
    )
)
_sa_subject = [{"kind": "ServiceAccount", "name": "shop-api", "namespace": "shop"}]
_user_subject = [{"kind": "User", "apiGroup": RBAC, "name": "mallory@example.com"}]
case(
    Case(
        RBC,
        "rolebinding-created",
        [
            V(
                create_object(
                    "rolebindings",
                    "shop-api-config-reader",
                    namespace="shop",
                    group=RBAC,
                    body=binding_body("Role", "config-reader", _sa_subject),
                ),
                {RBC},
                "role binding created",
            )
        ],
        [
            V(
                create_object(
                    "rolebindings",
                    "shop-api-config-reader",
                    namespace="shop",
                    group=RBAC,
                    body=binding_body("Role", "config-reader", _sa_subject),
                    code=409,
                ),
                set(),
                "409 AlreadyExists",
            ),
            V(
                create_object(
                    "clusterrolebindings",
                    "shop-api-config-reader",
                    group=RBAC,
                    body=binding_body("ClusterRole", "config-reader", _sa_subject),
                ),
                {CRBC},
                "a cluster role binding",
            ),
        ],
        [
            "binding=shop-api-config-reader",
            "ns=shop",
            "role=config-reader",
            'subjects=({"kind":"ServiceAccount","name":"shop-api","namespace":"shop"})',
        ],
    )
)
case(
    Case(
        RBD,
        "rolebinding-deleted",
        [
            V(
                delete_object(
                    "rolebindings", "shop-api-config-reader", namespace="shop", group=RBAC, user=ALICE
                ),
                {RBD, DU},
                "role binding deleted",
            )
        ],
        [
            V(
                delete_object(
                    "rolebindings",
                    "shop-api-config-reader",
                    namespace="shop",
                    group=RBAC,
                    user=ALICE,
                    code=403,
                ),
                {DU},
                "403 Forbidden",
            ),
            V(
                audit("get", "rolebindings", name="shop-api-config-reader", namespace="shop", group=RBAC),
                set(),
                "a get, not a delete",
            ),
        ],
        ["user=alice", "binding=shop-api-config-reader", "ns=shop"],
    )
)
_crb_admin = create_object(
    "clusterrolebindings",
    "mallory-admin",
    group=RBAC,
    user=ALICE,
    body=binding_body("ClusterRole", "cluster-admin", _user_subject),
)
case(
    Case(
        "Attach to cluster-admin Role",
        "cluster-admin-binding",
        [V(_crb_admin, {"Attach to cluster-admin Role", CRBC, DU}, "roleRef cluster-admin")],
        [
            V(
                create_object(
                    "clusterrolebindings",
                    "mallory-view",
                    group=RBAC,
                    user=ALICE,
                    body=binding_body("ClusterRole", "view", _user_subject),
                ),
                {CRBC, DU},
                "roleRef view",
            )
        ],
        [
            "user=alice",
            'subject=({"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"mallory@example.com"})',
        ],
    )
)
case(
    Case(
        CRBC,
        "clusterrolebinding-created",
        [
            V(
                create_object(
                    "clusterrolebindings",
                    "node-viewers",
                    group=RBAC,
                    body=binding_body(
                        "ClusterRole", "node-viewer", [{"kind": "Group", "apiGroup": RBAC, "name": "sre"}]
                    ),
                ),
                {CRBC},
                "cluster role binding created",
            )
        ],
        [
            V(
                audit(
                    "update",
                    "clusterrolebindings",
                    name="node-viewers",
                    group=RBAC,
                    request=binding_body("ClusterRole", "node-viewer", []),
                ),
                set(),
                "an update",
            ),
            V(
                create_object(
                    "clusterrolebindings",
                    "node-viewers",
                    group=RBAC,
                    user=ARGO,
                    code=403,
                    body=binding_body("ClusterRole", "node-viewer", []),
                ),
                set(),
                "403 Forbidden",
            ),
        ],
        ["binding=node-viewers", "role=node-viewer", '"kind":"Group"'],
    )
)
case(
    Case(
        CRBD,
        "clusterrolebinding-deleted",
        [V(delete_object("clusterrolebindings", "node-viewers", group=RBAC), {CRBD}, "deleted")],
        [
            V(
                delete_object("clusterrolebindings", "node-viewers", group=RBAC, code=404),
                set(),
                "404 NotFound",
            ),
            V(
                delete_object("rolebindings", "node-viewers", namespace="shop", group=RBAC),
                {RBD},
                "a namespaced role binding",
            ),
        ],
        ["binding=node-viewers", "resource=clusterrolebindings"],
    )
)

# --- nodes -------------------------------------------------------------------------------------

_NODES = """
- macro: allow_all_k8s_nodes
  condition: (k8s_audit_never_true)
  override:
    condition: replace

- list: allowed_k8s_nodes
  items: [cp-1, worker-1, worker-2]
  override:
    items: replace
"""
_node_body: dict[str, Any] = {
    "metadata": {
        "labels": {"kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux"},
        "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
    },
    "spec": {},
    "status": {
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "nodeInfo": {"kubeletVersion": "v1.31.2", "containerRuntimeVersion": "containerd://1.7.23"},
    },
}


def _node(name: str, denied: str | None = None) -> dict[str, Any]:
    """A kubelet registering its Node; ``denied``: why an admission policy rejected it (403)."""
    body = copy.deepcopy(_node_body)
    body["metadata"] = {"name": name, **body["metadata"]}
    body["metadata"]["labels"]["kubernetes.io/hostname"] = name
    return create_object(
        "nodes", name, body=body, user=node_user(name), code=403 if denied else None, admission=denied
    )


def _vap_denied(why: str) -> str:
    return (
        "ValidatingAdmissionPolicy 'node-registration' with binding 'node-registration' denied request: "
        + why
    )


JOINED = "Untrusted Node Successfully Joined the Cluster"
TRIED = "Untrusted Node Unsuccessfully Tried to Join the Cluster"
case(
    Case(
        JOINED,
        "untrusted-node-joined",
        [V(_node("rogue-7"), {JOINED}, "node not in allowed_k8s_nodes registers")],
        [
            V(_node("worker-2"), set(), "an allowed node"),
            V(
                _node("rogue-8", _vap_denied("node name is not in the inventory")),
                {TRIED},
                "registration forbidden",
            ),
        ],
        ["user=system:node:rogue-7", "node=rogue-7", "resource=nodes"],
        overrides=_NODES,
    )
)
case(
    Case(
        TRIED,
        "untrusted-node-denied",
        [
            V(
                _node("rogue-9", _vap_denied("node name is not in the inventory")),
                {TRIED},
                "registration forbidden",
            )
        ],
        [
            V(
                _node("worker-1", _vap_denied("label node-role.kubernetes.io/control-plane is reserved")),
                set(),
                "an allowed node",
            )
        ],
        ["user=system:node:rogue-9", "node=rogue-9", "reason=Forbidden"],
        overrides=_NODES,
    )
)


# ---------------------------------------------------------------------------------------------
# JSON Lines files
# ---------------------------------------------------------------------------------------------


def case_path(c: Case) -> Path:
    """The JSON Lines file holding a case's events."""
    return GOLDEN_DIR / f"{c.slug}.jsonl"


def jsonl_text(variants: list[Variant]) -> str:
    """Events as the API server's log backend writes them: one compact JSON object per line."""
    return "".join(json.dumps(v.event, separators=(",", ":")) + "\n" for v in variants)


def write_files() -> None:
    """Write every case's file, and remove files no case writes."""
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    for c in CASES:
        case_path(c).write_text(jsonl_text(c.variants))
    for stale in set(GOLDEN_DIR.glob("*.jsonl")) - {case_path(c) for c in CASES}:
        stale.unlink()


if __name__ == "__main__":
    write_files()
    print(f"wrote {len(CASES)} files to {GOLDEN_DIR}")
