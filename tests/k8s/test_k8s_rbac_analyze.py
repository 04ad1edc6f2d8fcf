"""`stockade k8s rbac analyze`: per subject, the granted rules, those never used in the audit log
(matched by the authorizer's rules, in the binding's scope), and the risky grants with severity."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import SHARED_DATA, in_parallel, need_file
from stockade.k8s.rbac.analyze import SubjectReport, analyze, atoms
from stockade.k8s.rbac.load import load_rbac
from stockade.k8s.rbac.model import PolicyRule
from stockade.k8s.rbac.requests import read_audit

DEMO = SHARED_DATA / "k8s" / "audit" / "demo.log"
STOCKADE = str(Path(sys.executable).parent / "stockade")

RBAC_YAML = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: cluster-admin}
rules:
- apiGroups: ["*"]
  resources: ["*"]
  verbs: ["*"]
- nonResourceURLs: ["*"]
  verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: cluster-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:masters"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: bob-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}
---
apiVersion: v1
kind: List
items:
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: pod-reader}
  rules:
  - apiGroups: [""]
    resources: [pods]
    verbs: [get, list, watch]
- apiVersion: rbac.authorization.k8s.io/v1
  kind: RoleBinding
  metadata: {name: alice-pods, namespace: ns1}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}
  subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: alice}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: sa-role, namespace: ns1}
rules:
- apiGroups: [""]
  resources: [secrets]
  resourceNames: [token]
  verbs: [get]
- apiGroups: [""]
  resources: [pods/exec]
  verbs: [create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: sa-role, namespace: ns1}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: sa-role}
subjects:
- {kind: ServiceAccount, name: sa1}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: monitoring}
aggregationRule:
  clusterRoleSelectors:
  - matchLabels: {example.com/monitoring: "true"}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: nodes-view
  labels: {example.com/monitoring: "true"}
rules:
- apiGroups: [""]
  resources: [nodes, nodes/proxy]
  verbs: [list, get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: sa-monitoring}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: monitoring}
subjects:
- {kind: ServiceAccount, name: sa1, namespace: ns1}
"""


@pytest.fixture(scope="module")
def rbac_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("rbac") / "rbac.yaml"
    p.write_text(RBAC_YAML)
    return p


@pytest.fixture(scope="module")
def reports(rbac_file: Path) -> dict[str, SubjectReport]:
    objs = load_rbac([rbac_file])
    assert not objs.problems
    reqs = read_audit([need_file(DEMO)])
    return {r.subject.name: r for r in analyze(objs.authorizer(), reqs.items)}


def _unused(rep: SubjectReport) -> set[tuple[Any, ...]]:
    assert rep.unused is not None
    return {
        (u["namespace"], u.get("resource") or u.get("nonResourceURL"), u.get("resourceName"), u["verb"])
        for u in rep.unused
    }


