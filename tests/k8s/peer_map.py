"""Which checks of Checkov and Trivy are Stockade's, and why their verdicts differ where they do.

:data:`CHECKOV` and :data:`TRIVY` map a peer's check id to the Stockade check it shares (several
peer ids may map to one of ours: Trivy has three RBAC wildcard checks). Peer checks that are absent
have no Stockade counterpart on the same resource (Checkov's API-server flag checks, its graph
checks that flag the binding instead of the workload, Trivy's KSV117 privileged ports ...).

:data:`EXPLAINED` lists every difference the side-by-side run finds on the shared checks: which
tool, which of our checks, which side reports the failure alone, where (``file::Kind/name``
patterns), and why. tests/k8s/test_k8s_peers.py fails on a difference not listed and on an entry
no difference matches; docs/k8s-peers.md carries the same table.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Final, Literal

#: Checkov (3.3.x) CKV_K8S ids -> Stockade check ids
CHECKOV: Final[dict[str, str]] = {
    "CKV_K8S_1": "psp-permissive",  # PSP: hostPID
    "CKV_K8S_2": "psp-permissive",  # PSP: privileged
    "CKV_K8S_3": "psp-permissive",  # PSP: hostIPC
    "CKV_K8S_4": "psp-permissive",  # PSP: hostNetwork
    "CKV_K8S_5": "psp-permissive",  # PSP: allowPrivilegeEscalation
    "CKV_K8S_6": "psp-permissive",  # PSP: root containers
    "CKV_K8S_7": "psp-permissive",  # PSP: NET_RAW
    "CKV_K8S_24": "psp-permissive",  # PSP: capabilities allowed to be added
    "CKV_K8S_36": "psp-permissive",  # PSP: capabilities assigned by default
    "CKV_K8S_8": "liveness-probe",
    "CKV_K8S_9": "readiness-probe",
    "CKV_K8S_10": "cpu-requests",
    "CKV_K8S_11": "cpu-limits",
    "CKV_K8S_12": "memory-requests",
    "CKV_K8S_13": "memory-limits",
    "CKV_K8S_14": "image-tag-latest",
    "CKV_K8S_15": "image-pull-policy",
    "CKV_K8S_16": "privileged-container",
    "CKV_K8S_17": "host-pid",
    "CKV_K8S_18": "host-ipc",
    "CKV_K8S_19": "host-network",
    "CKV_K8S_20": "allow-privilege-escalation",
    "CKV_K8S_21": "default-namespace",
    "CKV_K8S_22": "read-only-root-filesystem",
    "CKV_K8S_23": "run-as-non-root",
    "CKV_K8S_25": "capabilities-restricted",  # any capability added
    "CKV_K8S_26": "host-port",
    "CKV_K8S_27": "runtime-socket-mount",  # docker.sock only
    "CKV_K8S_28": "cap-net-raw",
    "CKV_K8S_31": "seccomp-profile-missing",
    "CKV_K8S_35": "secrets-in-env",
    "CKV_K8S_37": "capabilities-drop-all",
    "CKV_K8S_38": "automount-service-account-token",
    "CKV_K8S_39": "cap-sys-admin",
    "CKV_K8S_40": "run-as-high-uid",
    "CKV_K8S_43": "image-digest",
    "CKV_K8S_49": "rbac-wildcard",
    "CKV_K8S_157": "rbac-escalate-bind-impersonate",  # bind
    "CKV_K8S_158": "rbac-escalate-bind-impersonate",  # escalate
}

#: Trivy (0.59, its embedded checks) KSV ids -> Stockade check ids
TRIVY: Final[dict[str, str]] = {
    "KSV001": "allow-privilege-escalation",
    "KSV002": "apparmor-profile",
    "KSV003": "capabilities-drop-all",
    "KSV005": "cap-sys-admin",
    "KSV006": "runtime-socket-mount",  # docker.sock only
    "KSV008": "host-ipc",
    "KSV009": "host-network",
    "KSV010": "host-pid",
    "KSV011": "cpu-limits",
    "KSV012": "run-as-non-root",
    "KSV013": "image-tag-latest",
    "KSV014": "read-only-root-filesystem",
    "KSV015": "cpu-requests",
    "KSV016": "memory-requests",
    "KSV017": "privileged-container",
    "KSV018": "memory-limits",
    "KSV020": "run-as-high-uid",
    "KSV022": "capabilities-baseline",
    "KSV023": "host-path-volume",
    "KSV024": "host-port",
    "KSV025": "selinux-options",
    "KSV026": "unsafe-sysctls",
    "KSV027": "proc-mount",
    "KSV028": "volume-types",
    "KSV030": "seccomp-profile-missing",
    "KSV036": "automount-service-account-token",
    "KSV041": "rbac-secrets-access",  # ClusterRole
    "KSV113": "rbac-secrets-access",  # Role
    "KSV044": "rbac-wildcard",  # verbs and resources
    "KSV045": "rbac-wildcard",  # verbs
    "KSV046": "rbac-wildcard",  # resources
    "KSV047": "rbac-nodes-proxy",
    "KSV048": "rbac-pod-create",  # create/update/delete workloads and pods
    "KSV053": "rbac-exec-attach",
    "KSV054": "rbac-exec-attach",
    "KSV103": "host-process",
    "KSV104": "seccomp-unconfined",
    "KSV105": "run-as-user-root",
    "KSV106": "capabilities-restricted",
    "KSV110": "default-namespace",
    "KSV111": "rbac-cluster-admin-binding",
    "KSV116": "run-as-group-root",
    "KSV121": "sensitive-host-path",
}

PEERS: Final = {"checkov": CHECKOV, "trivy": TRIVY}

Side = Literal["peer", "stockade"]


@dataclass(frozen=True, slots=True)
class Explained:
    """Differences of one kind: `tool` (checkov | trivy) and Stockade disagree on the checks
    matching `check` (a pattern: ``*`` for any shared check), only `side` reports a failure, on
    the resources matching `where` (``file::Kind/name`` patterns) and, when `with_check` is set,
    on which Stockade also fails that check (the same flaw, reported under another id), because
    `why`."""

    tool: str
    check: str
    side: Side
    where: tuple[str, ...]
    why: str
    with_check: str = ""

    def covers(self, tool: str, check: str, side: Side, key: str, ours: Collection[str]) -> bool:
        """Whether this entry explains the difference at `key` (``file::Kind/name``), where
        Stockade fails the checks `ours`."""
        return (
            (tool, side) == (self.tool, self.side)
            and fnmatchcase(check, self.check)
            and any(fnmatchcase(key, w) for w in self.where)
            and (not self.with_check or self.with_check in ours)
        )


def _both(
    check: str, side: Side, where: tuple[str, ...], why: str, with_check: str = ""
) -> tuple[Explained, ...]:
    return tuple(Explained(tool, check, side, where, why, with_check) for tool in PEERS)


#: every difference on the shared checks, explained (tests/k8s/test_k8s_peers.py, docs/k8s-peers.md)
EXPLAINED: Final[tuple[Explained, ...]] = (
    # -- both peers
    *_both(
        "*",
        "stockade",
        ("*::*/",),
        "The object has no metadata.name (kubesec's score-*-daemonset-* files have no metadata at "
        "all). Both peers skip an object they cannot name; Stockade checks it and names it by kind, "
        "file and line.",
    ),
    *_both(
        "*",
        "peer",
        ("kubesec/invalid-schema.yml::Deployment/demo",),
        "The object is invalid: spec.replicas is the string '2', hostNetwork the string '1'. "
        "Stockade reports the file and line as an error (the API server rejects the object) and "
        "does not check it; the peers check it as if it were valid.",
    ),
    *_both(
        "capabilities-drop-all",
        "stockade",
        ("kubesec/sockshop/*",),
        "sockshop drops 'all' in lower case. Pod Security Standards (and the pod-security "
        "admission controller) compare the value with 'ALL' exactly; both peers accept any case.",
    ),
    *_both(
        "run-as-non-root",
        "peer",
        ("kubesec/score-1-pod-hostUsers-set-to-false.yml::Pod/userns",),
        "The pod sets hostUsers: false. Pod Security Standards relax 'Running as Non-root' for "
        "pods in a user namespace; the peers ignore hostUsers.",
    ),
    *_both(
        "runtime-socket-mount",
        "stockade",
        ("golden/host.yaml::DaemonSet/containerd-socket",),
        "The containerd socket is mounted. The peers' socket checks (CKV_K8S_27, KSV006) know "
        "only /var/run/docker.sock; Stockade's knows the docker, containerd, CRI-O and podman "
        "sockets and their directories.",
    ),
    # -- Checkov
    Explained(
        "checkov",
        "capabilities-restricted",
        "peer",
        ("golden/hardened.yaml::Deployment/net-bind-service", "kubesec/sockshop/*"),
        "The container adds NET_BIND_SERVICE only, after dropping ALL (sockshop: 'all'). Pod "
        "Security Standards restricted allow exactly that one; Checkov's CKV_K8S_25 fails any "
        "added capability.",
    ),
    Explained(
        "checkov",
        "*-requests",
        "stockade",
        ("kubesec/versioned/*",),
        "The container has an empty resources mapping (resources: {}). Checkov's CKV_K8S_10 and "
        "CKV_K8S_12 give no verdict then (UNKNOWN: neither failed nor passed); Stockade reports "
        "the requests missing.",
    ),
    Explained(
        "trivy",
        "*-requests",
        "peer",
        ("golden/images.yaml::Deployment/no-requests",),
        "The container sets limits and no requests. Kubernetes sets an unset request to the "
        "limit, so Stockade passes it; Trivy's KSV015 and KSV016 ask for the requests written.",
    ),
    Explained(
        "checkov",
        "rbac-escalate-bind-impersonate",
        "stockade",
        ("golden/rbac.yaml::ClusterRole/impersonator",),
        "The role grants impersonate. Checkov checks impersonation only in its graph check "
        "CKV2_K8S_3, on the ServiceAccount or Node bound to such a role (this corpus binds none); "
        "its role checks CKV_K8S_157/158 are about bind and escalate.",
    ),
    Explained(
        "checkov",
        "run-as-high-uid",
        "peer",
        ("kubesec/score-1-pod-automountservicetoken.yml::Pod/my-pod",),
        "The pod has no containers (the API server would reject it). Checkov reads the pod-level "
        "runAsUser and fails it; Stockade's container checks have no container to fail.",
    ),
    Explained(
        "checkov",
        "seccomp-profile-missing",
        "peer",
        ("kubesec/score-1-pod-automountservicetoken.yml::Pod/my-pod",),
        "The pod has no containers (the API server would reject it). Checkov fails the missing "
        "pod-level profile; Pod Security Standards require it of each container, and there is none.",
    ),
    Explained(
        "trivy",
        "run-as-high-uid",
        "peer",
        ("kubesec/score-1-pod-hostUsers-set-to-false.yml::Pod/userns",),
        "The pod sets hostUsers: false. Trivy's KSV020 asks for a UID above 10000 in a user "
        "namespace too; Stockade's run-as-high-uid, like Checkov's CKV_K8S_40, passes it: its UIDs "
        "are mapped to an unprivileged range of the node, away from the node's accounts.",
    ),
    Explained(
        "checkov",
        "run-as-non-root",
        "stockade",
        (
            "golden/security-context.yaml::Deployment/non-root-unset",
            "kubesec/score-1-dep-*seccon-run-as-user-*",
        ),
        "runAsUser is a non-zero UID but runAsNonRoot is not set. Checkov's CKV_K8S_23 accepts a "
        "non-zero runAsUser instead; Pod Security Standards restricted require runAsNonRoot: "
        "true (pod or every container).",
    ),
    Explained(
        "checkov",
        "seccomp-profile-missing",
        "peer",
        ("golden/controllers.yaml::ReplicationController/*",),
        "Checkov's CKV_K8S_31 reads the pod-level seccompProfile of Pods, Deployments, "
        "StatefulSets, DaemonSets, Jobs, ReplicaSets and CronJobs, not of ReplicationControllers: "
        "it fails this one although its pod template sets RuntimeDefault.",
    ),
    Explained(
        "checkov",
        "seccomp-profile-missing",
        "stockade",
        ("golden/security-context.yaml::Deployment/seccomp-unconfined",),
        "The pod sets RuntimeDefault, its container Unconfined. Checkov's CKV_K8S_31 stops at the "
        "pod-level profile; the container's own profile overrides it (Pod Security Standards "
        "check each container's effective profile).",
    ),
    Explained(
        "checkov",
        "secrets-in-env",
        "stockade",
        (
            "kubesec/score-0-daemonset-securitycontext-privileged.yml::DaemonSet/example-daemonset",
            "kubesec/sockshop/catalogue-db-dep.yaml::Deployment/catalogue-db",
        ),
        "A secret-looking variable has a literal value (ACCESS_KEY, MYSQL_ROOT_PASSWORD). "
        "Checkov's CKV_K8S_35 looks only for secretKeyRef and secretRef; Stockade flags literal "
        "secret-looking values too.",
    ),
    # -- Trivy
    Explained(
        "trivy",
        "*",
        "stockade",
        ("kubesec/score-1-dep-empty-security-context.yml::Deployment/carts-db",),
        "The container's securityContext is null ('securityContext:' with no value). Trivy "
        "reports no failure at all for the file (its checks stop on the null); Stockade reads "
        "null as unset.",
    ),
    Explained(
        "trivy",
        "apparmor-profile",
        "stockade",
        ("kubesec/score-0-dep-apparmor-unconfined-*",),
        "AppArmor is set Unconfined in the securityContext.appArmorProfile field (Kubernetes "
        "1.30+). Trivy's KSV002 reads only the older annotations; Pod Security Standards check both.",
    ),
    Explained(
        "trivy",
        "automount-service-account-token",
        "stockade",
        ("*",),
        "automountServiceAccountToken is not false. Trivy's KSV036 fails only a pod whose spec "
        "already lists the mounted token volume (the dumps of running pods); Stockade fails "
        "every pod that would get the token.",
    ),
    Explained(
        "trivy",
        "capabilities-baseline",
        "peer",
        ("golden/*", "kubesec/score-0-cap-chown.yml::*", "kubesec/sockshop/*"),
        "The container adds capabilities of the Pod Security Standards baseline list (CHOWN, "
        "SETUID, SETGID, NET_BIND_SERVICE ...). Trivy's KSV022 fails any added capability; the "
        "baseline allows those.",
    ),
    Explained(
        "trivy",
        "capabilities-restricted",
        "peer",
        ("*",),
        "The container does not drop ALL. Trivy's KSV106 fails both a missing drop of ALL and an "
        "added capability other than NET_BIND_SERVICE; Stockade reports the first as "
        "capabilities-drop-all (which it fails here) and only the second as "
        "capabilities-restricted.",
        with_check="capabilities-drop-all",
    ),
    Explained(
        "trivy",
        "default-namespace",
        "stockade",
        ("*",),
        "The object names no namespace. Trivy's KSV110 fails only an explicit namespace: "
        "default; Stockade fails a missing one too (kubectl apply puts it in default).",
    ),
    Explained(
        "trivy",
        "rbac-wildcard",
        "stockade",
        ("golden/rbac.yaml::ClusterRole/wildcard-verbs", "golden/rbac.yaml::Role/wildcard-resources"),
        "verbs '*' on configmaps, and get on resources '*' of apps. Trivy's KSV044/045/046 fail "
        "wildcards only with all resources and write verbs; Stockade fails any '*' in verbs, "
        "resources or apiGroups.",
    ),
    Explained(
        "trivy",
        "run-as-non-root",
        "stockade",
        ("golden/security-context.yaml::Deployment/non-root-false",),
        "The pod sets runAsNonRoot: true, its container false. Trivy's KSV012 accepts the pod's "
        "value; the container's own value overrides it.",
    ),
    Explained(
        "trivy",
        "seccomp-unconfined",
        "peer",
        ("*",),
        "No seccomp profile is set. Trivy's KSV104 fails an undefined profile; the Pod Security "
        "Standards baseline allows undefined and forbids only Unconfined (Stockade fails "
        "undefined under seccomp-profile-missing, the restricted control).",
        with_check="seccomp-profile-missing",
    ),
    Explained(
        "trivy",
        "sensitive-host-path",
        "stockade",
        ("*",),
        "A host path under /var/run, /run or /var/lib/docker is mounted (container runtime "
        "sockets and state). Trivy's KSV121 list of disallowed host paths does not hold them.",
        with_check="host-path-volume",
    ),
    Explained(
        "trivy",
        "volume-types",
        "stockade",
        ("*",),
        "The pod has a hostPath volume. Pod Security Standards restricted allow only the listed "
        "volume types, hostPath not among them; Trivy's KSV028 leaves hostPath to KSV023.",
        with_check="host-path-volume",
    ),
)
