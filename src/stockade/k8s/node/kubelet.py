"""The kubelet's CIS items (4.1.x files, 4.2.x settings), from its flags and configuration file.

The flags are those of the running kubelet (``/proc/PID/cmdline``), else of a file the user gives,
else of the systemd unit ``kubelet.service`` and its drop-ins. The configuration file is the one
``--config`` names, else the first of the usual places. A flag overrides the file, as in the
kubelet. Unset settings take the kubelet's defaults, which differ: without a configuration file
``--anonymous-auth`` is true, ``--authorization-mode`` AlwaysAllow and ``--read-only-port`` 10255;
the v1beta1 KubeletConfiguration defaults them to false, Webhook and 0.

Ids follow the CIS Kubernetes Benchmark 1.8 (kube-bench ``cfg/cis-1.8/node.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass

from stockade.k8s.node import files
from stockade.k8s.node.flags import (
    Item,
    Rule,
    at_least,
    equals,
    is_set,
    lacks,
    not_false,
    not_set,
    not_zero,
    subset_of,
    verdict,
)
from stockade.k8s.node.reader import Flags, NodeFS, yaml_lookup
from stockade.k8s.node.result import Evidence, NodeResult
from stockade.rules.yamldoc import YMap, YSeq

__all__ = ["CONFIG_PATHS", "STRONG_CIPHERS", "Kubelet", "check_kubelet", "find_kubelet"]

#: where the kubelet's configuration file usually is (kube-bench's list, kubeadm's first)
CONFIG_PATHS = (
    "/var/lib/kubelet/config.yaml",
    "/var/lib/kubelet/config.yml",
    "/etc/kubernetes/kubelet-config.yaml",
    "/etc/kubernetes/kubelet/kubelet-config.json",
    "/var/lib/rancher/k3s/agent/etc/kubelet.conf.d/00-k3s-defaults.conf",
)
KUBECONFIG_PATHS = (
    "/etc/kubernetes/kubelet.conf",
    "/var/lib/kubelet/kubeconfig",
    "/etc/kubernetes/kubelet-kubeconfig",
    "/var/lib/rancher/rke2/agent/kubelet.kubeconfig",
    "/var/lib/rancher/k3s/agent/kubelet.kubeconfig",
)
CA_PATHS = ("/etc/kubernetes/pki/ca.crt", "/etc/kubernetes/certs/ca.crt", "/etc/kubernetes/cert/ca.pem")
PROXY_KUBECONFIG_PATHS = ("/var/lib/kube-proxy/kubeconfig.conf", "/etc/kubernetes/proxy.conf")

#: CIS 4.2.12: the suites the benchmark allows
STRONG_CIPHERS = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
)

_RESTART = " Then: systemctl daemon-reload && systemctl restart kubelet."


@dataclass(slots=True)
class Kubelet:
    """What is known of the kubelet on the node: its flags, unit files and configuration file."""

    flags: Flags | None
    unit_files: list[str]
    config_path: str | None
    config: YMap | None

    @property
    def present(self) -> bool:
        """Whether anything of a kubelet was found."""
        return bool(self.flags or self.unit_files or self.config_path)

    def value(self, flag: str | None, key: tuple[str, ...] | None) -> tuple[str | None, Evidence | None]:
        """The effective value of a setting: the flag, else the configuration file's key."""
        if flag and self.flags is not None and (got := self.flags.get(flag)) is not None:
            return got
        if key and self.config is not None and self.config_path:
            v, line = yaml_lookup(self.config, key)
            if v is not None:
                text = ",".join(map(str, v)) if isinstance(v, YSeq) else str(v)
                return text, Evidence(self.config_path, line, text)
        return None, None


def find_kubelet(fs: NodeFS, given_flags: Flags | None = None) -> Kubelet:
    """The kubelet of the node under `fs` (`given_flags`: its flags as the user gave them)."""
    unit_files = fs.unit_files("kubelet.service")
    flags = given_flags
    if flags is None:
        flags = fs.process_flags("kubelet") or (fs.unit_flags("kubelet.service") if unit_files else None)
    given = flags.get("config") if flags is not None else None
    path = given[0] if given else fs.first(CONFIG_PATHS)
    if given and not fs.exists(given[0]):
        fs.problem("--config names a file that does not exist", given[1].file, given[1].line)
    config = fs.yaml(path) if path else None
    return Kubelet(flags, unit_files, path if path and fs.exists(path) else None, config)


@dataclass(frozen=True, slots=True)
class _Setting:
    item: Item
    flag: str | None
    key: tuple[str, ...] | None
    rule: Rule
    default_flags: str | None  # without a configuration file
    default_config: str | None  # with one (KubeletConfiguration v1beta1)


def _item(id: str, cis: str, title: str, severity: str, remediation: str) -> Item:
    return Item(id, cis, "kubelet", title, severity, remediation + _RESTART)


