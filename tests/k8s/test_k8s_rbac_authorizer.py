"""The RBAC authorizer decides as kube-apiserver's: rule matching (wildcards, subresources,
``*/subresource``, resourceNames, non-resource URLs with a trailing ``*``), binding scopes,
subjects (users, groups, service accounts and their implied groups), ClusterRole aggregation."""

from __future__ import annotations

from typing import Any

import pytest

from stockade.k8s.rbac.authorizer import Authorizer, rule_allows
from stockade.k8s.rbac.load import RbacObjects, add_objects
from stockade.k8s.rbac.model import PolicyRule, Request, UserInfo
from stockade.k8s.selectors import selects as label_selector_matches

R = Request


def _rule(**kw: Any) -> PolicyRule:
    return PolicyRule.from_dict(kw)


RULE_CASES: list[tuple[dict[str, Any], Request, bool]] = [
    ({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}, R("get", resource="pods"), True),
    ({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}, R("list", resource="pods"), False),
    ({"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}, R("delete", resource="pods"), True),
    ({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}, R("get", "apps", "pods"), False),
    ({"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]}, R("get", "apps", "pods"), True),
    ({"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}, R("get", resource="secrets"), True),
    # a subresource is matched only as resource/subresource, never by the resource alone
    (
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]},
        R("create", resource="pods", subresource="exec"),
        False,
    ),
    (
        {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]},
        R("create", resource="pods", subresource="exec"),
        True,
    ),
    (
        {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create"]},
        R("create", resource="pods"),
        False,
    ),
    (
        {"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["update"]},
        R("update", "apps", "deployments", "scale"),
        True,
    ),
    (
        {"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["update"]},
        R("update", "apps", "deployments", "status"),
        False,
    ),
    (
        {"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["update"]},
        R("update", "apps", "deployments"),
        False,
    ),
    (
        {"apiGroups": [""], "resources": ["*"], "verbs": ["get"]},
        R("get", resource="pods", subresource="log"),
        True,
    ),
    # resourceNames restrict by name; a request without a name (list, create) does not match
    (
        {"apiGroups": [""], "resources": ["cm"], "resourceNames": ["a"], "verbs": ["get"]},
        R("get", resource="cm", name="a"),
        True,
    ),
    (
        {"apiGroups": [""], "resources": ["cm"], "resourceNames": ["a"], "verbs": ["get"]},
        R("get", resource="cm", name="b"),
        False,
    ),
    (
        {"apiGroups": [""], "resources": ["cm"], "resourceNames": ["a"], "verbs": ["list"]},
        R("list", resource="cm"),
        False,
    ),
    ({"apiGroups": [""], "resources": ["cm"], "verbs": ["get"]}, R("get", resource="cm", name="b"), True),
    # non-resource URLs: exact, '*', trailing '*' as a prefix; never for resource requests
    ({"nonResourceURLs": ["/healthz"], "verbs": ["get"]}, R("get", path="/healthz"), True),
    ({"nonResourceURLs": ["/healthz"], "verbs": ["get"]}, R("get", path="/healthz/ping"), False),
    ({"nonResourceURLs": ["/healthz*"], "verbs": ["get"]}, R("get", path="/healthz/ping"), True),
    ({"nonResourceURLs": ["/api/*"], "verbs": ["get"]}, R("get", path="/api"), False),
    ({"nonResourceURLs": ["*"], "verbs": ["get"]}, R("get", path="/metrics"), True),
    ({"nonResourceURLs": ["/metrics"], "verbs": ["get"]}, R("post", path="/metrics"), False),
    ({"nonResourceURLs": ["*"], "verbs": ["*"]}, R("get", resource="pods"), False),
    ({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, R("get", path="/metrics"), False),
]


@pytest.mark.parametrize(("rule", "req", "allowed"), RULE_CASES, ids=[f"{c[1]}-{c[2]}" for c in RULE_CASES])
def test_rule_matching(rule: dict[str, Any], req: Request, allowed: bool) -> None:
    assert rule_allows(_rule(**rule), req) is allowed


def _objects(*docs: dict[str, Any]) -> Authorizer:
    objs = add_objects(RbacObjects(), docs)
    assert not objs.problems
    return objs.authorizer()


def _role(kind: str, name: str, rules: list[dict[str, Any]], ns: str = "", **meta: Any) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, **meta}
    if ns:
        md["namespace"] = ns
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": md, "rules": rules}


def _binding(
    kind: str, name: str, ref: tuple[str, str], subjects: list[dict[str, str]], ns: str = ""
) -> dict[str, Any]:
    md = {"name": name, **({"namespace": ns} if ns else {})}
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": md,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": ref[0], "name": ref[1]},
        "subjects": subjects,
    }


PODS_READ = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
ALICE = UserInfo.authenticated("alice")
SA = UserInfo.authenticated("system:serviceaccount:ns1:sa1")


def test_rolebinding_scopes_its_role_to_its_namespace() -> None:
    authz = _objects(
        _role("ClusterRole", "reader", PODS_READ),
        _binding("RoleBinding", "b", ("ClusterRole", "reader"), [{"kind": "User", "name": "alice"}], "ns1"),
    )
    assert authz.allows(ALICE, R("list", resource="pods", namespace="ns1"))
    assert not authz.allows(ALICE, R("list", resource="pods", namespace="ns2"))
    assert not authz.allows(ALICE, R("list", resource="pods"))  # across all namespaces: cluster scope
    assert not authz.allows(UserInfo.authenticated("bob"), R("list", resource="pods", namespace="ns1"))


def test_role_lookup_is_in_the_binding_namespace() -> None:
    authz = _objects(
        _role("Role", "reader", PODS_READ, "ns1"),
        _binding("RoleBinding", "b", ("Role", "reader"), [{"kind": "User", "name": "alice"}], "ns1"),
        _binding("RoleBinding", "b", ("Role", "reader"), [{"kind": "User", "name": "alice"}], "ns2"),
        _binding("ClusterRoleBinding", "c", ("Role", "reader"), [{"kind": "User", "name": "alice"}]),
    )
    assert authz.allows(ALICE, R("get", resource="pods", namespace="ns1", name="p"))
    assert not authz.allows(ALICE, R("get", resource="pods", namespace="ns2", name="p"))  # no Role in ns2
    assert not authz.allows(ALICE, R("get", resource="pods", name="p"))  # a CRB cannot name a Role


def test_clusterrolebinding_applies_everywhere_and_to_nonresource_urls() -> None:
    authz = _objects(
        _role("ClusterRole", "r", [*PODS_READ, {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]),
        _role("ClusterRole", "nr", [{"nonResourceURLs": ["/logs*"], "verbs": ["get"]}]),
        _binding("ClusterRoleBinding", "c", ("ClusterRole", "r"), [{"kind": "Group", "name": "devs"}]),
        _binding("RoleBinding", "b", ("ClusterRole", "nr"), [{"kind": "User", "name": "alice"}], "ns1"),
    )
    dev = UserInfo.authenticated("carol", ("devs",))
    assert authz.allows(dev, R("list", resource="pods"))
    assert authz.allows(dev, R("list", resource="pods", namespace="any"))
    assert authz.allows(dev, R("get", path="/metrics"))
    assert not authz.allows(ALICE, R("get", path="/metrics"))
    assert not authz.allows(ALICE, R("get", path="/logs/x"))  # a RoleBinding never grants URLs


def test_service_account_subjects_and_implied_groups() -> None:
    assert set(SA.groups) == {"system:serviceaccounts", "system:serviceaccounts:ns1", "system:authenticated"}
    authz = _objects(
        _role("ClusterRole", "reader", PODS_READ),
        # no namespace: the binding's own
        _binding(
            "RoleBinding",
            "own",
            ("ClusterRole", "reader"),
            [{"kind": "ServiceAccount", "name": "sa1"}],
            "ns1",
        ),
        _binding(
            "RoleBinding",
            "other",
            ("ClusterRole", "reader"),
            [{"kind": "ServiceAccount", "name": "sa1"}],
            "ns2",
        ),
        _binding(
            "RoleBinding",
            "grp",
            ("ClusterRole", "reader"),
            [{"kind": "Group", "name": "system:serviceaccounts:ns1"}],
            "ns3",
        ),
        _binding(
            "ClusterRoleBinding",
            "nons",
            ("ClusterRole", "reader"),
            [{"kind": "ServiceAccount", "name": "sa1"}],
        ),
    )
    assert authz.allows(SA, R("list", resource="pods", namespace="ns1"))
    assert not authz.allows(SA, R("list", resource="pods", namespace="ns2"))  # that is ns2:sa1
    assert authz.allows(SA, R("list", resource="pods", namespace="ns3"))  # through its namespace group
    assert not authz.allows(SA, R("list", resource="pods"))  # a CRB SA subject needs a namespace
    other = UserInfo.authenticated("system:serviceaccount:ns2:sa1")
    assert authz.allows(other, R("list", resource="pods", namespace="ns2"))
    assert not authz.allows(other, R("list", resource="pods", namespace="ns3"))


def test_aggregated_clusterroles_take_the_selected_rules_transitively() -> None:
    authz = _objects(
        {
            **_role(
                "ClusterRole",
                "monitoring",
                [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["delete"]}],
            ),
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg/monitoring": "true"}}]},
        },
        {
            **_role("ClusterRole", "middle", [], labels={"agg/monitoring": "true"}),
            "aggregationRule": {
                "clusterRoleSelectors": [{"matchExpressions": [{"key": "agg/leaf", "operator": "Exists"}]}]
            },
        },
        _role("ClusterRole", "pods", PODS_READ, labels={"agg/monitoring": "true"}),
        _role(
            "ClusterRole",
            "cms",
            [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
            labels={"agg/leaf": "x"},
        ),
        _role("ClusterRole", "secrets", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
        _binding(
            "ClusterRoleBinding", "c", ("ClusterRole", "monitoring"), [{"kind": "User", "name": "alice"}]
        ),
    )
    assert authz.allows(ALICE, R("get", resource="pods", name="p"))
    assert authz.allows(ALICE, R("get", resource="configmaps", name="c"))  # through "middle"
    assert not authz.allows(ALICE, R("get", resource="secrets", name="s"))  # not selected
    assert not authz.allows(ALICE, R("delete", resource="nodes", name="n"))  # its own rules are replaced


def test_label_selectors() -> None:
    labels = {"a": "1", "b": "2"}
    assert label_selector_matches({}, labels)
    assert label_selector_matches({"matchLabels": {"a": "1"}}, labels)
    assert not label_selector_matches({"matchLabels": {"a": "2"}}, labels)
    assert label_selector_matches(
        {"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "3"]}]}, labels
    )
    assert not label_selector_matches(
        {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}, labels
    )
    assert label_selector_matches({"matchExpressions": [{"key": "c", "operator": "DoesNotExist"}]}, labels)
    assert not label_selector_matches({"matchExpressions": [{"key": "c", "operator": "Exists"}]}, labels)


def test_missing_role_and_unknown_subject_grant_nothing() -> None:
    authz = _objects(
        _binding("ClusterRoleBinding", "c", ("ClusterRole", "absent"), [{"kind": "User", "name": "alice"}]),
        _role("ClusterRole", "r", PODS_READ),
        _binding("ClusterRoleBinding", "d", ("ClusterRole", "r"), [{"kind": "Robot", "name": "alice"}]),
    )
    assert not authz.allows(ALICE, R("get", resource="pods", name="p"))


def test_malformed_objects_are_reported_with_their_origin() -> None:
    objs = add_objects(RbacObjects(), [_role("Role", "x", [{"verbs": "get"}], "ns")], "f.yaml:3")
    assert objs.problems == ["f.yaml:3: Role: verbs must be a list of strings"]
    assert not objs.roles
