"""CIS node items over node trees built here: a hardened kubeadm control-plane node passes every
item, a weak one fails each (or warns where the benchmark is advisory), with the file and line of
the value; a running kubelet's flags override its file; broken files are reported, the run goes on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import k8s_node_trees as trees
import pytest
from helpers import in_parallel

from stockade.k8s.node.reader import NodeFS
from stockade.k8s.node.result import NodeResult
from stockade.k8s.node.run import check_node

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
    return trees.build(tmp_path_factory.mktemp("good"), good=True)


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trees.build(tmp_path_factory.mktemp("bad"), good=False)


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
    root = trees.build(tmp_path / "n", good=True)
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
    broken = trees.build(tmp_path / "broken", good=True)
    (broken / "var/lib/kubelet/config.yaml").write_text("authentication:\n  anonymous: [\n    enabled: false\n")
    (broken / "etc/containerd/config.toml").write_text('version = 2\n[plugins\n')
    flags = tmp_path / "kubelet.flags"
    flags.write_text("# the kubelet's flags\n/usr/bin/kubelet --anonymous-auth=false\n--read-only-port=0\n")
    r_bad, r_good, r_broken, r_flags, bad_root = in_parallel([
        lambda: _run("k8s", "node", "--root", str(bad), "--output", "json", "--exit-code", "3"),
        lambda: _run("k8s", "node", "--root", str(good), "--exit-code", "3"),
        lambda: _run("k8s", "node", "--root", str(broken), "--output", "json"),
        lambda: _run("k8s", "node", "--root", str(broken), "--kubelet-flags", str(flags), "--output", "json"),
        lambda: _run("k8s", "node", "--root", str(tmp_path / "nowhere")),
    ])
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