SETTINGS = (
    _Setting(
        _item("kubelet-anonymous-auth", "4.2.1", "Anonymous requests to the kubelet are refused", "CRITICAL",
              "Set authentication.anonymous.enabled: false in the kubelet configuration (or --anonymous-auth=false)."),
        "anonymous-auth", ("authentication", "anonymous", "enabled"), equals("false"), "true", "false",
    ),
    _Setting(
        _item("kubelet-authorization-mode", "4.2.2", "Kubelet authorization mode is not AlwaysAllow", "CRITICAL",
              "Set authorization.mode: Webhook (or --authorization-mode=Webhook)."),
        "authorization-mode", ("authorization", "mode"), lacks("AlwaysAllow"), "AlwaysAllow", "Webhook",
    ),
    _Setting(
        _item("kubelet-client-ca-file", "4.2.3", "Kubelet client certificates are verified", "HIGH",
              "Set authentication.x509.clientCAFile to the cluster CA (or --client-ca-file)."),
        "client-ca-file", ("authentication", "x509", "clientCAFile"), is_set(), None, None,
    ),
    _Setting(
        _item("kubelet-read-only-port", "4.2.4", "Kubelet read-only port is disabled", "HIGH",
              "Set readOnlyPort: 0 (or --read-only-port=0)."),
        "read-only-port", ("readOnlyPort",), equals("0"), "10255", "0",
    ),
    _Setting(
        _item("kubelet-streaming-idle-timeout", "4.2.5", "Streaming connections time out when idle", "MEDIUM",
              "Set streamingConnectionIdleTimeout to a duration other than 0 (e.g. 5m)."),
        "streaming-connection-idle-timeout", ("streamingConnectionIdleTimeout",), not_zero(), "4h0m0s", "4h0m0s",
    ),
    _Setting(
        _item("kubelet-iptables-util-chains", "4.2.6", "Kubelet manages its iptables chains", "LOW",
              "Set makeIPTablesUtilChains: true (or remove --make-iptables-util-chains=false)."),
        "make-iptables-util-chains", ("makeIPTablesUtilChains",), equals("true"), "true", "true",
    ),
    _Setting(
        _item("kubelet-hostname-override", "4.2.7", "Kubelet hostname is not overridden", "LOW",
              "Remove --hostname-override from the kubelet's flags (TLS between kubelet and API "
              "server relies on the node name)."),
        "hostname-override", None, not_set("warn"), None, None,
    ),
    _Setting(
        _item("kubelet-event-qps", "4.2.8", "Kubelet event rate captures events", "LOW",
              "Set eventRecordQPS to 0 (unlimited) or a level that keeps every event you need."),
        "event-qps", ("eventRecordQPS",), at_least(0), "50", "50",
    ),
    _Setting(
        _item("kubelet-rotate-certificates", "4.2.10", "Kubelet client certificate rotation is not off", "MEDIUM",
              "Set rotateCertificates: true, or remove --rotate-certificates=false."),
        "rotate-certificates", ("rotateCertificates",), not_false(), None, None,
    ),
    _Setting(
        _item("kubelet-tls-cipher-suites", "4.2.12", "Kubelet uses only strong TLS cipher suites", "MEDIUM",
              "Set tlsCipherSuites to a subset of: " + ",".join(STRONG_CIPHERS) + "."),
        "tls-cipher-suites", ("tlsCipherSuites",), subset_of(STRONG_CIPHERS), None, None,
    ),
    _Setting(
        _item("kubelet-pod-pids-limit", "4.2.13", "A limit is set on pod PIDs", "LOW",
              "Set podPidsLimit (or --pod-max-pids) to a positive number suited to the workloads."),
        "pod-max-pids", ("podPidsLimit",), at_least(1, "warn"), None, None,
    ),
    _Setting(
        _item("kubelet-protect-kernel-defaults", "", "Kubelet protects the kernel's defaults", "LOW",
              "Set protectKernelDefaults: true (CIS 1.7 4.2.6; the kubelet then refuses to start when "
              "kernel tunables differ from its defaults)."),
        "protect-kernel-defaults", ("protectKernelDefaults",), equals("true", "warn"), "false", "false",
    ),
)  # fmt: skip

