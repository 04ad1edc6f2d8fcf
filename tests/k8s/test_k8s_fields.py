"""The ka.* / jevt.* fields: what each extracts from an audit.k8s.io Event, as Falco's k8saudit and
json plugins do (plugins/k8saudit/pkg/k8saudit/extract.go, plugins/json/pkg/json/json.go)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from helpers import SHARED_DATA, need_file
from stockade.model.fields import ArgKind, FieldType, all_fields, lookup
from stockade.model.k8s_audit_fields import image_repository, json_pointer

SHARED_AUDIT = SHARED_DATA / "k8s" / "audit" / "demo.log"

#: every field of the k8saudit plugin (fields.go), list-valued or not
PLUGIN_SCALARS = [
    "ka.auditid",
    "ka.stage",
    "ka.auth.decision",
    "ka.auth.reason",
    "ka.auth.openshift.decision",
    "ka.auth.openshift.username",
    "ka.validations.admission.policy.failure",
    "ka.security.pod.violations",
    "ka.user.name",
    "ka.impuser.name",
    "ka.verb",
    "ka.uri",
    "ka.uri.param",
    "ka.target.name",
    "ka.target.namespace",
    "ka.target.resource",
    "ka.target.subresource",
    "ka.target.pod.name",
    "ka.req.binding.role",
    "ka.req.binding.subject.has_name",
    "ka.req.configmap.name",
    "ka.req.configmap.obj",
    "ka.req.container.image",
    "ka.req.container.image.repository",
    "ka.req.pod.host_ipc",
    "ka.req.pod.host_network",
    "ka.req.container.host_network",
    "ka.req.pod.host_pid",
    "ka.req.container.privileged",
    "ka.req.pod.run_as_user",
    "ka.req.pod.run_as_group",
    "ka.req.pod.fs_group",
    "ka.req.service.type",
    "ka.req.volume.hostpath",
    "ka.resp.name",
    "ka.response.code",
    "ka.response.reason",
    "ka.useragent",
    "ka.cluster.name",
]
PLUGIN_LISTS = [
    "ka.user.groups",
    "ka.req.binding.subjects",
    "ka.req.binding.subjects.user_names",
    "ka.req.binding.subjects.serviceaccount_names",
    "ka.req.binding.subjects.serviceaccount_ns_names",
    "ka.req.binding.subjects.group_names",
    "ka.req.role.rules",
    "ka.req.role.rules.apiGroups",
    "ka.req.role.rules.nonResourceURLs",
    "ka.req.role.rules.verbs",
    "ka.req.role.rules.resources",
    "ka.req.pod.supplemental_groups",
    "ka.req.service.ports",
    "ka.req.pod.volumes.hostpath",
    "ka.req.pod.volumes.flexvolume_driver",
    "ka.req.pod.volumes.volume_type",
    "ka.sourceips",
]
CONTAINER_FIELDS = [
    "name",
    "image",
    "image.repository",
    "command",
    "args",
    "privileged",
    "allow_privilege_escalation",
    "read_only_fs",
    "run_as_user",
    "eff_run_as_user",
    "run_as_group",
    "eff_run_as_group",
    "proc_mount",
    "add_capabilities",
]
for _lst in ("containers", "initContainers", "ephemeralContainers"):
    PLUGIN_LISTS += [f"ka.req.pod.{_lst}.{f}" for f in CONTAINER_FIELDS]
    if _lst != "ephemeralContainers":
        PLUGIN_LISTS.append(f"ka.req.pod.{_lst}.host_port")
JSON_FIELDS = [
    "jevt.value",
    "jevt.obj",
    "jevt.rawtime",
    "jevt.time",
    "jevt.time.iso8601",
    "json.value",
    "json.obj",
    "json.rawtime",
]


def get(event: dict[str, Any], field: str) -> Any:
    name, _, arg = field.partition("[")
    spec = lookup(name)
    assert spec is not None, f"unknown field {name}"
    return spec.extractor(arg[:-1] if arg else None)(event)


POD_CREATE: dict[str, Any] = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "RequestResponse",
    "auditID": "0b7a0f32-3b0e-4c39-9a53-4c6a3e0d6c21",
    "stage": "ResponseComplete",
    "requestURI": "/api/v1/namespaces/shop/pods?fieldManager=kubectl-client-side-apply&fieldValidation=Strict",
    "verb": "create",
    "user": {"username": "kubernetes-admin", "groups": ["kubeadm:cluster-admins", "system:authenticated"]},
    "impersonatedUser": {"username": "alice", "groups": ["dev"]},
    "sourceIPs": ["10.0.12.7", "192.168.1.20"],
    "userAgent": "kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46",
    "objectRef": {"resource": "pods", "namespace": "shop", "name": "web", "apiVersion": "v1"},
    "responseStatus": {"metadata": {}, "code": 201},
    "requestObject": {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "volumes": [
                {"name": "sock", "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}},
                {"name": "cache", "emptyDir": {}},
                {"name": "logs", "hostPath": {"path": "/var/log/pods"}},
                {"name": "flex", "flexVolume": {"driver": "example.com/lvm", "fsType": "ext4"}},
            ],
            "initContainers": [
                {
                    "name": "setup",
                    "image": "busybox:1.36",
                    "command": ["sh", "-c"],
                    "args": ["chown 1000 /data"],
                    "securityContext": {"privileged": True, "runAsUser": 0},
                }
            ],
            "containers": [
                {
                    "name": "web",
                    "image": "registry.example.com:5000/shop/web:2.4.1",
                    "ports": [
                        {"containerPort": 8080, "protocol": "TCP"},
                        {"containerPort": 9090, "hostPort": 19090},
                    ],
                    "securityContext": {
                        "privileged": False,
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "runAsUser": 1000,
                        "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                    },
                },
                {
                    "name": "sidecar",
                    "image": "docker.io/envoyproxy/envoy@sha256:" + "ab" * 32,
                    "command": ["envoy", "-c", "/etc/envoy.yaml"],
                    "securityContext": {
                        "capabilities": {"add": ["NET_ADMIN", "SYS_TIME"]},
                        "procMount": "Unmasked",
                    },
                },
                {"name": "plain", "image": "nginx"},
            ],
            "hostNetwork": True,
            "hostPID": False,
            "securityContext": {
                "runAsUser": 2000,
                "runAsGroup": 3000,
                "fsGroup": 4000,
                "supplementalGroups": [5, 6],
            },
        },
    },
    "responseObject": {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "web", "uid": "9d1c"}},
    "requestReceivedTimestamp": "2026-11-20T09:30:01.123456Z",
    "stageTimestamp": "2026-11-20T09:30:01.234567Z",
    "annotations": {
        "authorization.k8s.io/decision": "allow",
        "authorization.k8s.io/reason": 'RBAC: allowed by ClusterRoleBinding "kubeadm:cluster-admins"',
        "pod-security.kubernetes.io/audit-violations": 'would violate PodSecurity "restricted:latest"',
        "cluster_name": "prod-eu-1",
    },
}


def test_every_plugin_field_is_registered_as_the_plugin_declares_it() -> None:
    ours = {f.name: f for f in all_fields() if f.source == "k8s_audit"}
    expected = set(PLUGIN_SCALARS) | set(PLUGIN_LISTS) | set(JSON_FIELDS)
    assert set(ours) == expected
    for name in PLUGIN_LISTS:
        assert ours[name].is_list, name
    for name in PLUGIN_SCALARS + JSON_FIELDS:
        assert not ours[name].is_list, name
    assert all(f.type is FieldType.STRING for f in ours.values())
    for name in ("ka.uri.param", "ka.req.volume.hostpath", "ka.req.binding.subject.has_name", "jevt.value"):
        assert ours[name].arg is ArgKind.KEY and ours[name].arg_required, name
    assert ours["ka.req.pod.containers.image"].arg is ArgKind.INDEX
    assert not ours["ka.req.pod.containers.image"].arg_required


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ka.auditid", "0b7a0f32-3b0e-4c39-9a53-4c6a3e0d6c21"),
        ("ka.stage", "ResponseComplete"),
        ("ka.auth.decision", "allow"),
        ("ka.auth.reason", 'RBAC: allowed by ClusterRoleBinding "kubeadm:cluster-admins"'),
        ("ka.auth.openshift.decision", None),
        ("ka.security.pod.violations", 'would violate PodSecurity "restricted:latest"'),
        ("ka.cluster.name", "prod-eu-1"),
        ("ka.user.name", "kubernetes-admin"),
        ("ka.user.groups", ["kubeadm:cluster-admins", "system:authenticated"]),
        ("ka.impuser.name", "alice"),
        ("ka.verb", "create"),
        ("ka.uri.param[fieldManager]", "kubectl-client-side-apply"),
        ("ka.uri.param[dryRun]", None),
        ("ka.target.name", "web"),
        ("ka.target.namespace", "shop"),
        ("ka.target.resource", "pods"),
        ("ka.target.subresource", None),
        ("ka.target.pod.name", "web"),
        ("ka.resp.name", "web"),
        ("ka.response.code", "201"),
        ("ka.response.reason", None),
        ("ka.useragent", "kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46"),
        ("ka.sourceips", ["10.0.12.7", "192.168.1.20"]),
        ("ka.sourceips[1]", ["192.168.1.20"]),
        ("ka.sourceips[2]", None),
        # pods: one value per container; flags are JSON text
        ("ka.req.pod.containers.name", ["web", "sidecar", "plain"]),
        (
            "ka.req.pod.containers.image",
            [
                "registry.example.com:5000/shop/web:2.4.1",
                "docker.io/envoyproxy/envoy@sha256:" + "ab" * 32,
                "nginx",
            ],
        ),
        ("ka.req.pod.containers.image[1]", ["docker.io/envoyproxy/envoy@sha256:" + "ab" * 32]),
        (
            "ka.req.pod.containers.image.repository",
            ["registry.example.com:5000/shop/web", "docker.io/envoyproxy/envoy", "nginx"],
        ),
        ("ka.req.container.image", "registry.example.com:5000/shop/web:2.4.1"),
        ("ka.req.container.image.repository", "registry.example.com:5000/shop/web"),
        ("ka.req.pod.containers.command", ["envoy -c /etc/envoy.yaml"]),
        ("ka.req.pod.containers.args", None),
        ("ka.req.pod.containers.privileged", ["false"]),  # containers that do not say are skipped
        ("ka.req.container.privileged", "false"),
        ("ka.req.pod.containers.allow_privilege_escalation", ["false"]),
        ("ka.req.pod.containers.read_only_fs", ["true"]),
        ("ka.req.pod.containers.run_as_user", ["1000"]),
        ("ka.req.pod.containers.eff_run_as_user", ["1000", "2000", "2000"]),
        ("ka.req.pod.containers.eff_run_as_group", ["3000", "3000", "3000"]),
        ("ka.req.pod.containers.proc_mount", ["Unmasked"]),
        ("ka.req.pod.containers.add_capabilities", ["NET_BIND_SERVICE", "NET_ADMIN", "SYS_TIME"]),
        ("ka.req.pod.containers.add_capabilities[1]", ["NET_ADMIN", "SYS_TIME"]),
        ("ka.req.pod.containers.host_port", ["8080", "19090"]),
        ("ka.req.pod.containers.host_port[2]", None),
        ("ka.req.pod.initContainers.name", ["setup"]),
        ("ka.req.pod.initContainers.privileged", ["true"]),
        ("ka.req.pod.initContainers.command", ["sh -c"]),
        ("ka.req.pod.initContainers.args", ["chown 1000 /data"]),
        ("ka.req.pod.initContainers.eff_run_as_user", ["0"]),
        ("ka.req.pod.ephemeralContainers.image", None),
        ("ka.req.pod.host_network", "true"),
        ("ka.req.container.host_network", "true"),
        ("ka.req.pod.host_pid", "false"),
        ("ka.req.pod.host_ipc", None),
        ("ka.req.pod.run_as_user", "2000"),
        ("ka.req.pod.run_as_group", "3000"),
        ("ka.req.pod.fs_group", "4000"),
        ("ka.req.pod.supplemental_groups", ["5", "6"]),
        ("ka.req.pod.volumes.hostpath", ["/var/run/docker.sock", "/var/log/pods"]),
        ("ka.req.pod.volumes.hostpath[2]", ["/var/log/pods"]),
        ("ka.req.pod.volumes.hostpath[1]", None),
        ("ka.req.pod.volumes.flexvolume_driver", ["example.com/lvm"]),
        ("ka.req.pod.volumes.volume_type", ["hostPath", "emptyDir", "hostPath", "flexVolume"]),
        ("ka.req.volume.hostpath[/var/run/docker.sock]", "true"),
        ("ka.req.volume.hostpath[/var/log/pods]", "true"),  # any volume, not only the first
        ("ka.req.volume.hostpath[/var/log]", "false"),
        ("ka.req.volume.hostpath[/var/log*]", "true"),
        ("ka.req.binding.subject.has_name[anyone]", "true"),
        ("ka.req.binding.subjects", None),
        ("ka.req.role.rules", None),
        ("ka.req.service.type", None),
        # jevt / json plugin
        ("jevt.value[/objectRef/name]", "web"),
        ("jevt.value[/requestObject/spec/containers/1/name]", "sidecar"),
        ("jevt.value[/requestObject/spec/containers/7/name]", None),
        ("jevt.value[/requestObject/spec/hostNetwork]", "true"),
        ("jevt.value[/responseStatus]", '{"metadata":{},"code":201}'),
        ("jevt.value[/annotations/authorization.k8s.io~1decision]", "allow"),
        ("jevt.value[/nope]", None),
        ("jevt.value[stage]", "ResponseComplete"),  # the leading / is optional, as in the plugin
        ("json.value[/verb]", "create"),
        ("jevt.rawtime", "1795167001234567000"),
        ("json.rawtime", "1795167001234567000"),
        ("jevt.time", "09:30:01.234567000"),
        ("jevt.time.iso8601", "2026-11-20T09:30:01.234567000Z"),
    ],
)
def test_pod_create_fields(field: str, value: Any) -> None:
    assert get(copy.deepcopy(POD_CREATE), field) == value


def test_jevt_obj_is_the_event_as_indented_json() -> None:
    text = get(POD_CREATE, "jevt.obj")
    assert text.startswith('{\n  "kind": "Event",\n  "apiVersion": "audit.k8s.io/v1",')
    assert json.loads(text) == POD_CREATE


def test_json_pointer_escapes() -> None:
    doc = {"a/b": {"m~n": [10, {"": "empty"}]}}
    assert json_pointer(doc, "/a~1b/m~0n/0") == 10
    assert json_pointer(doc, "/a~1b/m~0n/1/") == "empty"
    assert json_pointer(doc, "") is doc
    assert json_pointer(doc, "/a~1b/m~0n/-") is None
    assert json_pointer(doc, "/a/b") is None


def test_image_repository() -> None:
    assert image_repository("nginx") == "nginx"
    assert image_repository("nginx:1.27") == "nginx"
    assert image_repository("docker.io/falcosecurity/falco:0.39.2") == "docker.io/falcosecurity/falco"
    assert image_repository("localhost:5000/app") == "localhost:5000/app"
    assert image_repository("quay.io/x/y@sha256:abc") == "quay.io/x/y"
    assert image_repository("quay.io/x/y:1.0@sha256:abc") == "quay.io/x/y"


BINDING: dict[str, Any] = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "auditID": "5e2e",
    "stage": "ResponseComplete",
    "requestURI": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    "verb": "create",
    "objectRef": {"resource": "clusterrolebindings", "name": "ops", "apiGroup": "rbac.authorization.k8s.io"},
    "requestObject": {
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "ops"},
        "subjects": [
            {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"},
            {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "sre"},
            {"kind": "ServiceAccount", "name": "ci-bot", "namespace": "ci"},
            {"kind": "ServiceAccount", "name": "no-ns"},
        ],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
    },
    "stageTimestamp": "2026-11-20T09:30:01Z",
}

ROLE: dict[str, Any] = {
    "kind": "Event",
    "auditID": "77aa",
    "verb": "create",
    "objectRef": {"resource": "clusterroles", "name": "mixed"},
    "requestObject": {
        "rules": [
            {"apiGroups": [""], "resources": ["pods", "pods/exec"], "verbs": ["get", "create"]},
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]},
            {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
        ]
    },
}

SERVICE: dict[str, Any] = {
    "kind": "Event",
    "auditID": "91bc",
    "verb": "create",
    "requestObject": {
        "spec": {
            "type": "NodePort",
            "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}, {"port": 443, "name": "https"}],
        }
    },
}


@pytest.mark.parametrize(
    ("event", "field", "value"),
    [
        (
            BINDING,
            "ka.req.binding.subjects",
            [
                '{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"alice"}',
                '{"kind":"Group","apiGroup":"rbac.authorization.k8s.io","name":"sre"}',
                '{"kind":"ServiceAccount","name":"ci-bot","namespace":"ci"}',
                '{"kind":"ServiceAccount","name":"no-ns"}',
            ],
        ),
        (BINDING, "ka.req.binding.subjects.user_names", ["alice"]),
        (BINDING, "ka.req.binding.subjects.group_names", ["sre"]),
        (BINDING, "ka.req.binding.subjects.serviceaccount_names", ["ci-bot", "no-ns"]),
        (BINDING, "ka.req.binding.subjects.serviceaccount_ns_names", ["ci:ci-bot"]),
        (BINDING, "ka.req.binding.role", "cluster-admin"),
        (BINDING, "ka.target.pod.name", None),
        (ROLE, "ka.req.role.rules.verbs", ["get", "create", "*", "get"]),
        (ROLE, "ka.req.role.rules.verbs[1]", ["*"]),
        (ROLE, "ka.req.role.rules.resources", ["pods", "pods/exec", "deployments"]),
        (ROLE, "ka.req.role.rules.apiGroups", ["", "apps"]),
        (ROLE, "ka.req.role.rules.nonResourceURLs", ["/metrics"]),
        (ROLE, "ka.req.role.rules.resources[5]", None),
        (SERVICE, "ka.req.service.type", "NodePort"),
        (
            SERVICE,
            "ka.req.service.ports",
            ['{"port":80,"targetPort":8080,"nodePort":30080}', '{"port":443,"name":"https"}'],
        ),
        (SERVICE, "ka.req.service.ports[1]", ['{"port":443,"name":"https"}']),
        (SERVICE, "jevt.rawtime", None),  # no time at all
    ],
)
def test_rbac_and_service_fields(event: dict[str, Any], field: str, value: Any) -> None:
    assert get(event, field) == value


def test_role_rules_are_compact_json() -> None:
    rules = get(ROLE, "ka.req.role.rules")
    assert rules[0] == '{"apiGroups":[""],"resources":["pods","pods/exec"],"verbs":["get","create"]}'
    assert len(rules) == 3


def test_configmap_fields() -> None:
    ev = {
        "auditID": "1",
        "verb": "update",
        "objectRef": {"resource": "configmaps", "namespace": "default", "name": "app"},
        "requestObject": {"kind": "ConfigMap", "data": {"db.password": "x", "n": "1"}},
    }
    assert get(ev, "ka.req.configmap.name") == "app"
    assert get(ev, "ka.req.configmap.obj") == '{"db.password":"x","n":"1"}'


def test_exec_subresource() -> None:
    ev = {
        "auditID": "2",
        "stage": "ResponseStarted",
        "verb": "create",
        "requestURI": "/api/v1/namespaces/default/pods/web/exec?command=%2Fbin%2Fsh&command=-c&command=id+-u"
        "&container=web&stdin=true",
        "objectRef": {"resource": "pods", "namespace": "default", "name": "web", "subresource": "exec"},
        "responseObject": {"metadata": {"name": "ignored"}},
    }
    assert get(ev, "ka.uri.param[command]") == "/bin/sh"  # the first value, decoded
    assert get(ev, "ka.uri.param[container]") == "web"
    assert get(ev, "ka.target.subresource") == "exec"
    assert get(ev, "ka.target.pod.name") is None  # only for the pod itself, not a subresource


def test_missing_and_odd_shapes_are_missing_values() -> None:
    odd = {
        "auditID": "3",
        "user": "not-an-object",
        "requestObject": {"spec": {"containers": "nope", "volumes": [None, 3, {"hostPath": "x"}]}},
        "sourceIPs": None,
    }
    for field in (
        "ka.user.name",
        "ka.user.groups",
        "ka.req.pod.containers.image",
        "ka.req.pod.containers.privileged",
        "ka.req.pod.containers.eff_run_as_user",
        "ka.req.pod.volumes.hostpath",
        "ka.sourceips",
        "ka.req.pod.containers.image[x]",
        "ka.uri.param[a]",
        "jevt.value[/requestObject/spec/containers/0]",
    ):
        assert get(odd, field) is None, field
    assert get(odd, "ka.req.volume.hostpath[/x]") == "false"


def test_a_container_without_image_makes_images_missing() -> None:
    ev = {
        "auditID": "4",
        "requestObject": {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}},
    }
    assert get(ev, "ka.req.pod.containers.image") is None
    assert get(ev, "ka.req.pod.containers.image[0]") == ["x"]
    assert get(ev, "ka.req.pod.containers.name") == ["a", "b"]


def test_flat_dict_from_a_falco_alert_is_read_as_is() -> None:
    flat = {
        "ka.user.name": "alice",
        "ka.response.code": 403,
        "ka.req.pod.containers.image": "(nginx:1.27,busybox)",
        "ka.user.groups": ["dev", "system:authenticated"],
        "ka.uri.param[command]": "sh",
        "jevt.value[/stage]": "ResponseComplete",
        "ka.req.pod.host_network": True,
    }
    assert get(flat, "ka.user.name") == "alice"
    assert get(flat, "ka.response.code") == "403"
    assert get(flat, "ka.req.pod.containers.image") == ["nginx:1.27", "busybox"]
    assert get(flat, "ka.user.groups") == ["dev", "system:authenticated"]
    assert get(flat, "ka.uri.param[command]") == "sh"
    assert get(flat, "jevt.value[/stage]") == "ResponseComplete"
    assert get(flat, "ka.req.pod.host_network") == "true"
    assert get(flat, "ka.verb") is None


def test_real_audit_log() -> None:
    """The shared sample log (impersonated requests, API server 1.7 era)."""
    need_file(SHARED_AUDIT)
    events = [json.loads(line) for line in SHARED_AUDIT.read_text().splitlines() if line.strip()]
    first = events[0]
    assert get(first, "ka.user.name") == "system:admin"
    assert get(first, "ka.impuser.name") == "bob"
    assert get(first, "ka.response.code") == "403"
    assert get(first, "ka.response.reason") == "Forbidden"
    assert get(first, "ka.user.groups") == ["system:masters", "system:authenticated"]
    assert get(first, "ka.sourceips") == ["::1"]
    # an old event: only "timestamp" (the source normalises it; the fields read it too)
    assert get(first, "jevt.rawtime") == "1505159705000000000"
    uris = [get(e, "ka.uri.param[includeUninitialized]") for e in events]
    assert uris.count("true") == sum("includeUninitialized=true" in e["requestURI"] for e in events) > 0


def test_docs_list_every_field() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "k8s-audit.md").read_text()
    for f in all_fields():
        if f.source != "k8s_audit" or ".initContainers." in f.name or ".ephemeralContainers." in f.name:
            continue
        assert f"`{f.name}" in doc, f.name
