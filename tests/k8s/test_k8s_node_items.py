"""CIS node items over node trees built here: a hardened kubeadm control-plane node passes every
item, a weak one fails each (or warns where the benchmark is advisory), with the file and line of
the value; a running kubelet's flags override its file; broken files are reported, the run goes on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import in_parallel
from stockade.k8s.node.reader import NodeFS
from stockade.k8s.node.result import NodeResult
from stockade.k8s.node.run import check_node

# -- node trees: a hardened kubeadm control-plane node and a weak one ------------------------------
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
    _write(
        root,
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\netcd:x:998:998::/var/lib/etcd:/bin/false\n",
        0o644,
    )
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


pytestmark = pytest.mark.root  # the trees have files owned by other users

STOCKADE = [str(Path(sys.executable).parent / "stockade")]

#: on the weak node: advisory items that warn, and the one setting the weak node gets right
WEAK_WARNS = {
    "controller-manager-pod-gc",
    "kubelet-hostname-override",
    "kubelet-tls-cert-file",
    "kubelet-pod-pids-limit",
    "kubelet-protect-kernel-defaults",
    "docker-userns-remap",
    "docker-live-restore",
    "docker-userland-proxy",
}
WEAK_PASSES = {"apiserver-client-ca"}


def _by_id(results: list[NodeResult]) -> dict[str, NodeResult]:
    out = {r.id: r for r in results}
    assert len(out) == len(results), "item ids are unique"
    return out


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("good"), good=True)


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("bad"), good=False)


def test_hardened_node_passes_every_item(good: Path) -> None:
    fs = NodeFS(str(good))
    results = check_node(fs)
    assert not fs.problems
    assert len(results) > 90
    assert {r.id: r.status for r in results if r.status != "pass"} == {}


def test_weak_node_fails_every_item(bad: Path) -> None:
    fs = NodeFS(str(bad))
    got = _by_id(check_node(fs))
    assert not fs.problems
    assert {i for i, r in got.items() if r.status == "warn"} == WEAK_WARNS
    assert {i for i, r in got.items() if r.status == "pass"} == WEAK_PASSES
    assert {i for i, r in got.items() if r.status == "not-applicable"} == set()
    for r in got.values():
        assert r.title and r.remediation and r.severity in ("CRITICAL", "HIGH", "MEDIUM", "LOW"), r.id


def test_evidence_names_file_line_and_value(bad: Path) -> None:
    got = _by_id(check_node(NodeFS(str(bad))))
    ev = got["kubelet-anonymous-auth"].evidence[0]
    assert (ev.file, ev.line, ev.value) == ("/var/lib/kubelet/config.yaml", 5, "true")
    ev = got["kubelet-read-only-port"].evidence[0]
    assert (ev.file, ev.line, ev.value) == ("/var/lib/kubelet/config.yaml", 8, "10255")
    ev = got["apiserver-anonymous-auth"].evidence[0]
    assert (ev.file, ev.line, ev.value) == ("/etc/kubernetes/manifests/kube-apiserver.yaml", 12, "true")
    # the systemd drop-in's EnvironmentFile=-/etc/default/kubelet, expanded into ExecStart=
    ev = got["kubelet-hostname-override"].evidence[0]
    assert (ev.file, ev.line, ev.value) == ("/etc/default/kubelet", 1, "node-x")
    assert got["kubelet-config-mode"].evidence[0].value == "644"
    assert got["kubelet-config-owner"].evidence[0].value == "1000:1000"
    assert got["etcd-data-dir-owner"].evidence[0].value == "root:root"
    ev = got["docker-tls"].evidence[0]
    assert (ev.file, ev.line) == ("/etc/docker/daemon.json", 5)
    ev = got["containerd-apparmor"].evidence[0]
    assert (ev.file, ev.line) == ("/etc/containerd/config.toml", 3)


def test_running_kubelet_flags_override_its_file(tmp_path: Path) -> None:
    root = build(tmp_path / "n", good=True)
    proc = root / "proc/4242"
    proc.mkdir(parents=True)
    argv = ["/usr/bin/kubelet", "--anonymous-auth=true", "--read-only-port", "10255",
            "--config=/var/lib/kubelet/config.yaml"]  # fmt: skip
    (proc / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    got = _by_id(check_node(NodeFS(str(root))))
    for item, value in (("kubelet-anonymous-auth", "true"), ("kubelet-read-only-port", "10255")):
        assert got[item].status == "fail"
        assert (got[item].evidence[0].file, got[item].evidence[0].value) == ("/proc/4242/cmdline", value)
    assert got["kubelet-authorization-mode"].status == "pass"  # still from the file


def test_kubelet_without_config_file_has_the_flag_defaults(tmp_path: Path) -> None:
    # no configuration file: --anonymous-auth defaults to true, --authorization-mode to AlwaysAllow
    unit = tmp_path / "etc/systemd/system/kubelet.service"
    unit.parent.mkdir(parents=True)
    unit.write_text("[Service]\nExecStart=/usr/bin/kubelet --client-ca-file=/etc/ca.crt\n")
    got = _by_id(check_node(NodeFS(str(tmp_path))))
    assert got["kubelet-anonymous-auth"].status == "fail"
    assert got["kubelet-anonymous-auth"].evidence[0].file == "(default)"
    assert got["kubelet-authorization-mode"].status == "fail"
    assert got["kubelet-read-only-port"].status == "fail"
    assert got["kubelet-client-ca-file"].status == "pass"
    assert got["kubelet-client-ca-file"].evidence[0].line == 2


def test_no_kubernetes_is_not_applicable(tmp_path: Path) -> None:
    results = check_node(NodeFS(str(tmp_path)))
    assert results and {r.status for r in results} == {"not-applicable"}


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([*STOCKADE, *args], capture_output=True, text=True, timeout=60, env=env)


def test_cli_json_exit_code_and_broken_files(tmp_path: Path, bad: Path, good: Path) -> None:
    broken = build(tmp_path / "broken", good=True)
    (broken / "var/lib/kubelet/config.yaml").write_text(
        "authentication:\n  anonymous: [\n    enabled: false\n"
    )
    (broken / "etc/containerd/config.toml").write_text("version = 2\n[plugins\n")
    flags = tmp_path / "kubelet.flags"
    flags.write_text("# the kubelet's flags\n/usr/bin/kubelet --anonymous-auth=false\n--read-only-port=0\n")
    r_bad, r_good, r_broken, r_flags, bad_root = in_parallel(
        [
            lambda: _run("k8s", "node", "--root", str(bad), "--output", "json", "--exit-code", "3"),
            lambda: _run("k8s", "node", "--root", str(good), "--exit-code", "3"),
            lambda: _run("k8s", "node", "--root", str(broken), "--output", "json"),
            lambda: _run(
                "k8s", "node", "--root", str(broken), "--kubelet-flags", str(flags), "--output", "json"
            ),
            lambda: _run("k8s", "node", "--root", str(tmp_path / "nowhere")),
        ]
    )
    assert r_bad.returncode == 3, r_bad.stderr
    lines = [json.loads(x) for x in r_bad.stdout.splitlines()]
    assert {"id", "cis", "status", "severity", "evidence", "remediation"} <= set(lines[0])
    anon = next(x for x in lines if x["id"] == "kubelet-anonymous-auth")
    assert anon["status"] == "fail" and anon["evidence"] == [
        {"file": "/var/lib/kubelet/config.yaml", "line": 5, "value": "true"}
    ]
    assert r_good.returncode == 0, r_good.stderr
    assert "0 fail, 0 warn" in r_good.stdout
    assert r_broken.returncode == 0
    errors = r_broken.stderr.splitlines()
    assert any(e.startswith("stockade: error: /var/lib/kubelet/config.yaml:4") for e in errors), errors
    assert any(e.startswith("stockade: error: /etc/containerd/config.toml:2") for e in errors), errors
    assert "Traceback" not in r_broken.stderr
    assert any(json.loads(x)["id"] == "apiserver-anonymous-auth" for x in r_broken.stdout.splitlines())
    by_id = {x["id"]: x for x in map(json.loads, r_flags.stdout.splitlines())}
    assert by_id["kubelet-anonymous-auth"]["evidence"][0] == {"file": str(flags), "line": 2, "value": "false"}
    assert by_id["kubelet-read-only-port"]["evidence"][0]["line"] == 3
    assert bad_root.returncode == 2 and bad_root.stderr.startswith("stockade: error: --root")
