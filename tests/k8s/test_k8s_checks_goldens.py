"""Golden objects for every check of the catalogue: one that passes it and one that fails it at a
known field, the failing one also as a Deployment and a CronJob (the finding on the line of the
field). A check registered without goldens here fails `test_every_check_has_goldens`."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from k8s_pods import IMAGE, Body, ctr, moved, pod, sc, wrap
from stockade.k8s.catalogue import Context, all_checks, evaluate, get_check
from stockade.k8s.checks.images import configure_registries
from stockade.k8s.finding import K8sFinding, dotted
from stockade.k8s.objects import K8sObject, Path

C0: Path = ("spec", "containers", 0)
SC0: Path = (*C0, "securityContext")
PSC: Path = ("spec", "securityContext")
DIGEST = "sha256:" + "a" * 64


@dataclass(frozen=True)
class Golden:
    """`ok` passes the check, `bad` fails it at `path` (the first object is the one checked, the
    others are the rest of the scan); `setup` configures the scan's context."""

    ok: list[Body]
    bad: list[Body]
    path: Path
    setup: Callable[[Context], None] | None = None
    wrap: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def _hostpath(path: str, read_only: bool | None = True) -> Body:
    mount: Body = {"name": "h", "mountPath": "/host"}
    if read_only is not None:
        mount["readOnly"] = read_only
    return pod(ctr(volumeMounts=[mount]), volumes=[{"name": "h", "hostPath": {"path": path}}])


def _registries(ctx: Context) -> None:
    configure_registries(ctx, ["registry.example.com"])


