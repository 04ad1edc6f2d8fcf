"""RBAC decisions as the API server makes them (the RBAC authorizer of kube-apiserver:
``plugin/pkg/auth/authorizer/rbac/rbac.go``, ``pkg/apis/rbac/v1/evaluation_helpers.go`` and the
rule resolution of ``pkg/registry/rbac/validation/rule.go``), written anew from their behaviour.

A request is allowed when one rule of one role bound to the user matches it:

* ClusterRoleBindings apply to every request; RoleBindings only to requests in their namespace
  (so a cluster-scoped request, a request across all namespaces and a non-resource URL are only
  ever allowed through ClusterRoleBindings). A RoleBinding's Role is looked up in the binding's
  namespace; a ClusterRole it names grants its rules in that namespace only.
* A subject applies to a user when: User, the user's name; Group, one of the user's groups;
  ServiceAccount, the user name ``system:serviceaccount:NS:NAME``, where NS defaults to the
  binding's namespace when the subject names none.
* A resource rule matches when the verb (or ``*``), the API group (or ``*``), the resource (``*``,
  ``resource/subresource`` exactly, or ``*/subresource``) and, when the rule lists resourceNames,
  the name all match. A non-resource rule matches the verb and a URL (``*``, exact, or a prefix
  ending in ``*``).
* A ClusterRole with an aggregationRule has the union of the rules of every other ClusterRole whose
  labels match one of its clusterRoleSelectors (followed transitively, as the aggregation
  controller converges to); the rules it lists itself are replaced, as the controller does.

There is no deny: anything no rule allows is denied.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from stockade.k8s.rbac.model import Binding, PolicyRule, Request, Role, Subject, UserInfo, sa_username
from stockade.k8s.selectors import selects as label_selector_matches

__all__ = [
    "Authorizer",
    "Grant",
    "rule_allows",
    "subject_applies",
]

ALL = "*"


def _verb_matches(rule: PolicyRule, verb: str) -> bool:
    return any(v in (ALL, verb) for v in rule.verbs)


def _api_group_matches(rule: PolicyRule, group: str) -> bool:
    return any(g in (ALL, group) for g in rule.api_groups)


def _resource_matches(rule: PolicyRule, combined: str, subresource: str) -> bool:
    for r in rule.resources:
        if r in (ALL, combined):
            return True
        if subresource and r == f"*/{subresource}":
            return True
    return False


def _resource_name_matches(rule: PolicyRule, name: str) -> bool:
    return not rule.resource_names or name in rule.resource_names


def _non_resource_url_matches(rule: PolicyRule, path: str) -> bool:
    for u in rule.non_resource_urls:
        if u in (ALL, path):
            return True
        if u.endswith(ALL) and path.startswith(u.rstrip(ALL)):
            return True
    return False


def rule_allows(rule: PolicyRule, req: Request) -> bool:
    """Whether `rule` matches `req` (rbac.go RuleAllows)."""
    if req.resource_request:
        return (
            _verb_matches(rule, req.verb)
            and _api_group_matches(rule, req.api_group)
            and _resource_matches(rule, req.combined_resource, req.subresource)
            and _resource_name_matches(rule, req.name)
        )
    return _verb_matches(rule, req.verb) and _non_resource_url_matches(rule, req.path)


def subject_applies(subject: Subject, user: UserInfo, namespace: str) -> bool:
    """Whether a binding `subject` (of a binding in `namespace`, "" for a cluster binding) is `user`."""
    if subject.kind == "User":
        return user.name == subject.name
    if subject.kind == "Group":
        return subject.name in user.groups
    if subject.kind == "ServiceAccount":
        ns = subject.namespace or namespace
        return bool(ns) and user.name == sa_username(ns, subject.name)
    return False


@dataclass(frozen=True, slots=True)
class Grant:
    """One rule granted through one binding and the role it names."""

    binding: Binding
    role: Role
    rule: PolicyRule

    @property
    def scope(self) -> str:
        """The namespace the rule applies in, "" for everywhere (a ClusterRoleBinding)."""
        return "" if self.binding.cluster_wide else self.binding.namespace


class Authorizer:
    """Decides requests against a set of Roles, ClusterRoles, RoleBindings and ClusterRoleBindings."""

    def __init__(self, roles: Iterable[Role], bindings: Iterable[Binding]) -> None:
        self.roles: dict[tuple[str, str], Role] = {}  # (namespace, name) of Roles
        self.cluster_roles: dict[str, Role] = {}
        for r in roles:
            if r.kind == "ClusterRole":
                self.cluster_roles[r.name] = r
            elif r.kind == "Role":
                self.roles[(r.namespace, r.name)] = r
        self.bindings = list(bindings)
        self._aggregated: dict[str, tuple[PolicyRule, ...]] = {}
        for name in self.cluster_roles:
            self._aggregate(name, set())

    def _aggregate(self, name: str, visiting: set[str]) -> tuple[PolicyRule, ...]:
        if name in self._aggregated:
            return self._aggregated[name]
        role = self.cluster_roles[name]
        if role.aggregation is None or name in visiting:
            return role.rules if role.aggregation is None else ()
        visiting.add(name)
        rules: list[PolicyRule] = []
        for other in sorted(self.cluster_roles.values(), key=lambda r: r.name):
            if other.name == name or not any(
                label_selector_matches(s, other.labels) for s in role.aggregation
            ):
                continue
            for rule in self._aggregate(other.name, visiting):
                if rule not in rules:
                    rules.append(rule)
        visiting.discard(name)
        self._aggregated[name] = tuple(rules)
        return self._aggregated[name]

    def role_rules(self, role: Role) -> tuple[PolicyRule, ...]:
        """The rules `role` grants (for an aggregated ClusterRole: the aggregated rules)."""
        if role.kind == "ClusterRole" and role.name in self._aggregated:
            return self._aggregated[role.name]
        return role.rules

    def role_of(self, binding: Binding) -> Role | None:
        """The role `binding` refers to, None when it is not among the objects."""
        if binding.role_ref.kind == "ClusterRole":
            return self.cluster_roles.get(binding.role_ref.name)
        if binding.role_ref.kind == "Role" and not binding.cluster_wide:
            return self.roles.get((binding.namespace, binding.role_ref.name))
        return None

    def grants(self, binding: Binding) -> Iterator[Grant]:
        """Every rule `binding` grants."""
        role = self.role_of(binding)
        if role is not None:
            for rule in self.role_rules(role):
                yield Grant(binding, role, rule)

    def applicable(self, user: UserInfo, namespace: str) -> Iterator[Grant]:
        """The grants that apply to `user`'s requests in `namespace` ("" for cluster-scoped ones,
        requests across all namespaces and non-resource URLs)."""
        for b in self.bindings:
            if b.cluster_wide:
                applies = any(subject_applies(s, user, "") for s in b.subjects)
            else:
                applies = bool(namespace) and b.namespace == namespace
                applies = applies and any(subject_applies(s, user, namespace) for s in b.subjects)
            if applies:
                yield from self.grants(b)

    def allowing(self, user: UserInfo, req: Request) -> Grant | None:
        """The first grant that allows `req` by `user`, None when it is denied."""
        ns = req.namespace if req.resource_request else ""
        for g in self.applicable(user, ns):
            if rule_allows(g.rule, req):
                return g
        return None

    def allows(self, user: UserInfo, req: Request) -> bool:
        """Whether RBAC allows `req` by `user`."""
        return self.allowing(user, req) is not None