_TLS = _item(
    "kubelet-tls-cert-file", "4.2.9", "Kubelet serves a certificate the cluster issued", "MEDIUM",
    "Set tlsCertFile and tlsPrivateKeyFile, or serverTLSBootstrap: true (certificates signed by the cluster).",
)  # fmt: skip
_SERVER_ROTATION = _item(
    "kubelet-server-cert-rotation", "4.2.11", "Kubelet serving certificate rotation is on", "MEDIUM",
    "Remove RotateKubeletServerCertificate=false from featureGates / --feature-gates.",
)  # fmt: skip
_FILES = (
    ("kubelet-service-file-mode", "kubelet-service-file-owner", "4.1.1", "4.1.2", "kubelet service file"),
    ("kube-proxy-kubeconfig-mode", "kube-proxy-kubeconfig-owner", "4.1.3", "4.1.4", "kube-proxy kubeconfig"),
    ("kubelet-kubeconfig-mode", "kubelet-kubeconfig-owner", "4.1.5", "4.1.6", "kubelet kubeconfig (kubelet.conf)"),
    ("kubelet-client-ca-mode", "kubelet-client-ca-owner", "4.1.7", "4.1.8", "client certificate authorities file"),
    ("kubelet-config-mode", "kubelet-config-owner", "4.1.9", "4.1.10", "kubelet config.yaml"),
)  # fmt: skip


def _file_paths(fs: NodeFS, k: Kubelet) -> list[list[str]]:
    kubeconfig, _ = k.value("kubeconfig", None)
    ca, _ = k.value("client-ca-file", ("authentication", "x509", "clientCAFile"))
    proxy = fs.process_flags("kube-proxy")
    proxy_conf = proxy.get("kubeconfig") if proxy is not None else None
    return [
        k.unit_files,
        [proxy_conf[0]] if proxy_conf else list(PROXY_KUBECONFIG_PATHS),
        [kubeconfig] if kubeconfig else list(KUBECONFIG_PATHS),
        [ca] if ca else list(CA_PATHS),
        [k.config_path] if k.config_path else [],
    ]


def _feature_gate(k: Kubelet, gate: str) -> tuple[str | None, Evidence | None]:
    flag = k.flags.get("feature-gates") if k.flags is not None else None
    if flag is not None:
        for part in flag[0].split(","):
            name, _, v = part.partition("=")
            if name.strip() == gate:
                return v.strip(), Evidence(flag[1].file, flag[1].line, part.strip())
    return k.value(None, ("featureGates", gate))


def _file_items() -> list[tuple[Item, Item]]:
    out = []
    for mode_id, owner_id, mode_cis, owner_cis, what in _FILES:
        out.append((
            Item(mode_id, mode_cis, "kubelet", f"{what}: permissions 600 or more restrictive", "MEDIUM",
                 f"chmod 600 <file> ({what})."),
            Item(owner_id, owner_cis, "kubelet", f"{what}: owned by root:root", "MEDIUM",
                 f"chown root:root <file> ({what})."),
        ))  # fmt: skip
    return out


FILE_ITEMS = _file_items()


def check_kubelet(fs: NodeFS, k: Kubelet) -> list[NodeResult]:
    """Every kubelet item (not-applicable each when no kubelet is on the node)."""
    if not k.present:
        items = (
            [s.item for s in SETTINGS] + [_TLS, _SERVER_ROTATION] + [i for pair in FILE_ITEMS for i in pair]
        )
        return [i.result("not-applicable", "no kubelet on this node") for i in items]
    out = []
    for s in SETTINGS:
        value, where = k.value(s.flag, s.key)
        default = s.default_config if k.config is not None else s.default_flags
        flag_given = bool(s.flag) and k.flags is not None and k.flags.get(s.flag or "") is not None
        name = ".".join(s.key) if s.key and k.config is not None and not flag_given else f"--{s.flag}"
        out.append(verdict(s.item, s.rule, name, value, where, default))
    cert, cert_at = k.value("tls-cert-file", ("tlsCertFile",))
    key, key_at = k.value("tls-private-key-file", ("tlsPrivateKeyFile",))
    boot, boot_at = k.value(None, ("serverTLSBootstrap",))
    if cert and key and cert_at and key_at:
        out.append(_TLS.result("pass", "tlsCertFile and tlsPrivateKeyFile are set", cert_at, key_at))
    elif boot is not None and boot.lower() == "true" and boot_at is not None:
        out.append(
            _TLS.result("pass", "serverTLSBootstrap: the cluster signs the serving certificate", boot_at)
        )
    else:
        out.append(_TLS.result("warn", "no serving certificate set: the kubelet serves a self-signed one"))
    gate, gate_at = _feature_gate(k, "RotateKubeletServerCertificate")
    if gate is not None and gate.lower() == "false" and gate_at is not None:
        out.append(_SERVER_ROTATION.result("fail", "RotateKubeletServerCertificate is false", gate_at))
    else:
        ev = (gate_at,) if gate_at is not None else ()
        out.append(
            _SERVER_ROTATION.result("pass", "RotateKubeletServerCertificate is on (default true)", *ev)
        )
    for (mode, owner), paths in zip(FILE_ITEMS, _file_paths(fs, k), strict=True):
        out.append(files.mode_item(mode, fs, paths, 0o600))
        out.append(files.owner_item(owner, fs, paths))
    return out