def test_subjects_and_grants(reports: dict[str, SubjectReport]) -> None:
    assert set(reports) == {"system:masters", "bob", "alice", "sa1"}
    sa = reports["sa1"].subject
    assert (sa.kind, sa.namespace) == ("ServiceAccount", "ns1")  # namespace from its RoleBinding
    alice = reports["alice"]
    assert alice.granted == [
        {
            "binding": "RoleBinding/ns1/alice-pods",
            "role": "ClusterRole/pod-reader",
            "namespace": "ns1",
            "rule": {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        }
    ]
    # the aggregated ClusterRole grants its selected roles' rules
    assert {"apiGroups": [""], "resources": ["nodes", "nodes/proxy"], "verbs": ["list", "get"]} in [
        g["rule"] for g in reports["sa1"].granted
    ]


def test_unused_permissions(reports: dict[str, SubjectReport]) -> None:
    # alice listed pods in ns1 (denied at the time: the log predates this binding); get and watch unused
    assert _unused(reports["alice"]) == {("ns1", "pods", None, "get"), ("ns1", "pods", None, "watch")}
    sa = _unused(reports["sa1"])
    # sa1 listed nodes and pods: list nodes used; the rest of its grants never
    assert ("ns1", "secrets", "token", "get") in sa and ("ns1", "pods/exec", None, "create") in sa
    assert (None, "nodes", None, "get") in sa and (None, "nodes/proxy", None, "list") in sa
    assert (None, "nodes", None, "list") not in sa
    # bob used cluster-admin's wildcard rules (resource requests and URLs); no request in the log
    # acted as system:masters (system:admin only impersonated others)
    assert _unused(reports["bob"]) == set()
    masters = reports["system:masters"].unused
    assert masters is not None
    assert [(u.get("resource"), u.get("nonResourceURL"), u["verb"]) for u in masters] == [
        ("*", None, "*"),
        (None, "*", "*"),
    ]


def test_risky_grants(reports: dict[str, SubjectReport]) -> None:
    def risky(name: str) -> set[tuple[str, str]]:
        return {(r["check"], r["severity"]) for r in reports[name].risky}

    assert ("rbac-cluster-admin-binding", "CRITICAL") in risky("bob")
    assert ("rbac-cluster-admin-binding", "CRITICAL") not in risky("system:masters")  # the default binding
    assert {("rbac-wildcard", "HIGH"), ("rbac-escalate-bind-impersonate", "CRITICAL")} <= risky(
        "system:masters"
    )
    assert risky("alice") == set()
    assert risky("sa1") == {
        ("rbac-secrets-access", "HIGH"),
        ("rbac-exec-attach", "HIGH"),
        ("rbac-nodes-proxy", "HIGH"),
    }
    sev = [r["severity"] for r in reports["bob"].risky]
    assert sev == sorted(sev, key=["CRITICAL", "HIGH", "MEDIUM"].index)


def test_atoms() -> None:
    r = PolicyRule(("get", "list"), ("", "apps"), ("deployments",), ("a", "b"))
    assert len(atoms(r)) == 8
    assert atoms(PolicyRule(("get",), non_resource_urls=("/a", "/b*"))) == [
        PolicyRule(("get",), non_resource_urls=("/a",)),
        PolicyRule(("get",), non_resource_urls=("/b*",)),
    ]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STOCKADE, "k8s", "rbac", "analyze", *args], capture_output=True, text=True, timeout=60
    )


def test_cli_analyze(rbac_file: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: x}\nrules: [{verbs: get}]\n"
        "---\nkey: [unclosed\n"
    )
    demo = str(need_file(DEMO))
    js, text, nolog, empty = in_parallel(
        [
            lambda: _run(str(rbac_file), str(broken), "--audit", demo, "-o", "json"),
            lambda: _run(str(rbac_file)),
            lambda: _run(str(rbac_file), "-o", "json"),
            lambda: _run(str(broken), str(tmp_path / "absent.yaml")),
        ]
    )
    assert js.returncode == 0, js.stderr
    assert f"stockade: error: {broken}:1: Role: verbs must be a list of strings" in js.stderr
    assert f"stockade: error: {broken}:7:1: YAML syntax error" in js.stderr
    lines = [json.loads(x) for x in js.stdout.splitlines()]
    assert {d["subject"]["name"] for d in lines} == {"system:masters", "bob", "alice", "sa1"}
    alice = next(d for d in lines if d["subject"]["name"] == "alice")
    assert alice["subject"] == {"kind": "User", "name": "alice", "namespace": None}
    assert {u["verb"] for u in alice["unused"]} == {"get", "watch"}
    assert text.returncode == 0, text.stderr
    assert "CRITICAL rbac-cluster-admin-binding: binds cluster-admin to User bob" in text.stdout
    assert nolog.returncode == 0 and all(json.loads(x)["unused"] is None for x in nolog.stdout.splitlines())
    assert empty.returncode == 1 and "Traceback" not in empty.stderr
    assert "absent.yaml: not read: No such file or directory" in empty.stderr
    assert empty.stderr.rstrip().endswith(
        f"no Role, ClusterRole or binding in {broken}, {tmp_path / 'absent.yaml'}"
    )
