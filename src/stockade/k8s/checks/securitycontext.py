"""The security context: privilege escalation, the user and groups a container runs as, its root
file system, /proc masking, SELinux options and sysctls."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from stockade.k8s.catalogue import Context, Violation, check
from stockade.k8s.checks._pod import (
    APP_CONTAINERS,
    container_sc,
    effective,
    pod_of,
    pod_sc,
    sc_path,
    user_namespaced,
    windows,
)
from stockade.k8s.objects import K8sObject

#: PSS baseline "SELinux": allowed seLinuxOptions.type values (policy v1.31)
SELINUX_TYPES: Final = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)

#: PSS baseline "Sysctls": the safe set (check_sysctls.go, policy v1.32)
SAFE_SYSCTLS: Final = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
    }
)

#: run-as-high-uid: the lowest UID that cannot collide with a node account (Checkov CKV_K8S_40)
HIGH_UID: Final = 10000


@check(
    "allow-privilege-escalation",
    severity="MEDIUM",
    title="Privilege escalation not disabled",
    description=(
        "Unless allowPrivilegeEscalation is false, a process can gain more privileges than its "
        "parent (setuid binaries, file capabilities): no_new_privs is not set."
    ),
    remediation="Set securityContext.allowPrivilegeEscalation: false in every container.",
    fix="securityContext:\n  allowPrivilegeEscalation: false\n",
    controls=("pss:restricted:privilege-escalation",),
    nsa=True,
    cis=("5.2.6",),
)
def allow_privilege_escalation(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """Containers (all lists) whose allowPrivilegeEscalation is not explicitly false (Windows pods
    are exempt)."""
    pod = pod_of(obj, ctx)
    if pod is None or windows(pod):
        return
    for c in pod.containers():
        sc = container_sc(c)
        value = sc.get("allowPrivilegeEscalation")
        if value is not False:
            where = sc_path(c, "allowPrivilegeEscalation") if "securityContext" in c.body else c.path
            said = "true" if value is True else "not set"
            yield Violation(f"container {c.name!r}: allowPrivilegeEscalation is {said}, must be false", where)


@check(
    "run-as-non-root",
    severity="MEDIUM",
    title="Container may run as root",
    description=(
        "Without runAsNonRoot: true the kubelet starts the image's user, root for most images; a "
        "root process is one kernel bug or one misconfiguration away from the node."
    ),
    remediation="Set securityContext.runAsNonRoot: true on the pod (or on every container).",
    fix="securityContext:\n  runAsNonRoot: true\n  runAsUser: 10001\n",
    controls=("pss:restricted:run-as-non-root",),
    nsa=True,
    cis=("5.2.7",),
)
def run_as_non_root(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """runAsNonRoot false anywhere, or a container that neither sets it true nor inherits true from
    the pod (relaxed for user-namespaced pods, hostUsers: false)."""
    pod = pod_of(obj, ctx)
    if pod is None or user_namespaced(pod):
        return
    pod_value = pod_sc(pod).get("runAsNonRoot")
    if pod_value is False:
        yield Violation("the pod sets runAsNonRoot=false", pod.at("securityContext", "runAsNonRoot"))
    for c in pod.containers():
        own = container_sc(c).get("runAsNonRoot")
        if own is False:
            yield Violation(f"container {c.name!r} sets runAsNonRoot=false", sc_path(c, "runAsNonRoot"))
        elif own is None and pod_value is not True:
            _, where = effective(pod, c, "runAsNonRoot")
            yield Violation(f"pod or container {c.name!r} must set runAsNonRoot=true", where)


@check(
    "run-as-user-root",
    severity="HIGH",
    title="Container runs as UID 0",
    description="runAsUser: 0 runs the container as root, whatever the image says.",
    remediation="Set runAsUser to a non-zero UID (or remove it and set runAsNonRoot: true).",
    fix="securityContext:\n  runAsUser: 10001\n",
    controls=("pss:restricted:run-as-user",),
    nsa=True,
    cis=("5.2.7",),
)
def run_as_user_root(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """runAsUser 0 on the pod or any container (relaxed for user-namespaced pods)."""
    pod = pod_of(obj, ctx)
    if pod is None or user_namespaced(pod):
        return
    if pod_sc(pod).get("runAsUser") == 0:
        yield Violation("the pod sets runAsUser=0", pod.at("securityContext", "runAsUser"))
    for c in pod.containers():
        if container_sc(c).get("runAsUser") == 0:
            yield Violation(f"container {c.name!r} sets runAsUser=0", sc_path(c, "runAsUser"))


@check(
    "run-as-high-uid",
    severity="LOW",
    title="Container UID not above the node's accounts",
    description=(
        "A container UID below 10000 can be the UID of a node account: a process that escapes "
        "acts as that user on the node. A user-namespaced pod (hostUsers: false) passes: its UIDs "
        "are mapped to an unprivileged range of the node."
    ),
    remediation="Set runAsUser to 10000 or more (pod or container).",
    fix="securityContext:\n  runAsUser: 10001\n",
)
def run_as_high_uid(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """Containers whose effective runAsUser is unset or below 10000 (Checkov CKV_K8S_40 looks at
    ``containers`` only, so do we); none in a user-namespaced pod, as Checkov."""
    pod = pod_of(obj, ctx)
    if pod is None or user_namespaced(pod):
        return
    for c in pod.containers(("containers",)):
        uid, where = effective(pod, c, "runAsUser")
        if not isinstance(uid, int) or uid < HIGH_UID:
            said = "not set" if uid is None else str(uid)
            yield Violation(f"container {c.name!r} runAsUser is {said}, should be >= {HIGH_UID}", where)


@check(
    "run-as-group-root",
    severity="LOW",
    title="Container runs with the root group",
    description=(
        "GID 0 as primary group, supplemental group or fsGroup gives the process the root "
        "group's access to files, on the node too after an escape."
    ),
    remediation="Use non-zero runAsGroup, fsGroup and supplementalGroups.",
    fix="securityContext:\n  runAsGroup: 10001\n  fsGroup: 10001\n",
    nsa=True,
)
def run_as_group_root(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """runAsGroup 0 (pod or container), fsGroup 0, or 0 among supplementalGroups."""
    pod = pod_of(obj, ctx)
    if pod is None:
        return
    psc = pod_sc(pod)
    for key in ("runAsGroup", "fsGroup"):
        if psc.get(key) == 0:
            yield Violation(f"the pod sets {key}=0", pod.at("securityContext", key))
    groups = psc.get("supplementalGroups")
    if isinstance(groups, list):
        for i, g in enumerate(groups):
            if g == 0:
                yield Violation(
                    "the pod has supplemental group 0", pod.at("securityContext", "supplementalGroups", i)
                )
    for c in pod.containers():
        if container_sc(c).get("runAsGroup") == 0:
            yield Violation(f"container {c.name!r} sets runAsGroup=0", sc_path(c, "runAsGroup"))


@check(
    "read-only-root-filesystem",
    severity="LOW",
    title="Root file system is writable",
    description=(
        "A writable root file system lets an intruder drop tools and change the program's files; "
        "a read-only one with emptyDir volumes for scratch space stops that."
    ),
    remediation="Set securityContext.readOnlyRootFilesystem: true; mount an emptyDir where it writes.",
    fix="securityContext:\n  readOnlyRootFilesystem: true\n",
    nsa=True,
)
def read_only_root_filesystem(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """Containers and init containers without readOnlyRootFilesystem: true."""
    pod = pod_of(obj, ctx)
    if pod is None:
        return
    for c in pod.containers(APP_CONTAINERS):
        if container_sc(c).get("readOnlyRootFilesystem") is not True:
            where = sc_path(c, "readOnlyRootFilesystem") if "securityContext" in c.body else c.path
            yield Violation(f"container {c.name!r} has a writable root file system", where)


@check(
    "proc-mount",
    severity="HIGH",
    title="Unmasked /proc",
    description=(
        "procMount other than Default removes the masks over /proc (kcore, sysrq-trigger, ...) "
        "that keep a container from the node's kernel interfaces."
    ),
    remediation="Remove securityContext.procMount or set it to Default.",
    fix="securityContext:\n  procMount: Default\n",
    controls=("pss:baseline:proc-mount",),
    nsa=True,
)
def proc_mount(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """procMount other than undefined or Default, in every container list (the baseline allows it
    in a user-namespaced pod, hostUsers: false)."""
    pod = pod_of(obj, ctx)
    if pod is None or user_namespaced(pod):
        return
    for c in pod.containers():
        value = container_sc(c).get("procMount")
        if value is not None and value != "Default":
            yield Violation(f"container {c.name!r} sets procMount={value}", sc_path(c, "procMount"))


def _selinux_problems(opts: object) -> list[str]:
    if not isinstance(opts, dict):
        return []
    out = []
    if opts.get("type") is not None and opts.get("type") not in SELINUX_TYPES:
        out.append(f"type {opts.get('type')}")
    out += [f"{key} may not be set" for key in ("user", "role") if opts.get(key)]
    return out


@check(
    "selinux-options",
    severity="MEDIUM",
    title="Custom SELinux options",
    description=(
        "An SELinux type other than the container types (spc_t, unconfined_t, ...) or a custom "
        "user or role lifts the SELinux confinement of the container."
    ),
    remediation=(
        "Leave seLinuxOptions.type unset or container_t, container_init_t, container_kvm_t, "
        "container_engine_t; do not set user or role."
    ),
    fix="securityContext:\n  seLinuxOptions:\n    level: s0:c123,c456\n",
    controls=("pss:baseline:selinux",),
    nsa=True,
)
def selinux_options(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """seLinuxOptions (pod and every container) with a forbidden type, or a user or role."""
    pod = pod_of(obj, ctx)
    if pod is None:
        return
    problems = _selinux_problems(pod_sc(pod).get("seLinuxOptions"))
    if problems:
        yield Violation(
            f"the pod sets seLinuxOptions {', '.join(problems)}", pod.at("securityContext", "seLinuxOptions")
        )
    for c in pod.containers():
        problems = _selinux_problems(container_sc(c).get("seLinuxOptions"))
        if problems:
            yield Violation(
                f"container {c.name!r} sets seLinuxOptions {', '.join(problems)}",
                sc_path(c, "seLinuxOptions"),
            )


@check(
    "unsafe-sysctls",
    severity="HIGH",
    title="Unsafe sysctl",
    description=(
        "A sysctl outside the namespaced safe set changes the kernel for the whole node, or "
        "disables a protection, for every pod on it."
    ),
    remediation=(
        "Set only the safe sysctls (kernel.shm_rmid_forced, net.ipv4.ip_local_port_range, "
        "net.ipv4.ip_unprivileged_port_start, net.ipv4.tcp_syncookies, net.ipv4.ping_group_range, "
        "net.ipv4.ip_local_reserved_ports, the tcp_keepalive and tcp_fin_timeout ones, "
        "tcp_rmem, tcp_wmem); tune the others on the node."
    ),
    fix="securityContext:\n  sysctls:\n    - name: net.ipv4.ip_local_port_range\n      value: 1024 65535\n",
    controls=("pss:baseline:sysctls",),
    nsa=True,
)
def unsafe_sysctls(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """spec.securityContext.sysctls names outside the PSS safe list."""
    pod = pod_of(obj, ctx)
    if pod is None:
        return
    sysctls = pod_sc(pod).get("sysctls")
    if not isinstance(sysctls, list):
        return
    for i, s in enumerate(sysctls):
        name = s.get("name") if isinstance(s, dict) else None
        if name not in SAFE_SYSCTLS:
            yield Violation(
                f"the pod sets unsafe sysctl {name}", pod.at("securityContext", "sysctls", i, "name")
            )
