"""The Pod Security Standards edge cases, as k8s.io/pod-security-admission decides them: pod-level
values inherited by containers, undefined versus empty versus false, initContainers and
ephemeralContainers, Windows pods, user-namespaced pods (hostUsers: false), the AppArmor
annotations and the v1.32 safe sysctls; then the edges of the checks beyond PSS."""

from __future__ import annotations

from typing import Any

import pytest

from k8s_pods import Body, ctr, pod, sc
from stockade.k8s.catalogue import evaluate, get_check, select
from stockade.k8s.objects import K8sObject

RD = {"type": "RuntimeDefault"}
WINDOWS = {"name": "windows"}


def fields(check_id: str, body: Body) -> list[str]:
    """The fields check `check_id` flags in `body` (empty: it passes)."""
    return [f.field for f in evaluate([K8sObject(body)], [get_check(check_id)])]


def _hostpath(path: str, read_only: bool = True) -> Body:
    mount = {"name": "h", "mountPath": "/h", "readOnly": read_only}
    return pod(ctr(volumeMounts=[mount]), volumes=[{"name": "h", "hostPath": {"path": path}}])


CASES: list[tuple[str, Body, list[str]]] = [
    # runAsNonRoot: pod true covers undefined containers, not containers that say false
    ("run-as-non-root", pod(ctr(), securityContext={"runAsNonRoot": True}), []),
    (
        "run-as-non-root",
        pod(sc(runAsNonRoot=False), securityContext={"runAsNonRoot": True}),
        ["spec.containers[0].securityContext.runAsNonRoot"],
    ),
    ("run-as-non-root", pod(sc(runAsNonRoot=True), sc(runAsNonRoot=True)), []),
    (
        "run-as-non-root",
        pod(sc(runAsNonRoot=True), initContainers=[ctr("init")]),
        ["spec.initContainers[0]"],
    ),
    (
        "run-as-non-root",
        pod(sc(runAsNonRoot=True), ephemeralContainers=[{"name": "debug", "image": "busybox"}]),
        ["spec.ephemeralContainers[0]"],
    ),
    (
        "run-as-non-root",
        pod(sc(runAsNonRoot=True), securityContext={"runAsNonRoot": False}),
        ["spec.securityContext.runAsNonRoot"],
    ),
    ("run-as-non-root", pod(ctr(), hostUsers=False), []),  # relaxed in a user namespace
    # runAsUser: only an explicit 0 fails; undefined passes
    ("run-as-user-root", pod(ctr()), []),
    (
        "run-as-user-root",
        pod(sc(runAsUser=1000), securityContext={"runAsUser": 0}),
        ["spec.securityContext.runAsUser"],
    ),
    ("run-as-user-root", pod(sc(runAsUser=0), hostUsers=False), []),
    # run-as-high-uid (not PSS): a user namespace maps the UIDs away from the node's accounts
    ("run-as-high-uid", pod(sc(runAsUser=1000)), ["spec.containers[0].securityContext.runAsUser"]),
    ("run-as-high-uid", pod(sc(runAsUser=1000), hostUsers=False), []),
    # seccomp restricted: pod-level valid covers undefined containers, not bad ones
    ("seccomp-profile-missing", pod(ctr(), securityContext={"seccompProfile": RD}), []),
    (
        "seccomp-profile-missing",
        pod(sc(seccompProfile={"type": "Unconfined"}), securityContext={"seccompProfile": RD}),
        ["spec.containers[0].securityContext.seccompProfile.type"],
    ),
    (
        "seccomp-profile-missing",
        pod(sc(seccompProfile={"type": "Localhost", "localhostProfile": "p.json"}), initContainers=[sc(seccompProfile=RD)]),
        [],
    ),
    (
        "seccomp-profile-missing",
        pod(sc(seccompProfile=RD), ephemeralContainers=[{"name": "debug", "image": "busybox"}]),
        ["spec.ephemeralContainers[0]"],
    ),
    (
        "seccomp-profile-missing",
        pod(sc(seccompProfile=RD), securityContext={"seccompProfile": {"type": "Unconfined"}}),
        ["spec.securityContext.seccompProfile.type"],
    ),
    ("seccomp-profile-missing", pod(ctr(), os=WINDOWS), []),
    # a profile set with no type is not undefined: PSS reads its type "" as a bad value
    ("seccomp-unconfined", pod(sc(seccompProfile={})), ["spec.containers[0].securityContext.seccompProfile.type"]),
    ("seccomp-profile-missing", pod(sc(seccompProfile={})), ["spec.containers[0].securityContext.seccompProfile.type"]),
    ("apparmor-profile", pod(ctr(), securityContext={"appArmorProfile": {}}), ["spec.securityContext.appArmorProfile.type"]),
    # empty securityContext and empty lists are undefined values
    ("run-as-non-root", pod(sc()), ["spec.containers[0].securityContext.runAsNonRoot"]),
    ("unsafe-sysctls", pod(securityContext={"sysctls": []}), []),
    ("capabilities-restricted", pod(sc(capabilities={"drop": ["ALL"], "add": []})), []),
    # seccomp baseline: undefined passes, Unconfined anywhere fails
    ("seccomp-unconfined", pod(ctr()), []),
    (
        "seccomp-unconfined",
        pod(ctr(), initContainers=[sc(seccompProfile={"type": "Unconfined"})]),
        ["spec.initContainers[0].securityContext.seccompProfile.type"],
    ),
    # capabilities: the baseline compares names as written; restricted needs "ALL" exactly
    ("capabilities-baseline", pod(sc(capabilities={"add": []})), []),
    ("capabilities-baseline", pod(sc(capabilities={"add": ["CAP_CHOWN"]})), ["spec.containers[0].securityContext.capabilities.add[0]"]),
    ("capabilities-baseline", pod(ctr(), ephemeralContainers=[sc(capabilities={"add": ["NET_ADMIN"]})]), ["spec.ephemeralContainers[0].securityContext.capabilities.add[0]"]),
    ("capabilities-drop-all", pod(sc(capabilities={"drop": ["all"]})), ["spec.containers[0].securityContext.capabilities.drop"]),
    ("capabilities-drop-all", pod(ctr(), initContainers=[ctr("init")]), ["spec.containers[0]", "spec.initContainers[0]"]),
    ("capabilities-drop-all", pod(ctr(), os=WINDOWS), []),
    ("capabilities-restricted", pod(sc(capabilities={"drop": ["ALL"]})), []),
    ("cap-net-raw", pod(sc(capabilities={"drop": ["ALL"]})), []),
    ("cap-net-raw", pod(sc(capabilities={"drop": ["ALL"], "add": ["NET_RAW"]})), ["spec.containers[0].securityContext.capabilities.add[0]"]),
    ("cap-sys-admin", pod(sc(capabilities={"add": ["cap_sys_admin"]})), ["spec.containers[0].securityContext.capabilities.add[0]"]),
    # privilege escalation: undefined fails, every container list counts, Windows is exempt
    ("allow-privilege-escalation", pod(sc(allowPrivilegeEscalation=False), initContainers=[ctr("i")]), ["spec.initContainers[0]"]),
    ("allow-privilege-escalation", pod(sc(allowPrivilegeEscalation=False), ephemeralContainers=[sc(allowPrivilegeEscalation=False)]), []),
    ("allow-privilege-escalation", pod(ctr(), os=WINDOWS), []),
    # AppArmor: field on pod or container, and the annotations
    ("apparmor-profile", pod(ctr(), securityContext={"appArmorProfile": {"type": "Unconfined"}}), ["spec.securityContext.appArmorProfile.type"]),
    ("apparmor-profile", pod(ctr(), meta={"annotations": {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}}), ["metadata.annotations.container.apparmor.security.beta.kubernetes.io/app"]),
    ("apparmor-profile", pod(ctr(), meta={"annotations": {"container.apparmor.security.beta.kubernetes.io/app": "localhost/k8s-nginx"}}), []),
    ("apparmor-profile", pod(ctr(), meta={"annotations": {"container.apparmor.security.beta.kubernetes.io/app": ""}}), []),
    ("apparmor-profile", pod(ctr(), meta={"annotations": {"container.apparmor.security.beta.kubernetes.io/app": "runtime/default"}}), []),
    # SELinux: empty type and the v1.31 container_engine_t pass; user or role set fails anywhere
    ("selinux-options", pod(sc(seLinuxOptions={"type": ""}), sc(seLinuxOptions={"type": "container_engine_t"})), []),
    ("selinux-options", pod(ctr(), securityContext={"seLinuxOptions": {"user": "system_u"}}), ["spec.securityContext.seLinuxOptions"]),
    ("selinux-options", pod(ctr(), initContainers=[sc(seLinuxOptions={"role": "sysadm_r"})]), ["spec.initContainers[0].securityContext.seLinuxOptions"]),
    # procMount: Unmasked is allowed by the baseline in a user-namespaced pod
    ("proc-mount", pod(sc(procMount="Unmasked"), hostUsers=False), []),
    ("proc-mount", pod(ctr(), ephemeralContainers=[sc(procMount="Unmasked")]), ["spec.ephemeralContainers[0].securityContext.procMount"]),
    # sysctls: the v1.32 safe list
    ("unsafe-sysctls", pod(securityContext={"sysctls": [{"name": "net.ipv4.tcp_rmem", "value": "4096 87380 6291456"}, {"name": "net.ipv4.ip_local_reserved_ports", "value": "30000"}]}), []),
    ("unsafe-sysctls", pod(securityContext={"sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]}), ["spec.securityContext.sysctls[0].name"]),
    # volume types: image allowed (1.33); a volume with no source is restricted
    ("volume-types", pod(volumes=[{"name": "e", "emptyDir": {}}, {"name": "p", "projected": {"sources": []}}]), []),
    ("volume-types", pod(volumes=[{"name": "bare"}]), ["spec.volumes[0]"]),
    ("volume-types", pod(volumes=[{"name": "h", "hostPath": {"path": "/tmp"}}]), ["spec.volumes[0].hostPath"]),
    # host ports: 0 is undefined; every container list counts
    ("host-port", pod(ctr(ports=[{"containerPort": 80, "hostPort": 0}])), []),
    ("host-port", pod(ctr(), initContainers=[ctr("i", ports=[{"containerPort": 53, "hostPort": 53}])]), ["spec.initContainers[0].ports[0].hostPort"]),
    # HostProcess: false passes, container-level true fails
    ("host-process", pod(sc(windowsOptions={"hostProcess": False})), []),
    ("host-process", pod(ctr(), initContainers=[sc(windowsOptions={"hostProcess": True})]), ["spec.initContainers[0].securityContext.windowsOptions.hostProcess"]),
    # host namespaces: false and undefined pass
    ("host-network", pod(hostNetwork=False), []),
    # not PSS: runtime sockets (the files and the directories holding them), sensitive paths
    ("runtime-socket-mount", _hostpath("/var/run"), ["spec.volumes[0].hostPath"]),
    ("runtime-socket-mount", _hostpath("/run/crio/crio.sock/"), ["spec.volumes[0].hostPath"]),
    ("runtime-socket-mount", _hostpath("/var/lib/docker"), []),
    ("sensitive-host-path", _hostpath("/"), ["spec.volumes[0].hostPath"]),
    ("sensitive-host-path", _hostpath("/etc/ssl"), ["spec.volumes[0].hostPath"]),
    ("sensitive-host-path", _hostpath("/etcetera"), []),
    ("writable-host-path", _hostpath("/data", read_only=False), ["spec.containers[0].volumeMounts[0].readOnly"]),
    # not PSS: literal secrets, but not references, file paths or $(VAR) expansions
    ("secrets-in-env", pod(ctr(env=[{"name": "DB_PASSWORD_FILE", "value": "/run/secrets/db"}, {"name": "API_TOKEN", "value": "$(TOKEN)"}])), []),
    ("secrets-in-env", pod(ctr(env=[{"name": "github_token", "value": "ghp_x"}])), ["spec.containers[0].env[0].value"]),
    ("secrets-in-env", pod(ctr(envFrom=[{"configMapRef": {"name": "c"}}, {"secretRef": {"name": "s"}}])), ["spec.containers[0].envFrom[1].secretRef"]),
    ("probe-host", pod(ctr(lifecycle={"postStart": {"httpGet": {"port": 80, "host": "10.0.0.2"}}})), ["spec.containers[0].lifecycle.postStart.httpGet.host"]),
    ("probe-host", pod(ctr(), initContainers=[ctr("i", startupProbe={"tcpSocket": {"port": 53, "host": "10.0.0.1"}})]), ["spec.initContainers[0].startupProbe.tcpSocket.host"]),
    ("privileged-container", pod(ctr(), ephemeralContainers=[sc(privileged=True)]), ["spec.ephemeralContainers[0].securityContext.privileged"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("check_id", "body", "expected"), CASES, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(CASES)]
)
def test_pss_edge_case(check_id: str, body: Body, expected: list[str]) -> None:
    assert sorted(fields(check_id, body)) == sorted(expected)


def test_a_fully_restricted_pod_passes_every_pss_check() -> None:
    hardened: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
    }
    body = pod(
        sc(**hardened),
        initContainers=[sc(**hardened)],
        securityContext={"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": RD},
        volumes=[{"name": "tmp", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "c"}}],
    )
    pss = [c.id for c in select("pss-restricted")]
    found = evaluate([K8sObject(body)], [get_check(i) for i in pss])
    assert found == []
    # the same pod without its pod-level securityContext fails exactly the inherited controls
    body["spec"].pop("securityContext")
    failed = {f.check for f in evaluate([K8sObject(body)], [get_check(i) for i in pss])}
    assert failed == {"run-as-non-root", "seccomp-profile-missing"}
