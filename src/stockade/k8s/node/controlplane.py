"""The control plane's CIS items where it runs on this node: API server (1.2.x), controller
manager (1.3.x), scheduler (1.4.x), etcd (2.x), and their files (1.1.x).

A component's flags are read from its static pod manifest (``/etc/kubernetes/manifests/*.yaml``,
each flag with its line), else from its running process. A component found in neither place
makes its items not-applicable. Ids follow CIS 1.8 (kube-bench ``cfg/cis-1.8/master.yaml`` and
``etcd.yaml``); an unset flag takes the component's default.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from stockade.k8s.node import files
from stockade.k8s.node.flags import (
    Item,
    Rule,
    at_least,
    equals,
    includes,
    is_set,
    lacks,
    not_false,
    not_set,
    subset_of,
    verdict,
)
from stockade.k8s.node.kubelet import STRONG_CIPHERS
from stockade.k8s.node.reader import Flags, NodeFS
from stockade.k8s.node.result import NodeResult

__all__ = ["COMPONENTS", "check_control_plane", "component_flags"]

MANIFESTS = "/etc/kubernetes/manifests"

#: component -> (static pod manifest, process name)
COMPONENTS = {
    "apiserver": (f"{MANIFESTS}/kube-apiserver.yaml", "kube-apiserver"),
    "controller-manager": (f"{MANIFESTS}/kube-controller-manager.yaml", "kube-controller-manager"),
    "scheduler": (f"{MANIFESTS}/kube-scheduler.yaml", "kube-scheduler"),
    "etcd": (f"{MANIFESTS}/etcd.yaml", "etcd"),
}


@dataclass(frozen=True, slots=True)
class _Flag:
    item: Item
    flags: tuple[str, ...]  # each must pass the rule
    rule: Rule
    default: str | None = None


def _f(
    component: str,
    id: str,
    cis: str,
    sev: str,
    title: str,
    flags: str,
    rule: Rule,
    default: str | None,
    fix: str,
) -> _Flag:
    return _Flag(Item(id, cis, component, title, sev, fix), tuple(flags.split()), rule, default)


_API = "Edit /etc/kubernetes/manifests/kube-apiserver.yaml: "
_CM = "Edit /etc/kubernetes/manifests/kube-controller-manager.yaml: "
_SCHED = "Edit /etc/kubernetes/manifests/kube-scheduler.yaml: "
_ETCD = "Edit /etc/kubernetes/manifests/etcd.yaml: "

FLAG_ITEMS: tuple[_Flag, ...] = (
    _f("apiserver", "apiserver-anonymous-auth", "1.2.1", "HIGH", "API server refuses anonymous requests",
       "anonymous-auth", equals("false"), "true", _API + "--anonymous-auth=false."),
    _f("apiserver", "apiserver-token-auth-file", "1.2.2", "HIGH", "API server has no static token file",
       "token-auth-file", not_set(), None, _API + "remove --token-auth-file; use another authentication."),
    _f("apiserver", "apiserver-deny-external-ips", "1.2.3", "LOW", "DenyServiceExternalIPs admission plugin",
       "enable-admission-plugins", includes("DenyServiceExternalIPs"), None,
       _API + "add DenyServiceExternalIPs to --enable-admission-plugins (unless Services need externalIPs)."),
    _f("apiserver", "apiserver-kubelet-client-cert", "1.2.4", "HIGH", "API server authenticates to kubelets",
       "kubelet-client-certificate kubelet-client-key", is_set(), None,
       _API + "set --kubelet-client-certificate and --kubelet-client-key."),
    _f("apiserver", "apiserver-kubelet-ca", "1.2.5", "HIGH", "API server verifies kubelet certificates",
       "kubelet-certificate-authority", is_set(), None, _API + "set --kubelet-certificate-authority."),
    _f("apiserver", "apiserver-authz-not-always-allow", "1.2.6", "CRITICAL", "API server authorization is not AlwaysAllow",
       "authorization-mode", lacks("AlwaysAllow"), "AlwaysAllow", _API + "--authorization-mode=Node,RBAC."),
    _f("apiserver", "apiserver-authz-node", "1.2.7", "HIGH", "API server authorization includes Node",
       "authorization-mode", includes("Node"), "AlwaysAllow", _API + "--authorization-mode=Node,RBAC."),
    _f("apiserver", "apiserver-authz-rbac", "1.2.8", "HIGH", "API server authorization includes RBAC",
       "authorization-mode", includes("RBAC"), "AlwaysAllow", _API + "--authorization-mode=Node,RBAC."),
    _f("apiserver", "apiserver-event-rate-limit", "1.2.9", "LOW", "EventRateLimit admission plugin",
       "enable-admission-plugins", includes("EventRateLimit"), None,
       _API + "add EventRateLimit to --enable-admission-plugins with --admission-control-config-file."),
    _f("apiserver", "apiserver-no-always-admit", "1.2.10", "HIGH", "AlwaysAdmit admission plugin is off",
       "enable-admission-plugins", lacks("AlwaysAdmit"), None, _API + "remove AlwaysAdmit from --enable-admission-plugins."),
    _f("apiserver", "apiserver-always-pull-images", "1.2.11", "LOW", "AlwaysPullImages admission plugin",
       "enable-admission-plugins", includes("AlwaysPullImages"), None,
       _API + "add AlwaysPullImages to --enable-admission-plugins (multi-tenant clusters)."),
    _f("apiserver", "apiserver-service-account-plugin", "1.2.13", "MEDIUM", "ServiceAccount admission plugin is on",
       "disable-admission-plugins", lacks("ServiceAccount"), None, _API + "remove ServiceAccount from --disable-admission-plugins."),
    _f("apiserver", "apiserver-namespace-lifecycle", "1.2.14", "MEDIUM", "NamespaceLifecycle admission plugin is on",
       "disable-admission-plugins", lacks("NamespaceLifecycle"), None,
       _API + "remove NamespaceLifecycle from --disable-admission-plugins."),
    _f("apiserver", "apiserver-node-restriction", "1.2.15", "MEDIUM", "NodeRestriction admission plugin",
       "enable-admission-plugins", includes("NodeRestriction"), None, _API + "add NodeRestriction to --enable-admission-plugins."),
    _f("apiserver", "apiserver-profiling", "1.2.16", "MEDIUM", "API server profiling is off",
       "profiling", equals("false"), "true", _API + "--profiling=false."),
    _f("apiserver", "apiserver-audit-log-path", "1.2.17", "MEDIUM", "API server writes an audit log",
       "audit-log-path", is_set(), None, _API + "--audit-log-path=/var/log/apiserver/audit.log and an --audit-policy-file."),
    _f("apiserver", "apiserver-audit-log-maxage", "1.2.18", "LOW", "Audit logs kept 30 days",
       "audit-log-maxage", at_least(30), None, _API + "--audit-log-maxage=30."),
    _f("apiserver", "apiserver-audit-log-maxbackup", "1.2.19", "LOW", "Ten audit log files kept",
       "audit-log-maxbackup", at_least(10), None, _API + "--audit-log-maxbackup=10."),
    _f("apiserver", "apiserver-audit-log-maxsize", "1.2.20", "LOW", "Audit log files of 100 MB",
       "audit-log-maxsize", at_least(100), None, _API + "--audit-log-maxsize=100."),
    _f("apiserver", "apiserver-service-account-lookup", "1.2.22", "MEDIUM", "Service account tokens are looked up",
       "service-account-lookup", not_false(), None, _API + "remove --service-account-lookup=false."),
    _f("apiserver", "apiserver-service-account-key", "1.2.23", "MEDIUM", "Service account key file is set",
       "service-account-key-file", is_set(), None, _API + "set --service-account-key-file."),
    _f("apiserver", "apiserver-etcd-client-cert", "1.2.24", "HIGH", "API server authenticates to etcd",
       "etcd-certfile etcd-keyfile", is_set(), None, _API + "set --etcd-certfile and --etcd-keyfile."),
    _f("apiserver", "apiserver-tls-cert", "1.2.25", "MEDIUM", "API server serves a given certificate",
       "tls-cert-file tls-private-key-file", is_set(), None, _API + "set --tls-cert-file and --tls-private-key-file."),
    _f("apiserver", "apiserver-client-ca", "1.2.26", "HIGH", "API server verifies client certificates",
       "client-ca-file", is_set(), None, _API + "set --client-ca-file."),
    _f("apiserver", "apiserver-etcd-ca", "1.2.27", "HIGH", "API server verifies etcd's certificate",
       "etcd-cafile", is_set(), None, _API + "set --etcd-cafile."),
    _f("apiserver", "apiserver-encryption-config", "1.2.28", "MEDIUM", "Secrets are encrypted at rest",
       "encryption-provider-config", is_set(), None, _API + "set --encryption-provider-config (aescbc, kms or secretbox)."),
    _f("apiserver", "apiserver-tls-cipher-suites", "1.2.30", "MEDIUM", "API server uses only strong cipher suites",
       "tls-cipher-suites", subset_of(STRONG_CIPHERS), None, _API + "set --tls-cipher-suites to strong suites."),
    _f("apiserver", "apiserver-insecure-port", "", "CRITICAL", "API server has no insecure port",
       "insecure-port", equals("0"), "0", _API + "remove --insecure-port or set it to 0 (CIS 1.6 1.2.19)."),
    _f("controller-manager", "controller-manager-pod-gc", "1.3.1", "LOW", "Terminated pods are garbage-collected",
       "terminated-pod-gc-threshold", is_set("warn"), None, _CM + "set --terminated-pod-gc-threshold (e.g. 10)."),
    _f("controller-manager", "controller-manager-profiling", "1.3.2", "MEDIUM", "Controller manager profiling is off",
       "profiling", equals("false"), "true", _CM + "--profiling=false."),
    _f("controller-manager", "controller-manager-sa-credentials", "1.3.3", "MEDIUM", "Controllers use their own service accounts",
       "use-service-account-credentials", equals("true"), "false", _CM + "--use-service-account-credentials=true."),
    _f("controller-manager", "controller-manager-sa-key", "1.3.4", "MEDIUM", "Service account signing key is set",
       "service-account-private-key-file", is_set(), None, _CM + "set --service-account-private-key-file."),
    _f("controller-manager", "controller-manager-root-ca", "1.3.5", "MEDIUM", "Root CA is given to service accounts",
       "root-ca-file", is_set(), None, _CM + "set --root-ca-file."),
    _f("controller-manager", "controller-manager-server-cert-rotation", "1.3.6", "MEDIUM", "Kubelet serving certificates rotate",
       "feature-gates", lacks("RotateKubeletServerCertificate=false"), None,
       _CM + "remove RotateKubeletServerCertificate=false from --feature-gates."),
    _f("controller-manager", "controller-manager-bind-address", "1.3.7", "LOW", "Controller manager listens on loopback",
       "bind-address", equals("127.0.0.1"), "0.0.0.0", _CM + "--bind-address=127.0.0.1."),
    _f("scheduler", "scheduler-profiling", "1.4.1", "MEDIUM", "Scheduler profiling is off",
       "profiling", equals("false"), "true", _SCHED + "--profiling=false."),
    _f("scheduler", "scheduler-bind-address", "1.4.2", "LOW", "Scheduler listens on loopback",
       "bind-address", equals("127.0.0.1"), "0.0.0.0", _SCHED + "--bind-address=127.0.0.1."),
    _f("etcd", "etcd-tls", "2.1", "HIGH", "etcd serves TLS",
       "cert-file key-file", is_set(), None, _ETCD + "set --cert-file and --key-file."),
    _f("etcd", "etcd-client-cert-auth", "2.2", "CRITICAL", "etcd requires client certificates",
       "client-cert-auth", equals("true"), "false", _ETCD + "--client-cert-auth=true."),
    _f("etcd", "etcd-auto-tls", "2.3", "HIGH", "etcd does not use self-signed certificates",
       "auto-tls", equals("false"), "false", _ETCD + "remove --auto-tls=true."),
    _f("etcd", "etcd-peer-tls", "2.4", "HIGH", "etcd peers use TLS",
       "peer-cert-file peer-key-file", is_set(), None, _ETCD + "set --peer-cert-file and --peer-key-file."),
    _f("etcd", "etcd-peer-client-cert-auth", "2.5", "HIGH", "etcd peers require client certificates",
       "peer-client-cert-auth", equals("true"), "false", _ETCD + "--peer-client-cert-auth=true."),
    _f("etcd", "etcd-peer-auto-tls", "2.6", "HIGH", "etcd peers do not use self-signed certificates",
       "peer-auto-tls", equals("false"), "false", _ETCD + "remove --peer-auto-tls=true."),
)  # fmt: skip

_UNIQUE_CA = Item(
    "etcd-unique-ca", "2.7", "etcd", "etcd has its own certificate authority", "MEDIUM",
    "Give etcd a CA of its own (--trusted-ca-file) other than the cluster's --client-ca-file.",
)  # fmt: skip

_PKI = "/etc/kubernetes/pki"
#: (mode id, owner id, mode CIS, owner CIS, what, component, paths, mask, owner)
_FILES: tuple[tuple[str, str, str, str, str, str, tuple[str, ...], int, str], ...] = (
    ("apiserver-manifest-mode", "apiserver-manifest-owner", "1.1.1", "1.1.2", "API server pod specification",
     "apiserver", (COMPONENTS["apiserver"][0],), 0o600, "root:root"),
    ("controller-manager-manifest-mode", "controller-manager-manifest-owner", "1.1.3", "1.1.4",
     "controller manager pod specification", "controller-manager", (COMPONENTS["controller-manager"][0],), 0o600, "root:root"),
    ("scheduler-manifest-mode", "scheduler-manifest-owner", "1.1.5", "1.1.6", "scheduler pod specification",
     "scheduler", (COMPONENTS["scheduler"][0],), 0o600, "root:root"),
    ("etcd-manifest-mode", "etcd-manifest-owner", "1.1.7", "1.1.8", "etcd pod specification",
     "etcd", (COMPONENTS["etcd"][0],), 0o600, "root:root"),
    ("admin-conf-mode", "admin-conf-owner", "1.1.13", "1.1.14", "admin.conf", "apiserver",
     ("/etc/kubernetes/admin.conf", "/etc/kubernetes/super-admin.conf"), 0o600, "root:root"),
    ("scheduler-conf-mode", "scheduler-conf-owner", "1.1.15", "1.1.16", "scheduler.conf", "scheduler",
     ("/etc/kubernetes/scheduler.conf",), 0o600, "root:root"),
    ("controller-manager-conf-mode", "controller-manager-conf-owner", "1.1.17", "1.1.18", "controller-manager.conf",
     "controller-manager", ("/etc/kubernetes/controller-manager.conf",), 0o600, "root:root"),
)  # fmt: skip


def component_flags(fs: NodeFS, component: str) -> Flags | None:
    """The flags of a control plane component: its manifest's, else its process's; None when absent."""
    manifest, process = COMPONENTS[component]
    if fs.exists(manifest):
        return fs.manifest_flags(manifest)
    return fs.process_flags(process)


def _flag_item(f: _Flag, flags: Flags) -> NodeResult:
    results = []
    for n in f.flags:
        got = flags.get(n)
        value, where = got if got is not None else (None, None)
        results.append(verdict(f.item, f.rule, f"--{n}", value, where, f.default))
    worst = next((r for s in ("fail", "warn") for r in results if r.status == s), results[0])
    if len(results) == 1:
        return worst
    ev = tuple(e for r in results for e in r.evidence)
    return f.item.result(worst.status, "; ".join(r.message for r in results), *ev)


def _file_pair(
    fs: NodeFS, entry: tuple[str, str, str, str, str, str, tuple[str, ...], int, str]
) -> list[NodeResult]:
    mode_id, owner_id, mode_cis, owner_cis, what, comp, paths, mask, owner = entry
    mode = Item(mode_id, mode_cis, comp, f"{what}: permissions {mask:o} or more restrictive", "MEDIUM",
                f"chmod {mask:o} {' '.join(paths)}")  # fmt: skip
    own = Item(
        owner_id, owner_cis, comp, f"{what}: owned by {owner}", "MEDIUM", f"chown {owner} {' '.join(paths)}"
    )
    return [files.mode_item(mode, fs, paths, mask), files.owner_item(own, fs, paths, owner)]


def _tree(fs: NodeFS, top: str, suffixes: Sequence[str] = ("",)) -> list[str]:
    return [p for p in fs.glob(f"{top}/**/*") if not fs.is_dir(p) and p.endswith(tuple(suffixes))] + (
        [top] if suffixes == ("",) and fs.is_dir(top) else []
    )


def check_control_plane(fs: NodeFS) -> list[NodeResult]:
    """Every control plane item; those of a component not on this node are not-applicable."""
    present = {c: component_flags(fs, c) for c in COMPONENTS}
    out: list[NodeResult] = []
    for f in FLAG_ITEMS:
        flags = present[f.item.component]
        if flags is None:
            out.append(f.item.result("not-applicable", f"no {f.item.component} on this node"))
        else:
            out.append(_flag_item(f, flags))
    for entry in _FILES:
        out.extend(_file_pair(fs, entry))
    etcd, api = present["etcd"], present["apiserver"]
    data_dir = (etcd.get("data-dir") if etcd else None) or ("/var/lib/etcd", None)
    # CNI files matter where Kubernetes runs (podman has CNI files of its own)
    cni = [p for p in fs.glob("/etc/cni/net.d/*") if not fs.is_dir(p)] if any(present.values()) else []
    pki_all, certs, keys = _tree(fs, _PKI), _tree(fs, _PKI, (".crt",)), _tree(fs, _PKI, (".key",))
    extra = (
        ("cni-files-mode", "cni-files-owner", "1.1.9", "1.1.10", "CNI files", "cni", tuple(cni), 0o600, "root:root"),
        ("etcd-data-dir-mode", "etcd-data-dir-owner", "1.1.11", "1.1.12", "etcd data directory", "etcd",
         (data_dir[0],) if etcd else (), 0o700, "etcd:etcd"),
    )  # fmt: skip
    for entry in extra:
        out.extend(_file_pair(fs, entry))
    pki_owner = Item("pki-owner", "1.1.19", "apiserver", "PKI directory and files owned by root:root", "MEDIUM",
                     f"chown -R root:root {_PKI}/")  # fmt: skip
    crt_mode = Item("pki-cert-mode", "1.1.20", "apiserver", "PKI certificates: permissions 600 or more restrictive",
                    "MEDIUM", f"chmod -R 600 {_PKI}/*.crt")  # fmt: skip
    key_mode = Item(
        "pki-key-mode",
        "1.1.21",
        "apiserver",
        "PKI keys: permissions 600",
        "HIGH",
        f"chmod -R 600 {_PKI}/*.key",
    )
    out += [
        files.owner_item(pki_owner, fs, pki_all),
        files.mode_item(crt_mode, fs, certs, 0o600),
        files.mode_item(key_mode, fs, keys, 0o600),
    ]
    if etcd is None:
        out.append(_UNIQUE_CA.result("not-applicable", "no etcd on this node"))
    else:
        etcd_ca, api_ca = etcd.get("trusted-ca-file"), api.get("client-ca-file") if api else None
        if etcd_ca is None or api_ca is None:
            out.append(
                _UNIQUE_CA.result(
                    "warn", "cannot compare: --trusted-ca-file or the API server's --client-ca-file unknown"
                )
            )
        elif etcd_ca[0] == api_ca[0]:
            out.append(
                _UNIQUE_CA.result("fail", "etcd trusts the cluster's client CA", etcd_ca[1], api_ca[1])
            )
        else:
            out.append(_UNIQUE_CA.result("pass", "etcd has its own CA", etcd_ca[1], api_ca[1]))
    return out
