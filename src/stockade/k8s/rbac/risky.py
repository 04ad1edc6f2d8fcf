"""The risky grants: one definition used by the catalogue checks (:mod:`stockade.k8s.checks.rbac`)
and by `stockade k8s rbac analyze`.

A rule is risky when it grants (through :func:`~stockade.k8s.rbac.authorizer.rule_allows`, so
wildcards and ``*/subresource`` count as RBAC counts them, and a rule narrowed by resourceNames
still counts for those names):

==============================  ========  ====================================================
check                           severity  grant
==============================  ========  ====================================================
rbac-cluster-admin-binding      CRITICAL  a binding to the cluster-admin ClusterRole (not the
                                          default one, to the group system:masters only)
rbac-escalate-bind-impersonate  CRITICAL  escalate or bind on roles/clusterroles, impersonate
                                          on users, groups, serviceaccounts, uids, userextras
rbac-wildcard                   HIGH      ``*`` in verbs, resources or apiGroups
rbac-exec-attach                HIGH      create or get on pods/exec or pods/attach
rbac-secrets-access             HIGH      get, list or watch on secrets
rbac-nodes-proxy                HIGH      any verb on nodes/proxy
rbac-pod-create                 MEDIUM    create on pods or on a workload controller
==============================  ========  ====================================================
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from stockade.k8s.objects import Path
from stockade.k8s.rbac.authorizer import rule_allows
from stockade.k8s.rbac.model import API_GROUP, Binding, PolicyRule, Request

__all__ = ["RISK_SEVERITY", "Risk", "binding_risks", "object_risks", "rule_risks"]

RISK_SEVERITY: Final = {
    "rbac-cluster-admin-binding": "CRITICAL",
    "rbac-escalate-bind-impersonate": "CRITICAL",
    "rbac-wildcard": "HIGH",
    "rbac-exec-attach": "HIGH",
    "rbac-secrets-access": "HIGH",
    "rbac-nodes-proxy": "HIGH",
    "rbac-pod-create": "MEDIUM",
}

CLUSTER_ADMIN = "cluster-admin"
WORKLOAD_RESOURCES: Final = (
    ("", "pods"),
    ("", "replicationcontrollers"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
)
#: (check, verbs, (apiGroup, resource, subresource) asked)
_ASKS: Final[tuple[tuple[str, tuple[str, ...], tuple[tuple[str, str, str], ...]], ...]] = (
    (
        "rbac-escalate-bind-impersonate",
        ("escalate", "bind"),
        ((API_GROUP, "roles", ""), (API_GROUP, "clusterroles", "")),
    ),
    (
        "rbac-escalate-bind-impersonate",
        ("impersonate",),
        (
            ("", "users", ""),
            ("", "groups", ""),
            ("", "serviceaccounts", ""),
            ("authentication.k8s.io", "uids", ""),
            ("authentication.k8s.io", "userextras", ""),
        ),
    ),
    ("rbac-exec-attach", ("create", "get"), (("", "pods", "exec"), ("", "pods", "attach"))),
    ("rbac-secrets-access", ("get", "list", "watch"), (("", "secrets", ""),)),
    (
        "rbac-nodes-proxy",
        ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "proxy"),
        (("", "nodes", "proxy"),),
    ),
    ("rbac-pod-create", ("create",), tuple((g, r, "") for g, r in WORKLOAD_RESOURCES)),
)


@dataclass(frozen=True, slots=True)
class Risk:
    """One risky grant: the check it fails, its severity, what it grants, and the field (a path
    inside the object for checks, relative to the rule for a rule)."""

    check: str
    message: str
    path: Path = ()

    @property
    def severity(self) -> str:
        """The check's severity."""
        return RISK_SEVERITY[self.check]


@functools.lru_cache(maxsize=16384)
def rule_risks(rule: PolicyRule) -> tuple[Risk, ...]:
    """The risky grants of one rule (paths relative to the rule); rules repeat across roles."""
    return tuple(_rule_risks(rule))


def _rule_risks(rule: PolicyRule) -> Iterator[Risk]:
    for key, values in (("verbs", rule.verbs), ("resources", rule.resources), ("apiGroups", rule.api_groups)):
        if "*" in values:
            yield Risk("rbac-wildcard", f"'*' in {key}", (key, values.index("*")))
    if not rule.resources:
        return
    name = rule.resource_names[0] if rule.resource_names else ""
    for check_id, verbs, targets in _ASKS:
        if "*" not in rule.verbs and not set(verbs) & set(rule.verbs):
            continue
        granted = [
            (v, f"{r}/{s}" if s else r)
            for g, r, s in targets
            for v in verbs
            if rule_allows(rule, Request(v, api_group=g, resource=r, subresource=s, name=name))
        ]
        if granted:
            what = sorted({res for _, res in granted})
            how = sorted({v for v, _ in granted})
            narrowed = f" (names {', '.join(rule.resource_names)})" if rule.resource_names else ""
            yield Risk(check_id, f"grants {'/'.join(how)} on {', '.join(what)}{narrowed}", ("resources",))


def binding_risks(binding: Binding) -> Iterator[Risk]:
    """The risks of a binding itself: one to cluster-admin, unless it is the default binding of
    the group system:masters."""
    if binding.role_ref.kind == "ClusterRole" and binding.role_ref.name == CLUSTER_ADMIN:
        others = [s for s in binding.subjects if not (s.kind == "Group" and s.name == "system:masters")]
        if others:
            who = ", ".join(str(s) for s in others)
            yield Risk("rbac-cluster-admin-binding", f"binds cluster-admin to {who}", ("roleRef", "name"))


def object_risks(body: Mapping[str, Any]) -> Iterator[Risk]:
    """The risks of one Role, ClusterRole, RoleBinding or ClusterRoleBinding (paths in `body`)."""
    kind = body.get("kind")
    if kind in ("Role", "ClusterRole"):
        rules = body.get("rules")
        for i, r in enumerate(rules if isinstance(rules, list) else []):
            try:
                rule = PolicyRule.from_dict(r)
            except ValueError:
                continue
            for risk in rule_risks(rule):
                yield Risk(risk.check, risk.message, ("rules", i, *risk.path))
    elif kind in ("RoleBinding", "ClusterRoleBinding"):
        try:
            binding = Binding.from_dict(body)
        except ValueError:
            return
        yield from binding_risks(binding)
