"""The RBAC vocabulary (``rbac.authorization.k8s.io/v1``) and the requests it decides on.

Objects are read leniently from their dict form (a missing list is empty, a wrong type is a
:class:`ValueError` naming the field): :mod:`stockade.k8s.rbac.load` turns that into a located error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "API_GROUP",
    "ROLE_KINDS",
    "Binding",
    "PolicyRule",
    "Request",
    "Role",
    "RoleRef",
    "Subject",
    "UserInfo",
    "sa_username",
    "split_sa_username",
]

API_GROUP = "rbac.authorization.k8s.io"
ROLE_KINDS = ("Role", "ClusterRole")
SA_PREFIX = "system:serviceaccount:"


def sa_username(namespace: str, name: str) -> str:
    """The user name of a service account: ``system:serviceaccount:NS:NAME``."""
    return f"{SA_PREFIX}{namespace}:{name}"


def split_sa_username(username: str) -> tuple[str, str] | None:
    """``(namespace, name)`` of a service account user name, None for any other user."""
    if not username.startswith(SA_PREFIX):
        return None
    parts = username[len(SA_PREFIX) :].split(":")
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]


def _strs(d: Mapping[str, Any], key: str) -> tuple[str, ...]:
    v = d.get(key)
    if v is None:
        return ()
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError(f"{key} must be a list of strings")
    return tuple(v)


def _str(d: Mapping[str, Any], key: str) -> str:
    v = d.get(key)
    if v is None:
        return ""
    if not isinstance(v, str):
        raise ValueError(f"{key} must be a string")
    return v


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """One rule: verbs on (apiGroups x resources [x resourceNames]), or on nonResourceURLs."""

    verbs: tuple[str, ...] = ()
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, d: object) -> PolicyRule:
        """A rule from its Kubernetes form (ValueError naming a bad field)."""
        if not isinstance(d, Mapping):
            raise ValueError("a rule must be a mapping")
        return cls(
            _strs(d, "verbs"),
            _strs(d, "apiGroups"),
            _strs(d, "resources"),
            _strs(d, "resourceNames"),
            _strs(d, "nonResourceURLs"),
        )

    def as_dict(self) -> dict[str, list[str]]:
        """The Kubernetes form, empty lists left out (apiGroups kept for a resource rule)."""
        out: dict[str, list[str]] = {}
        if self.api_groups or self.resources:
            out["apiGroups"] = list(self.api_groups)
        for key, v in (
            ("resources", self.resources),
            ("resourceNames", self.resource_names),
            ("nonResourceURLs", self.non_resource_urls),
            ("verbs", self.verbs),
        ):
            if v:
                out[key] = list(v)
        return out


@dataclass(frozen=True, slots=True)
class Subject:
    """Who a binding grants to: a User, a Group or a ServiceAccount (with its namespace)."""

    kind: str
    name: str
    namespace: str = ""

    @classmethod
    def from_dict(cls, d: object) -> Subject:
        """A subject from its Kubernetes form."""
        if not isinstance(d, Mapping):
            raise ValueError("a subject must be a mapping")
        return cls(_str(d, "kind"), _str(d, "name"), _str(d, "namespace"))

    def as_dict(self) -> dict[str, str]:
        """The Kubernetes form."""
        if self.kind == "ServiceAccount":
            return {"kind": self.kind, "name": self.name, "namespace": self.namespace}
        return {"apiGroup": API_GROUP, "kind": self.kind, "name": self.name}

    def __str__(self) -> str:
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {ns}{self.name}"


@dataclass(frozen=True, slots=True)
class RoleRef:
    """The role a binding grants: a Role (in the binding's namespace) or a ClusterRole."""

    kind: str
    name: str


@dataclass(frozen=True, slots=True)
class Role:
    """A Role (namespaced) or ClusterRole, with its aggregation selectors and where it was read."""

    kind: str
    name: str
    namespace: str = ""
    rules: tuple[PolicyRule, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    #: aggregationRule.clusterRoleSelectors (label selectors), None without an aggregationRule
    aggregation: tuple[Mapping[str, Any], ...] | None = None
    origin: str = ""

    @classmethod
    def from_dict(cls, body: Mapping[str, Any], origin: str = "") -> Role:
        """A Role or ClusterRole from its Kubernetes form."""
        meta = body.get("metadata") or {}
        if not isinstance(meta, Mapping):
            raise ValueError("metadata must be a mapping")
        rules = body.get("rules") or []
        if not isinstance(rules, list):
            raise ValueError("rules must be a list")
        labels = meta.get("labels") or {}
        agg = body.get("aggregationRule")
        selectors: tuple[Mapping[str, Any], ...] | None = None
        if isinstance(agg, Mapping):
            sel = agg.get("clusterRoleSelectors") or []
            if not isinstance(sel, list) or not all(isinstance(s, Mapping) for s in sel):
                raise ValueError("aggregationRule.clusterRoleSelectors must be a list of selectors")
            selectors = tuple(sel)
        return cls(
            str(body.get("kind") or ""),
            _str(meta, "name"),
            _str(meta, "namespace"),
            tuple(PolicyRule.from_dict(r) for r in rules),
            {str(k): str(v) for k, v in labels.items()} if isinstance(labels, Mapping) else {},
            selectors,
            origin,
        )


@dataclass(frozen=True, slots=True)
class Binding:
    """A RoleBinding (namespaced) or ClusterRoleBinding."""

    kind: str
    name: str
    namespace: str
    role_ref: RoleRef
    subjects: tuple[Subject, ...]
    origin: str = ""

    @classmethod
    def from_dict(cls, body: Mapping[str, Any], origin: str = "") -> Binding:
        """A RoleBinding or ClusterRoleBinding from its Kubernetes form."""
        meta = body.get("metadata") or {}
        ref = body.get("roleRef")
        if not isinstance(meta, Mapping):
            raise ValueError("metadata must be a mapping")
        if not isinstance(ref, Mapping):
            raise ValueError("roleRef must be a mapping")
        subjects = body.get("subjects") or []
        if not isinstance(subjects, list):
            raise ValueError("subjects must be a list")
        return cls(
            str(body.get("kind") or ""),
            _str(meta, "name"),
            _str(meta, "namespace"),
            RoleRef(_str(ref, "kind"), _str(ref, "name")),
            tuple(Subject.from_dict(s) for s in subjects),
            origin,
        )

    @property
    def cluster_wide(self) -> bool:
        """A ClusterRoleBinding: its role applies in every namespace and to cluster-scoped requests."""
        return self.kind == "ClusterRoleBinding"


@dataclass(frozen=True, slots=True)
class UserInfo:
    """An authenticated user: name and groups (as the authenticator gives them)."""

    name: str
    groups: tuple[str, ...] = ()

    @classmethod
    def authenticated(cls, name: str, groups: tuple[str, ...] = ()) -> UserInfo:
        """`name` with `groups` and the groups its authentication implies: ``system:authenticated``
        and, for a service account, ``system:serviceaccounts`` and ``system:serviceaccounts:NS``."""
        implied = ["system:authenticated"] if name != "system:anonymous" else ["system:unauthenticated"]
        sa = split_sa_username(name)
        if sa is not None:
            implied = ["system:serviceaccounts", f"system:serviceaccounts:{sa[0]}", *implied]
        return cls(name, tuple(dict.fromkeys([*groups, *implied])))


@dataclass(frozen=True, slots=True, order=True)
class Request:
    """What the authorizer decides on (the API server's authorizer attributes).

    A resource request has a `resource` (and maybe `subresource`, `name`); an empty `namespace` is
    a cluster-scoped request or one across all namespaces. A non-resource request has `path` and
    no resource.
    """

    verb: str
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @property
    def resource_request(self) -> bool:
        """A request on an API resource (not a non-resource URL)."""
        return not self.path

    @property
    def combined_resource(self) -> str:
        """``resource/subresource`` (the resource alone without a subresource)."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource

    def __str__(self) -> str:
        if not self.resource_request:
            return f"{self.verb} {self.path}"
        group = f"{self.api_group}/" if self.api_group else ""
        where = f" in {self.namespace}" if self.namespace else ""
        name = f" {self.name!r}" if self.name else ""
        return f"{self.verb} {group}{self.combined_resource}{name}{where}"
