"""The RBAC checks of the catalogue: for each, objects that fail it (at the offending field) and
objects that pass it, table-driven."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from stockade.k8s.catalogue import evaluate, get_check, select
from stockade.k8s.objects import K8sObject
from stockade.k8s.rbac.risky import RISK_SEVERITY


def role(*rules: dict[str, Any], kind: str = "Role") -> dict[str, Any]:
    """A Role (or ClusterRole) with `rules`."""
    meta = {"name": "r", **({"namespace": "ns"} if kind == "Role" else {})}
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": meta,
        "rules": list(rules),
    }


def rule(
    verbs: list[str], resources: list[str], groups: list[str] | None = None, **kw: Any
) -> dict[str, Any]:
    """One resource rule (core group by default)."""
    return {"apiGroups": groups if groups is not None else [""], "resources": resources, "verbs": verbs, **kw}


def binding(ref: str, *subjects: dict[str, str], kind: str = "ClusterRoleBinding") -> dict[str, Any]:
    """A binding of ClusterRole `ref` to `subjects`."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": "b", **({"namespace": "ns"} if kind == "RoleBinding" else {})},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ref},
        "subjects": list(subjects),
    }


USER = {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}
MASTERS = {"kind": "Group", "name": "system:masters", "apiGroup": "rbac.authorization.k8s.io"}
SA = {"kind": "ServiceAccount", "name": "ci", "namespace": "ns"}

#: check -> (failing objects with the field each fails at, passing objects)
GOLDEN: dict[str, tuple[list[tuple[dict[str, Any], str]], list[dict[str, Any]]]] = {
    "rbac-wildcard": (
        [
            (role(rule(["*"], ["configmaps"])), "rules[0].verbs[0]"),
            (role(rule(["get"], ["pods", "*"]), kind="ClusterRole"), "rules[0].resources[1]"),
            (role(rule(["get"], ["configmaps"], ["*"])), "rules[0].apiGroups[0]"),
        ],
        [
            role(rule(["get", "list"], ["configmaps", "pods/log"])),
            role({"nonResourceURLs": ["/healthz"], "verbs": ["get"]}),
        ],
    ),
    "rbac-cluster-admin-binding": (
        [
            (binding("cluster-admin", USER), "roleRef.name"),
            (binding("cluster-admin", MASTERS, SA), "roleRef.name"),
            (binding("cluster-admin", USER, kind="RoleBinding"), "roleRef.name"),
        ],
        [binding("cluster-admin", MASTERS), binding("view", USER), binding("admin", SA, kind="RoleBinding")],
    ),
    "rbac-exec-attach": (
        [
            (role(rule(["create"], ["pods/exec"])), "rules[0].resources"),
            (role(rule(["get"], ["pods/attach"]), kind="ClusterRole"), "rules[0].resources"),
            (role(rule(["create"], ["*/exec"])), "rules[0].resources"),
            (role(rule(["*"], ["*"], ["*"])), "rules[0].resources"),
        ],
        [
            role(rule(["create", "get"], ["pods", "pods/log"])),
            role(rule(["create"], ["pods/exec"], ["apps"])),
        ],
    ),
    "rbac-pod-create": (
        [
            (role(rule(["create"], ["pods"])), "rules[0].resources"),
            (
                role(rule(["get"], ["configmaps"]), rule(["create"], ["deployments"], ["apps"])),
                "rules[1].resources",
            ),
            (role(rule(["create"], ["cronjobs"], ["batch"])), "rules[0].resources"),
        ],
        [
            role(rule(["get", "list", "delete"], ["pods"])),
            role(rule(["create"], ["deployments"], ["extensions"])),
        ],
    ),
    "rbac-secrets-access": (
        [
            (role(rule(["list"], ["secrets"])), "rules[0].resources"),
            (role(rule(["get"], ["secrets"], resourceNames=["tls"])), "rules[0].resources"),
            (role(rule(["watch"], ["*"])), "rules[0].resources"),
        ],
        [role(rule(["create", "delete"], ["secrets"])), role(rule(["get"], ["configmaps"]))],
    ),
    "rbac-escalate-bind-impersonate": (
        [
            (
                role(rule(["escalate"], ["clusterroles"], ["rbac.authorization.k8s.io"]), kind="ClusterRole"),
                "rules[0].resources",
            ),
            (role(rule(["bind"], ["roles"], ["rbac.authorization.k8s.io"])), "rules[0].resources"),
            (role(rule(["impersonate"], ["serviceaccounts"]), kind="ClusterRole"), "rules[0].resources"),
            (role(rule(["impersonate"], ["users", "groups"])), "rules[0].resources"),
        ],
        [
            role(rule(["get", "list"], ["roles", "rolebindings"], ["rbac.authorization.k8s.io"])),
            role(rule(["bind"], ["roles"], [""])),
            role(rule(["get"], ["serviceaccounts"])),
        ],
    ),
    "rbac-nodes-proxy": (
        [
            (role(rule(["get"], ["nodes/proxy"]), kind="ClusterRole"), "rules[0].resources"),
            (role(rule(["create"], ["*/proxy"]), kind="ClusterRole"), "rules[0].resources"),
        ],
        [role(rule(["get"], ["nodes", "nodes/metrics", "nodes/stats"]), kind="ClusterRole")],
    ),
}