NETPOL = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "web", "namespace": "app"},
    "spec": {"podSelector": {"matchLabels": {"app": "web"}}},
}
DB_NETPOL = {
    **NETPOL,
    "spec": {"podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["db"]}]}},
}
PSP = {"apiVersion": "policy/v1beta1", "kind": "PodSecurityPolicy", "metadata": {"name": "psp"}}

GOLDENS: dict[str, Golden] = {
    "host-process": Golden(
        [pod(securityContext={"windowsOptions": {"hostProcess": False}})],
        [pod(securityContext={"windowsOptions": {"hostProcess": True}})],
        (*PSC, "windowsOptions", "hostProcess"),
    ),
    "host-network": Golden([pod(hostNetwork=False)], [pod(hostNetwork=True)], ("spec", "hostNetwork")),
    "host-pid": Golden([pod(hostPID=False)], [pod(hostPID=True)], ("spec", "hostPID")),
    "host-ipc": Golden([pod(hostIPC=False)], [pod(hostIPC=True)], ("spec", "hostIPC")),
    "privileged-container": Golden(
        [pod(sc(privileged=False))], [pod(sc(privileged=True))], (*SC0, "privileged")
    ),
    "capabilities-baseline": Golden(
        [pod(sc(capabilities={"add": ["CHOWN", "NET_BIND_SERVICE", "SYS_CHROOT"]}))],
        [pod(sc(capabilities={"add": ["CHOWN", "NET_RAW"]}))],
        (*SC0, "capabilities", "add", 1),
    ),
    "host-path-volume": Golden(
        [pod(volumes=[{"name": "d", "emptyDir": {}}])],
        [_hostpath("/data")],
        ("spec", "volumes", 0, "hostPath"),
    ),
    "host-port": Golden(
        [pod(ctr(ports=[{"containerPort": 80, "hostPort": 0}]))],
        [pod(ctr(ports=[{"containerPort": 80}, {"containerPort": 81, "hostPort": 8081}]))],
        (*C0, "ports", 1, "hostPort"),
    ),
    "apparmor-profile": Golden(
        [pod(sc(appArmorProfile={"type": "Localhost", "localhostProfile": "k8s-app"}))],
        [pod(sc(appArmorProfile={"type": "Unconfined"}))],
        (*SC0, "appArmorProfile", "type"),
    ),
    "selinux-options": Golden(
        [pod(sc(seLinuxOptions={"type": "container_t", "level": "s0:c1,c2"}))],
        [pod(sc(seLinuxOptions={"type": "spc_t"}))],
        (*SC0, "seLinuxOptions"),
    ),
    "proc-mount": Golden(
        [pod(sc(procMount="Default"))], [pod(sc(procMount="Unmasked"))], (*SC0, "procMount")
    ),
    "seccomp-unconfined": Golden(
        [pod(securityContext={"seccompProfile": {"type": "RuntimeDefault"}})],
        [pod(securityContext={"seccompProfile": {"type": "Unconfined"}})],
        (*PSC, "seccompProfile", "type"),
    ),
    "unsafe-sysctls": Golden(
        [pod(securityContext={"sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}]})],
        [pod(securityContext={"sysctls": [{"name": "kernel.msgmax", "value": "65536"}]})],
        (*PSC, "sysctls", 0, "name"),
    ),
    "volume-types": Golden(
        [
            pod(
                volumes=[
                    {"name": "c", "persistentVolumeClaim": {"claimName": "c"}},
                    {"name": "i", "image": {"reference": IMAGE}},
                ]
            )
        ],
        [pod(volumes=[{"name": "n", "nfs": {"server": "nfs", "path": "/"}}])],
        ("spec", "volumes", 0, "nfs"),
    ),
    "allow-privilege-escalation": Golden(
        [pod(sc(allowPrivilegeEscalation=False))],
        [pod(sc(allowPrivilegeEscalation=True))],
        (*SC0, "allowPrivilegeEscalation"),
    ),
    "run-as-non-root": Golden(
        [pod(securityContext={"runAsNonRoot": True})],
        [pod(sc(runAsUser=1000))],
        (*SC0, "runAsNonRoot"),
    ),
    "run-as-user-root": Golden([pod(sc(runAsUser=1000))], [pod(sc(runAsUser=0))], (*SC0, "runAsUser")),
    "seccomp-profile-missing": Golden(
        [pod(securityContext={"seccompProfile": {"type": "RuntimeDefault"}})],
        [pod(sc(runAsNonRoot=True))],
        (*SC0, "seccompProfile"),
    ),
    "capabilities-drop-all": Golden(
        [pod(sc(capabilities={"drop": ["ALL"]}))],
        [pod(sc(capabilities={"drop": ["NET_RAW"]}))],
        (*SC0, "capabilities", "drop"),
    ),
    "capabilities-restricted": Golden(
        [pod(sc(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}))],
        [pod(sc(capabilities={"drop": ["ALL"], "add": ["CHOWN"]}))],
        (*SC0, "capabilities", "add", 0),
    ),
    "writable-host-path": Golden(
        [_hostpath("/var/log", read_only=True)],
        [_hostpath("/var/log", read_only=None)],
        (*C0, "volumeMounts", 0),
    ),
    "runtime-socket-mount": Golden(
        [_hostpath("/var/log")],
        [_hostpath("/run/containerd/containerd.sock")],
        ("spec", "volumes", 0, "hostPath"),
    ),
    "sensitive-host-path": Golden(
        [_hostpath("/var/log/app")],
        [_hostpath("/etc/kubernetes/")],
        ("spec", "volumes", 0, "hostPath"),
    ),
    "read-only-root-filesystem": Golden(
        [pod(sc(readOnlyRootFilesystem=True))],
        [pod(sc(readOnlyRootFilesystem=False))],
        (*SC0, "readOnlyRootFilesystem"),
    ),
    "cap-sys-admin": Golden(
        [pod(sc(capabilities={"add": ["CHOWN"]}))],
        [pod(sc(capabilities={"add": ["CHOWN", "SYS_ADMIN"]}))],
        (*SC0, "capabilities", "add", 1),
    ),
    "cap-net-raw": Golden(
        [pod(sc(capabilities={"drop": ["NET_RAW"]}))],
        [pod(sc(capabilities={"drop": ["CHOWN"]}))],
        (*SC0, "capabilities", "drop"),
    ),
    "capabilities-dangerous": Golden(
        [pod(sc(capabilities={"add": ["NET_BIND_SERVICE"]}))],
        [pod(sc(capabilities={"add": ["SYS_PTRACE"]}))],
        (*SC0, "capabilities", "add", 0),
    ),
    "run-as-high-uid": Golden(
        [pod(securityContext={"runAsUser": 10001})],
        [pod(securityContext={"runAsUser": 1000})],
        (*PSC, "runAsUser"),
    ),
    "run-as-group-root": Golden(
        [pod(securityContext={"runAsGroup": 3000, "fsGroup": 2000, "supplementalGroups": [4000]})],
        [pod(securityContext={"runAsGroup": 3000, "fsGroup": 0})],
        (*PSC, "fsGroup"),
    ),
    "cpu-limits": Golden(
        [pod(ctr(resources={"limits": {"cpu": "1"}}))],
        [pod(ctr(resources={"limits": {"memory": "1Gi"}}))],
        (*C0, "resources", "limits"),
    ),
    "memory-limits": Golden(
        [pod(ctr(resources={"limits": {"memory": "1Gi"}}))],
        [pod(ctr(resources={"limits": {"cpu": "1"}}))],
        (*C0, "resources", "limits"),
    ),
    "cpu-requests": Golden(
        [pod(ctr(resources={"requests": {"cpu": "100m"}}))],
        [pod(ctr(resources={"limits": {"memory": "1Gi"}}))],
        (*C0, "resources"),
    ),
    "memory-requests": Golden(
        [pod(ctr(resources={"requests": {"memory": "64Mi"}}))],
        [pod(ctr(resources={"requests": {"cpu": "100m"}}))],
        (*C0, "resources", "requests"),
    ),
    "image-tag-latest": Golden(
        [pod(ctr(image="nginx:1.25"))], [pod(ctr(image="nginx:latest"))], (*C0, "image")
    ),
    "image-digest": Golden(
        [pod(ctr(image=f"nginx@{DIGEST}"))], [pod(ctr(image="nginx:1.25"))], (*C0, "image")
    ),
    "image-pull-policy": Golden(
        [pod(ctr(image="nginx:1.25", imagePullPolicy="Always"))],
        [pod(ctr(image="nginx:1.25", imagePullPolicy="IfNotPresent"))],
        (*C0, "imagePullPolicy"),
    ),
    "allowed-registries": Golden(
        [pod(ctr(image="registry.example.com/team/app:2"))],
        [pod(ctr(image="docker.io/library/nginx:1.25"))],
        (*C0, "image"),
        setup=_registries,
    ),
    "automount-service-account-token": Golden(
        [pod(automountServiceAccountToken=False)],
        [pod(automountServiceAccountToken=True)],
        ("spec", "automountServiceAccountToken"),
    ),
    "default-service-account": Golden(
        [pod(serviceAccountName="app")], [pod(serviceAccountName="default")], ("spec", "serviceAccountName")
    ),
    "secrets-in-env": Golden(
        [pod(ctr(env=[{"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}]))],
        [pod(ctr(env=[{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]))],
        (*C0, "env", 0, "valueFrom", "secretKeyRef"),
    ),
    "liveness-probe": Golden(
        [pod(ctr(livenessProbe={"httpGet": {"path": "/healthz", "port": 8080}}))], [pod()], C0
    ),
    "readiness-probe": Golden([pod(ctr(readinessProbe={"tcpSocket": {"port": 8080}}))], [pod()], C0),
    "probe-host": Golden(
        [pod(ctr(livenessProbe={"httpGet": {"path": "/", "port": 80, "host": ""}}))],
        [pod(ctr(livenessProbe={"httpGet": {"path": "/", "port": 80, "host": "169.254.169.254"}}))],
        (*C0, "livenessProbe", "httpGet", "host"),
    ),
    "default-namespace": Golden(
        [pod(meta={"namespace": "app"})], [pod(meta={"namespace": "default"})], ("metadata", "namespace")
    ),
    "network-policy-coverage": Golden(
        [pod(meta={"labels": {"app": "web"}}), NETPOL],
        [pod(meta={"labels": {"app": "web"}}), DB_NETPOL],
        ("metadata", "labels"),
    ),
    "psp-permissive": Golden(
        [
            {
                **PSP,
                "spec": {
                    "privileged": False,
                    "allowPrivilegeEscalation": False,
                    "volumes": ["configMap", "secret"],
                    "runAsUser": {"rule": "MustRunAsNonRoot"},
                },
            }
        ],
        [{**PSP, "spec": {"privileged": True, "allowPrivilegeEscalation": False}}],
        ("spec", "privileged"),
        wrap=False,
    ),
}

KINDS = ("Pod", "Deployment", "CronJob")
LINE = 42


def _run(
    check_id: str, golden: Golden, bodies: list[Body], kind: str, lines: dict[Path, int] | None = None
) -> list[K8sFinding]:
    objs = [K8sObject(wrap(b, kind), file="g.yaml", line=1, lines=lines or {}) if i == 0 else K8sObject(b)
            for i, b in enumerate(bodies)]  # fmt: skip
    ctx = Context(objs)
    if golden.setup is not None:
        golden.setup(ctx)
    found = evaluate(objs, [get_check(check_id)], ctx)
    assert not ctx.errors, ctx.errors
    return [f for f in found if f.file == "g.yaml"]


def test_every_check_has_goldens() -> None:
    # RBAC checks (helper D's module) have their goldens beside them
    ids = {c.id for c in all_checks() if c.fn.__module__ != "stockade.k8s.checks.rbac"}
    assert ids == set(GOLDENS), (ids - set(GOLDENS), set(GOLDENS) - ids)


@pytest.mark.parametrize("check_id", sorted(GOLDENS))
def test_golden_pass_and_fail(check_id: str) -> None:
    golden = GOLDENS[check_id]
    for kind in KINDS if golden.wrap else ("Pod",):
        assert _run(check_id, golden, golden.ok, kind) == [], (check_id, kind)
        path = moved(golden.path, kind)
        found = _run(check_id, golden, golden.bad, kind, {path: LINE})
        assert found, (check_id, kind)
        at = [f for f in found if f.field == dotted(path)]
        assert at, (check_id, kind, [f.field for f in found])
        assert at[0].line == LINE and at[0].check == check_id
        assert at[0].message and at[0].remediation and at[0].severity


def test_requests_default_to_limits_and_digests_need_no_pull() -> None:
    # Kubernetes sets an unset request to the limit; a digest names one image whatever is cached
    for check_id, ok, bad in (
        ("cpu-requests", {"limits": {"cpu": "1"}}, {"limits": {"memory": "1Gi"}}),
        ("memory-requests", {"limits": {"memory": "1Gi"}}, {"limits": {"cpu": "1"}}),
    ):
        assert _run(check_id, Golden([], [], ()), [pod(ctr(resources=ok))], "Deployment") == []
        assert _run(check_id, Golden([], [], ()), [pod(ctr(resources=bad))], "Deployment")
    pinned = pod(ctr(image="nginx@sha256:" + "a" * 64, imagePullPolicy="IfNotPresent"))
    assert _run("image-pull-policy", Golden([], [], ()), [pinned], "CronJob") == []


def test_allowed_registries_is_silent_unless_configured() -> None:
    bad = GOLDENS["allowed-registries"].bad
    assert _run("allowed-registries", Golden([], [], ()), bad, "Pod") == []
    official = Golden([], [], (), setup=lambda ctx: configure_registries(ctx, ["docker.io/library"]))
    assert _run("allowed-registries", official, [pod(ctr(image="nginx:1.25"))], "Pod") == []
    assert _run("allowed-registries", official, [pod(ctr(image="evil/nginx:1.25"))], "Pod")


def test_network_policy_coverage_is_silent_at_admission() -> None:
    obj = K8sObject(GOLDENS["network-policy-coverage"].bad[0])
    assert evaluate([obj], [get_check("network-policy-coverage")], Context([obj], complete=False)) == []


#: fixes that replace the object rather than patch it: PSP gives way to Pod Security Admission,
#: secrets in env to a secret volume (the env entry is removed, not patched)
REPLACING_FIXES = {"psp-permissive", "secrets-in-env"}
CONTAINER_KEYS = {"securityContext", "ports", "resources", "image", "imagePullPolicy", "livenessProbe",
                  "readinessProbe", "volumeMounts", "lifecycle"}  # fmt: skip


def _patched(bodies: list[Body], fix: Body) -> list[list[Body]]:
    """The scans after applying `fix` to the first object, one per place a fix can go
    (securityContext: the container's or the pod's); a whole object is added to the scan in the
    object's namespace, as `kubectl apply -n` would."""
    if "apiVersion" in fix:
        added = copy.deepcopy(fix)
        added["metadata"].setdefault("namespace", bodies[0]["metadata"].get("namespace"))
        return [[*bodies, added]]
    out = []
    for sc_level in ("container", "pod"):
        body = copy.deepcopy(bodies[0])
        spec, container = body["spec"], body["spec"]["containers"][0]
        for key, value in fix.items():
            if key in ("spec", "metadata"):
                body[key].update(value)
            elif key == "volumes":
                spec["volumes"] = value
            elif key == "securityContext" and sc_level == "pod":
                spec.setdefault("securityContext", {}).update(value)
            elif key in CONTAINER_KEYS:
                if isinstance(value, dict) and isinstance(container.get(key), dict):
                    container[key].update(value)
                else:
                    container[key] = value
            else:
                raise AssertionError(f"no place for {key!r} of a fix")
        out.append([body, *bodies[1:]])
    return out


@pytest.mark.parametrize("check_id", sorted(set(GOLDENS) - REPLACING_FIXES))
def test_the_fix_snippet_passes(check_id: str) -> None:
    fix = yaml.safe_load(get_check(check_id).fix)
    assert isinstance(fix, dict), check_id
    golden = GOLDENS[check_id]
    results = [_run(check_id, golden, scan, "Pod") for scan in _patched(golden.bad, fix)]
    assert any(r == [] for r in results), (check_id, results)


def test_every_fix_snippet_is_yaml() -> None:
    for c in all_checks():
        assert isinstance(yaml.safe_load(c.fix), dict), c.id


def test_a_context_reused_for_other_objects_sees_their_own_pods() -> None:
    # the pod template is found once per object and scan; a context reused for new objects (an
    # object freed, its id reused) must not hand out the old object's template
    ctx = Context([])
    check = [get_check("host-pid")]
    for flag in (True, False, True, False):
        obj = K8sObject(pod(hostPID=flag))
        assert bool(evaluate([obj], check, ctx)) is flag
