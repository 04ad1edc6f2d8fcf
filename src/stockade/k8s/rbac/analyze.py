"""Per subject of the RBAC objects: what it is granted, what of that it never used in the audit
logs, and its risky grants.

A subject is a User, Group or ServiceAccount named by a binding; its grants are the rules of the
roles its own bindings name (grants reaching it through groups, such as a service account's
``system:serviceaccounts``, are reported under those Group subjects). Its requests in the audit
logs are those its bindings would apply to: a User's by name, a ServiceAccount's by its user name,
a Group's by every user in it.

Unused permissions are the atoms of each granted rule (one verb on one API group, resource and
resource name; or one verb on one non-resource URL; wildcards stay whole atoms) that no request of
the subject in the rule's scope matches, matched by the authorizer's own rule matching: a
RoleBinding's rules only by requests in its namespace.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import Any

from stockade.k8s.catalogue import SEVERITIES
from stockade.k8s.rbac.authorizer import Authorizer, rule_allows, subject_applies
from stockade.k8s.rbac.model import Binding, PolicyRule, Request, Subject, UserInfo
from stockade.k8s.rbac.requests import AuditRequest
from stockade.k8s.rbac.risky import Risk, binding_risks, rule_risks

__all__ = ["SubjectReport", "analyze", "atoms"]


def atoms(rule: PolicyRule) -> list[PolicyRule]:
    """The rule split into one-verb, one-target rules (resourceNames kept one by one)."""
    if rule.non_resource_urls and not rule.resources:
        return [
            PolicyRule((v,), non_resource_urls=(u,)) for v, u in product(rule.verbs, rule.non_resource_urls)
        ]
    names: Sequence[str] = rule.resource_names or ("",)
    return [
        PolicyRule((v,), (g,), (r,), (n,) if n else ())
        for v, g, r, n in product(rule.verbs, rule.api_groups, rule.resources, names)
    ]


def _atom_dict(atom: PolicyRule, scope: str) -> dict[str, Any]:
    d: dict[str, Any] = {"namespace": scope or None, "verb": atom.verbs[0]}
    if atom.non_resource_urls:
        d["nonResourceURL"] = atom.non_resource_urls[0]
    else:
        d |= {"apiGroup": atom.api_groups[0], "resource": atom.resources[0]}
        if atom.resource_names:
            d["resourceName"] = atom.resource_names[0]
    return d


def _label(kind: str, namespace: str, name: str) -> str:
    return f"{kind}/{namespace + '/' if namespace else ''}{name}"


def _where(b: Binding, role: str, scope: str) -> dict[str, Any]:
    return {"binding": _label(b.kind, b.namespace, b.name), "role": role, "namespace": scope or None}


def _risk_dict(risk: Risk, where: dict[str, Any]) -> dict[str, Any]:
    return {"check": risk.check, "severity": risk.severity, "message": risk.message, **where}


@dataclass(slots=True)
class SubjectReport:
    """What one subject is granted, never used, and risks."""

    subject: Subject
    granted: list[dict[str, Any]] = field(default_factory=list)
    unused: list[dict[str, Any]] | None = None
    risky: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: subject, granted, unused (null without audit logs), risky."""
        s = self.subject
        return {
            "subject": {"kind": s.kind, "name": s.name, "namespace": s.namespace or None},
            "granted": self.granted,
            "unused": self.unused,
            "risky": self.risky,
        }


def _subject(s: Subject, binding: Binding) -> Subject:
    """`s` as a subject of `binding` names it (a ServiceAccount's namespace defaults to the binding's)."""
    ns = (s.namespace or binding.namespace) if s.kind == "ServiceAccount" else ""
    return Subject(s.kind, s.name, ns)


def _subjects(authz: Authorizer) -> list[Subject]:
    seen = {_subject(s, b) for b in authz.bindings for s in b.subjects}
    return sorted(seen, key=lambda s: (s.kind, s.namespace, s.name))


class _Used:
    """A subject's distinct requests by the scope a grant applies in ("" for everywhere), verb and
    resource, so that each atom is matched against the few requests it could match."""

    def __init__(self, requests: set[Request]) -> None:
        self._by_scope: dict[str, dict[tuple[str, str], list[Request]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for q in requests:
            scopes = ("", q.namespace) if q.resource_request and q.namespace else ("",)
            keys = [(v, "*") for v in (q.verb, "*")]
            if q.resource_request:
                keys += [(v, q.combined_resource) for v in (q.verb, "*")]
            for scope in scopes:
                for key in keys:
                    self._by_scope[scope][key].append(q)

    def _index(self, scope: str) -> dict[tuple[str, str], list[Request]]:
        return self._by_scope.get(scope) or {}

    def used(self, atom: PolicyRule, scope: str) -> bool:
        """Whether a request in `scope` matches the one-verb, one-target rule `atom`."""
        res = atom.resources[0] if atom.resources and not atom.resources[0].startswith("*") else "*"
        return any(rule_allows(atom, q) for q in self._index(scope).get((atom.verbs[0], res), ()))


def analyze(authz: Authorizer, requests: Sequence[AuditRequest] | None = None) -> list[SubjectReport]:
    """One report per subject of the bindings; `unused` only when `requests` are given."""
    reports = []
    by_user: dict[UserInfo, set[Request]] = defaultdict(set)  # a log repeats its requests
    for r in requests or ():
        by_user[r.user].add(r.request)
    for subject in _subjects(authz):
        rep = SubjectReport(subject, unused=[] if requests is not None else None)
        used = _Used(set().union(*(qs for u, qs in by_user.items() if subject_applies(subject, u, ""))))
        risky: dict[tuple[str, str, str], dict[str, Any]] = {}
        for b in authz.bindings:
            if subject not in (_subject(s, b) for s in b.subjects):
                continue
            scope = "" if b.cluster_wide else b.namespace
            for risk in binding_risks(b):
                where = _where(b, _label(b.role_ref.kind, "", b.role_ref.name), scope)
                risky[(risk.check, risk.message, where["binding"])] = _risk_dict(risk, where)
            for g in authz.grants(b):
                where = _where(b, _label(g.role.kind, g.role.namespace, g.role.name), scope)
                rep.granted.append({**where, "rule": g.rule.as_dict()})
                for risk in rule_risks(g.rule):
                    risky[(risk.check, risk.message, where["binding"])] = _risk_dict(risk, where)
                if rep.unused is not None:
                    rep.unused += [
                        {**_atom_dict(atom, scope), **where}
                        for atom in atoms(g.rule)
                        if not used.used(atom, scope)
                    ]
        rep.risky = sorted(
            risky.values(), key=lambda d: (SEVERITIES.index(d["severity"]), d["check"], d["binding"])
        )
        reports.append(rep)
    return reports
