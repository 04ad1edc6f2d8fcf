"""Node filesystems for the node item tests: a hardened kubeadm control-plane node and a weak
one, with the files kubeadm writes (systemd unit and drop-in, kubelet config, static pod
manifests, PKI) and the container runtimes' configuration."""

from __future__ import annotations

import os
from pathlib import Path

UNIT = """[Unit]
Description=kubelet: The Kubernetes Node Agent

[Service]
ExecStart=/usr/bin/kubelet
Restart=always
"""

DROP_IN = """# Note: This dropin only works with kubeadm and kubelet v1.11+
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
"""

GOOD_KUBELET = """apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
readOnlyPort: 0
streamingConnectionIdleTimeout: 5m
makeIPTablesUtilChains: true
eventRecordQPS: 5
rotateCertificates: true
serverTLSBootstrap: true
protectKernelDefaults: true
podPidsLimit: 4096
tlsCipherSuites:
- TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
- TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
"""

BAD_KUBELET = """apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: true
authorization:
  mode: AlwaysAllow
readOnlyPort: 10255
streamingConnectionIdleTimeout: 0s
makeIPTablesUtilChains: false
eventRecordQPS: -1
rotateCertificates: false
featureGates:
  RotateKubeletServerCertificate: false
podPidsLimit: -1
tlsCipherSuites:
- TLS_RSA_WITH_RC4_128_SHA
- TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
"""


def _pod(name: str, args: list[str]) -> str:
    cmd = "\n".join(f"    - {a}" for a in [name, *args])
    return f"""apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: kube-system
spec:
  containers:
  - name: {name}
    image: registry.k8s.io/{name}:v1.29.0
    command:
{cmd}
  hostNetwork: true
"""


GOOD_API = [
    "--anonymous-auth=false", "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction,"
    "EventRateLimit,AlwaysPullImages,DenyServiceExternalIPs", "--profiling=false",
    "--audit-log-path=/var/log/apiserver/audit.log", "--audit-log-maxage=30", "--audit-log-maxbackup=10",
    "--audit-log-maxsize=100", "--service-account-key-file=/etc/kubernetes/pki/sa.pub",
    "--kubelet-client-certificate=/etc/kubernetes/pki/apiserver-kubelet-client.crt",
    "--kubelet-client-key=/etc/kubernetes/pki/apiserver-kubelet-client.key",
    "--kubelet-certificate-authority=/etc/kubernetes/pki/ca.crt",
    "--etcd-certfile=/etc/kubernetes/pki/apiserver-etcd-client.crt",
    "--etcd-keyfile=/etc/kubernetes/pki/apiserver-etcd-client.key", "--etcd-cafile=/etc/kubernetes/pki/etcd/ca.crt",
    "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt", "--tls-private-key-file=/etc/kubernetes/pki/apiserver.key",
    "--client-ca-file=/etc/kubernetes/pki/ca.crt", "--encryption-provider-config=/etc/kubernetes/enc.yaml",
    "--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
]  # fmt: skip
BAD_API = [
    "--anonymous-auth=true", "--token-auth-file=/etc/kubernetes/tokens.csv", "--authorization-mode=AlwaysAllow",
    "--enable-admission-plugins=AlwaysAdmit", "--disable-admission-plugins=ServiceAccount,NamespaceLifecycle",
    "--audit-log-maxage=7", "--audit-log-maxbackup=1", "--audit-log-maxsize=10", "--service-account-lookup=false",
    "--insecure-port=8080", "--client-ca-file=/etc/kubernetes/pki/ca.crt",
    "--tls-cipher-suites=TLS_RSA_WITH_3DES_EDE_CBC_SHA",
]  # fmt: skip
GOOD_CM = [
    "--terminated-pod-gc-threshold=10", "--profiling=false", "--use-service-account-credentials=true",
    "--service-account-private-key-file=/etc/kubernetes/pki/sa.key", "--root-ca-file=/etc/kubernetes/pki/ca.crt",
    "--bind-address=127.0.0.1",
]  # fmt: skip
BAD_CM = ["--feature-gates=RotateKubeletServerCertificate=false", "--bind-address=0.0.0.0"]
GOOD_SCHED = ["--profiling=false", "--bind-address=127.0.0.1"]
BAD_SCHED = ["--profiling=true"]
GOOD_ETCD = [
    "--cert-file=/etc/kubernetes/pki/etcd/server.crt", "--key-file=/etc/kubernetes/pki/etcd/server.key",
    "--client-cert-auth=true", "--peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt",
    "--peer-key-file=/etc/kubernetes/pki/etcd/peer.key", "--peer-client-cert-auth=true",
    "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt", "--data-dir=/var/lib/etcd",
]  # fmt: skip
BAD_ETCD = [
    "--auto-tls=true", "--peer-auto-tls=true", "--trusted-ca-file=/etc/kubernetes/pki/ca.crt",
    "--data-dir=/var/lib/etcd",
]  # fmt: skip