CASES = [(cid, obj, field, True) for cid, (fails, _) in GOLDEN.items() for obj, field in fails] + [
    (cid, obj, "", False) for cid, (_, passes) in GOLDEN.items() for obj in passes
]


def test_every_rbac_check_has_goldens() -> None:
    ids = {c.id for c in select() if c.id.startswith("rbac-")}
    assert ids == set(GOLDEN) == set(RISK_SEVERITY)
    for cid in ids:
        c = get_check(cid)
        assert c.kinds == {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
        assert c.severity == RISK_SEVERITY[cid]
        assert GOLDEN[cid][0] and GOLDEN[cid][1], cid


@pytest.mark.parametrize(
    ("check_id", "body", "field", "fails"),
    CASES,
    ids=[f"{c[0]}-{'fail' if c[3] else 'pass'}-{i}" for i, c in enumerate(CASES)],
)
def test_rbac_check(check_id: str, body: dict[str, Any], field: str, fails: bool) -> None:
    obj = K8sObject(body, file="rbac.yaml", line=1)
    found = evaluate([obj], [get_check(check_id)])
    if not fails:
        assert found == [], [f.message for f in found]
        return
    assert found, f"{check_id} passes {body}"
    assert found[0].field == field
    assert found[0].severity == RISK_SEVERITY[check_id]
    assert found[0].kind == body["kind"] and found[0].file == "rbac.yaml"


def test_rbac_checks_leave_workloads_and_broken_rules_alone() -> None:
    pod = K8sObject(
        {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    )
    body = role({"verbs": "*", "resources": ["*"]}, rule(["list"], ["secrets"]))
    body["rules"].insert(1, "not a rule")
    broken = K8sObject(body)
    checks = [c for c in select() if c.id.startswith("rbac-")]
    assert evaluate([pod], checks) == []
    found = evaluate([broken], checks)
    assert [(f.check, f.field) for f in found] == [("rbac-secrets-access", "rules[2].resources")]


@pytest.mark.parametrize("check_id", sorted(GOLDEN))
def test_fix_snippets_make_the_failing_goldens_pass(check_id: str) -> None:
    c = get_check(check_id)
    fix = yaml.safe_load(c.fix)
    for body, _ in GOLDEN[check_id][0]:
        fixed = {**body, **fix}  # the snippet's fields (rules, roleRef) replace the object's
        assert evaluate([K8sObject(fixed)], [c]) == [], (check_id, fixed)
