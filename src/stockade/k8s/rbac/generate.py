"""Least-privilege roles from audit logs (audit2rbac-like, narrower by design).

For one subject, every request it made becomes a permission; the permissions become rules that
grant exactly them, and nothing more:

* a request in a namespace goes to a Role (and RoleBinding) in that namespace; a cluster-scoped
  request, a request across all namespaces and a non-resource URL go to a ClusterRole (and
  ClusterRoleBinding). Namespaces are never widened to the cluster (audit2rbac widens a request
  seen in several namespaces); a namespaced permission the ClusterRole grants already is left out
  of the Role.
* verbs are never expanded (audit2rbac adds get/watch to list, get/patch to update...);
* a request on a named object is narrowed by ``resourceNames`` to the names requested, unless the
  same verb was also used on that resource without a name (a list, a create), which already
  grants every name; create and deletecollection are never narrowed (RBAC cannot restrict them by
  name);
* denied requests (403) count, as in audit2rbac: the subject needed them (``allowed_only`` drops
  them); requests already allowed by existing RBAC objects (``existing``) are left out.

Rules are merged only where the merge grants nothing new: names with the same verbs share a rule,
then resources with the same verbs and names, then API groups with the same verbs, resources and
names. Every permission is thus granted by exactly one rule, and removing any verb, resource, API
group or resource name from any rule denies at least one request of the log.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from stockade.k8s.rbac.authorizer import Authorizer
from stockade.k8s.rbac.model import API_GROUP, PolicyRule, Request, Subject, split_sa_username
from stockade.k8s.rbac.requests import AuditRequest

__all__ = ["DEFAULT_PREFIX", "compact_rules", "generate", "object_name", "subject_of"]

DEFAULT_PREFIX = "stockade"
GENERATED_LABEL = "stockade.dev/generated"
SUBJECT_ANNOTATION = "stockade.dev/subject"

#: (apiGroup, resource[/subresource], name or "" for any, verb)
Perm = tuple[str, str, str, str]


def subject_of(username: str) -> Subject:
    """The binding subject for a user name (a ServiceAccount for ``system:serviceaccount:NS:NAME``)."""
    sa = split_sa_username(username)
    if sa is not None:
        return Subject("ServiceAccount", sa[1], sa[0])
    return Subject("User", username)


def object_name(username: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The name of the generated objects: ``PREFIX:USER`` (lower case, other than [a-z0-9:] as -)."""
    return f"{prefix}:" + re.sub(r"[^a-z0-9:]", "-", username.lower())


def compact_rules(perms: Iterable[Perm], urls: Iterable[tuple[str, str]] = ()) -> list[PolicyRule]:
    """Rules granting exactly the permissions `perms` and the non-resource `urls`
    (``(path, verb)``), merged only where a merge grants nothing more (module docstring)."""
    pset = set(perms)
    pset = {p for p in pset if not p[2] or (p[0], p[1], "", p[3]) not in pset}
    verbs_of: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for g, r, n, v in pset:
        verbs_of[(g, r, n)].add(v)
    names_of: dict[tuple[str, str, frozenset[str]], set[str]] = defaultdict(set)
    for (g, r, n), vs in verbs_of.items():
        names_of[(g, r, frozenset(vs))].add(n)
    res_of: dict[tuple[str, frozenset[str], frozenset[str]], set[str]] = defaultdict(set)
    for (g, r, verbs), names in names_of.items():
        res_of[(g, verbs, frozenset(names - {""}))].add(r)
    groups_of: dict[tuple[frozenset[str], frozenset[str], frozenset[str]], set[str]] = defaultdict(set)
    for (g, verbs, named), rs in res_of.items():
        groups_of[(verbs, named, frozenset(rs))].add(g)
    rules = [
        PolicyRule(tuple(sorted(vs)), tuple(sorted(gs)), tuple(sorted(rs)), tuple(sorted(ns)))
        for (vs, ns, rs), gs in groups_of.items()
    ]
    url_verbs: dict[str, set[str]] = defaultdict(set)
    for path, verb in urls:
        url_verbs[path].add(verb)
    by_verbs: dict[frozenset[str], set[str]] = defaultdict(set)
    for path, vs in url_verbs.items():
        by_verbs[frozenset(vs)].add(path)
    rules += [
        PolicyRule(tuple(sorted(vs)), non_resource_urls=tuple(sorted(ps))) for vs, ps in by_verbs.items()
    ]
    return sorted(
        rules, key=lambda r: (r.non_resource_urls, r.api_groups, r.resources, r.resource_names, r.verbs)
    )


def _perm(req: Request) -> Perm:
    return (req.api_group, req.combined_resource, req.name, req.verb)


def _meta(name: str, username: str, namespace: str = "") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = {GENERATED_LABEL: "true"}
    meta["annotations"] = {SUBJECT_ANNOTATION: username}
    return meta


def _pair(
    kind: str, name: str, username: str, namespace: str, rules: list[PolicyRule]
) -> list[dict[str, Any]]:
    role = {
        "apiVersion": f"{API_GROUP}/v1",
        "kind": kind,
        "metadata": _meta(name, username, namespace),
        "rules": [r.as_dict() for r in rules],
    }
    binding = {
        "apiVersion": f"{API_GROUP}/v1",
        "kind": f"{kind}Binding",
        "metadata": _meta(name, username, namespace),
        "roleRef": {"apiGroup": API_GROUP, "kind": kind, "name": name},
        "subjects": [subject_of(username).as_dict()],
    }
    return [role, binding]


def generate(
    requests: Sequence[AuditRequest],
    username: str,
    *,
    prefix: str = DEFAULT_PREFIX,
    allowed_only: bool = False,
    existing: Authorizer | None = None,
) -> list[dict[str, Any]]:
    """The ClusterRole/ClusterRoleBinding and per-namespace Role/RoleBinding documents granting
    `username` exactly what its requests in `requests` needed (empty when it needs nothing)."""
    cluster: set[Perm] = set()
    urls: set[tuple[str, str]] = set()
    namespaced: dict[str, set[Perm]] = defaultdict(set)
    for r in requests:
        if r.user.name != username or (allowed_only and r.denied):
            continue
        if existing is not None and existing.allows(r.user, r.request):
            continue
        req = r.request
        if not req.resource_request:
            urls.add((req.path, req.verb))
        elif req.namespace:
            namespaced[req.namespace].add(_perm(req))
        else:
            cluster.add(_perm(req))
    for perms in namespaced.values():  # what the ClusterRole grants everywhere already
        perms -= {p for p in perms if p in cluster or (p[0], p[1], "", p[3]) in cluster}
    name = object_name(username, prefix)
    docs: list[dict[str, Any]] = []
    if cluster or urls:
        docs += _pair("ClusterRole", name, username, "", compact_rules(cluster, urls))
    for ns in sorted(ns for ns, perms in namespaced.items() if perms):
        docs += _pair("Role", name, username, ns, compact_rules(namespaced[ns]))
    return docs