GOOD_CONTAINERD = """version = 2
[plugins."io.containerd.grpc.v1.cri"]
  disable_apparmor = false
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
    SystemdCgroup = true
"""
BAD_CONTAINERD = """version = 2
[plugins."io.containerd.grpc.v1.cri"]
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".registry.configs."reg.local:5000".tls]
    insecure_skip_verify = true
"""
GOOD_CRIO = """[crio.runtime]
apparmor_profile = "crio-default"
default_capabilities = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID", "SETPCAP", "NET_BIND_SERVICE", "KILL"]
"""
BAD_CRIO = """[crio.runtime]
apparmor_profile = "unconfined"
default_capabilities = ["CHOWN", "SYS_ADMIN", "NET_RAW"]
"""
GOOD_CONTAINERS = """[containers]
seccomp_profile = "/usr/share/containers/seccomp.json"
default_capabilities = ["CHOWN", "KILL"]
"""
BAD_CONTAINERS = """[containers]
seccomp_profile = "unconfined"
default_capabilities = ["CHOWN", "SYS_PTRACE"]
"""
GOOD_REGISTRIES = """unqualified-search-registries = ["docker.io"]
[[registry]]
location = "docker.io"
"""
BAD_REGISTRIES = """unqualified-search-registries = ["docker.io"]
[[registry]]
location = "reg.local:5000"
insecure = true
"""
GOOD_DOCKER = """{
  "icc": false,
  "userns-remap": "default",
  "no-new-privileges": true,
  "live-restore": true,
  "userland-proxy": false,
  "hosts": ["unix:///var/run/docker.sock"]
}
"""
BAD_DOCKER = """{
  "icc": true,
  "insecure-registries": ["reg.local:5000"],
  "experimental": true,
  "hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"]
}
"""

#: line of each interesting setting in the files above (checked against the evidence)
LINES = {"anonymous": 5, "mode": 7, "readOnlyPort": 8}


def _write(root: Path, path: str, text: str, mode: int = 0o600, owner: tuple[int, int] = (0, 0)) -> None:
    p = root / path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    os.chmod(p, mode)
    os.chown(p, *owner)


def build(root: Path, good: bool) -> Path:
    """A control-plane node under `root`, hardened (`good`) or weak; returns `root`."""
    mode = 0o600 if good else 0o644
    owner = (0, 0) if good else (1000, 1000)
    _write(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\netcd:x:998:998::/var/lib/etcd:/bin/false\n", 0o644)
    _write(root, "/etc/group", "root:x:0:\netcd:x:998:\n", 0o644)
    _write(root, "/lib/systemd/system/kubelet.service", UNIT, mode, owner)
    _write(root, "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf", DROP_IN, mode, owner)
    _write(root, "/var/lib/kubelet/kubeadm-flags.env",
           'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock"\n')  # fmt: skip
    if not good:
        _write(root, "/etc/default/kubelet", "KUBELET_EXTRA_ARGS=--hostname-override=node-x\n")
    _write(root, "/var/lib/kubelet/config.yaml", GOOD_KUBELET if good else BAD_KUBELET, mode, owner)
    _write(root, "/etc/kubernetes/kubelet.conf", "apiVersion: v1\nkind: Config\n", mode, owner)
    _write(root, "/var/lib/kube-proxy/kubeconfig.conf", "apiVersion: v1\nkind: Config\n", mode, owner)
    manifests = {
        "kube-apiserver": GOOD_API if good else BAD_API,
        "kube-controller-manager": GOOD_CM if good else BAD_CM,
        "kube-scheduler": GOOD_SCHED if good else BAD_SCHED,
        "etcd": GOOD_ETCD if good else BAD_ETCD,
    }
    for name, args in manifests.items():
        _write(root, f"/etc/kubernetes/manifests/{name}.yaml", _pod(name, args), mode, owner)
    for conf in ("admin.conf", "scheduler.conf", "controller-manager.conf"):
        _write(root, f"/etc/kubernetes/{conf}", "apiVersion: v1\nkind: Config\n", mode, owner)
    for f in ("ca.crt", "apiserver.crt", "etcd/ca.crt"):
        _write(root, f"/etc/kubernetes/pki/{f}", "-----BEGIN CERTIFICATE-----\n", mode, owner)
    for f in ("ca.key", "apiserver.key"):
        _write(root, f"/etc/kubernetes/pki/{f}", "-----BEGIN PRIVATE KEY-----\n", mode, owner)
    _write(root, "/etc/cni/net.d/10-flannel.conflist", '{"name": "cbr0"}\n', mode, owner)
    etcd_dir = root / "var/lib/etcd"
    etcd_dir.mkdir(parents=True)
    os.chmod(etcd_dir, 0o700 if good else 0o755)
    os.chown(etcd_dir, *((998, 998) if good else (0, 0)))
    _write(root, "/etc/containerd/config.toml", GOOD_CONTAINERD if good else BAD_CONTAINERD, 0o644)
    if not good:
        _write(root, "/etc/containerd/certs.d/reg.local/hosts.toml",
               'server = "https://reg.local"\n[host."https://reg.local"]\n  skip_verify = true\n', 0o644)  # fmt: skip
    _write(root, "/etc/crio/crio.conf", GOOD_CRIO if good else BAD_CRIO, 0o644)
    _write(root, "/etc/containers/containers.conf", GOOD_CONTAINERS if good else BAD_CONTAINERS, 0o644)
    _write(root, "/etc/containers/registries.conf", GOOD_REGISTRIES if good else BAD_REGISTRIES, 0o644)
    _write(root, "/etc/docker/daemon.json", GOOD_DOCKER if good else BAD_DOCKER, 0o644)
    return root
