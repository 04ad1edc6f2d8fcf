"""Least-privilege roles from audit logs: over the shared demo log and hand-written edge cases,
for every subject, the generated roles (evaluated by the RBAC authorizer) allow every request the
subject made and nothing more: removing any verb, resource, API group, resource name or URL from
any rule denies a request of the log, and requests the subject did not make (other verbs,
resources, groups, namespaces, names, URLs) are denied."""

from __future__ import annotations

import dataclasses
import functools
import json
import subprocess
import sys
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import SHARED_DATA, in_parallel, need_file
from stockade.k8s.rbac.authorizer import Authorizer
from stockade.k8s.rbac.generate import generate
from stockade.k8s.rbac.load import RbacObjects, add_objects
from stockade.k8s.rbac.model import PolicyRule, Request, UserInfo
from stockade.k8s.rbac.requests import AuditRequest, read_audit

DEMO = SHARED_DATA / "k8s" / "audit" / "demo.log"
STOCKADE = str(Path(sys.executable).parent / "stockade")
_ids = count(1)

VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "escalate")
RESOURCES = (
    "pods",
    "pods/exec",
    "pods/log",
    "secrets",
    "configmaps",
    "nodes",
    "deployments",
    "deployments/scale",
)
GROUPS = ("", "apps", "extensions")
NAMESPACES = ("", "default", "ns1", "kube-system")
PATHS = ("/", "/api", "/apis", "/metrics", "/healthz", "/healthz/ping", "/logs/x")


def event(
    verb: str,
    uri: str,
    user: str = "u",
    *,
    ref: dict[str, str] | None = None,
    code: int = 200,
    groups: list[str] | None = None,
    impersonate: str | None = None,
) -> dict[str, Any]:
    """One audit.k8s.io/v1 event as the API server logs it at Metadata level."""
    who = {"username": user, "groups": groups if groups is not None else ["system:authenticated"]}
    ev: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": f"00000000-0000-4000-8000-{next(_ids):012d}",
        "stage": "ResponseComplete",
        "requestURI": uri,
        "verb": verb,
        "user": who,
        "sourceIPs": ["10.0.0.1"],
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": "2026-01-01T00:00:00.000000Z",
        "stageTimestamp": "2026-01-01T00:00:00.010000Z",
    }
    if impersonate is not None:
        ev["user"] = {"username": "admin", "groups": ["system:masters", "system:authenticated"]}
        ev["impersonatedUser"] = who | {"username": impersonate}
    if ref is not None:
        ev["objectRef"] = {"apiVersion": "v1", **ref}
    return ev


def write_log(path: Path, events: list[dict[str, Any]]) -> Path:
    """The events as a JSON Lines audit log."""
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


SA = "system:serviceaccount:ci:builder"
SA_GROUPS = ["system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"]


def edge_events() -> list[dict[str, Any]]:
    """Subresources, names, non-resource URLs, cluster scope, lists across namespaces, service
    accounts, watches as ?watch=true, impersonation, creates carrying the new object's name."""
    pod = {"resource": "pods", "namespace": "app", "name": "web-1"}
    return [
        event(
            "create",
            "/api/v1/namespaces/app/pods/web-1/exec?command=sh",
            "dev",
            ref=pod | {"subresource": "exec"},
        ),
        event("get", "/api/v1/namespaces/app/pods/web-1/log", "dev", ref=pod | {"subresource": "log"}),
        event(
            "get",
            "/api/v1/namespaces/app/pods/web-2/log",
            "dev",
            ref=pod | {"name": "web-2", "subresource": "log"},
        ),
        event(
            "get",
            "/api/v1/namespaces/app/configmaps/a",
            "dev",
            ref={"resource": "configmaps", "namespace": "app", "name": "a"},
        ),
        event(
            "get",
            "/api/v1/namespaces/app/configmaps/b",
            "dev",
            ref={"resource": "configmaps", "namespace": "app", "name": "b"},
        ),
        event(
            "update",
            "/api/v1/namespaces/app/configmaps/a",
            "dev",
            ref={"resource": "configmaps", "namespace": "app", "name": "a"},
        ),
        event(
            "get",
            "/api/v1/namespaces/app/secrets/s1",
            "dev",
            ref={"resource": "secrets", "namespace": "app", "name": "s1"},
        ),
        event(
            "list", "/api/v1/namespaces/app/secrets", "dev", ref={"resource": "secrets", "namespace": "app"}
        ),
        event(
            "list",
            "/api/v1/namespaces/app/secrets?fieldSelector=metadata.name%3Dtls",
            "dev",
            ref={"resource": "secrets", "namespace": "app"},
        ),
        event(
            "patch",
            "/apis/apps/v1/namespaces/app/deployments/web/scale",
            "dev",
            ref={
                "apiGroup": "apps",
                "resource": "deployments",
                "subresource": "scale",
                "namespace": "app",
                "name": "web",
            },
        ),
        event(
            "patch",
            "/apis/apps/v1/namespaces/other/deployments/web/scale",
            "dev",
            ref={
                "apiGroup": "apps",
                "resource": "deployments",
                "subresource": "scale",
                "namespace": "other",
                "name": "web",
            },
        ),
        event("get", "/healthz", "dev"),
        event("get", "/metrics", "dev"),
        event("post", "/logs/x", "dev"),
        event("get", "/api/v1/nodes/n1", "dev", ref={"resource": "nodes", "name": "n1"}),
        event(
            "get",
            "/api/v1/nodes/n1/proxy/stats",
            "dev",
            ref={"resource": "nodes", "name": "n1", "subresource": "proxy"},
        ),
        event("list", "/api/v1/pods", "dev", ref={"resource": "pods"}),  # across all namespaces
        event(
            "list", "/api/v1/namespaces/app/pods", "dev", ref={"resource": "pods", "namespace": "app"}
        ),  # granted above
        # a service account: watches (list + ?watch=true), creates whose objectRef names the object
        event(
            "list",
            "/api/v1/namespaces/ci/pods?watch=true&resourceVersion=1",
            SA,
            groups=SA_GROUPS,
            ref={"resource": "pods", "namespace": "ci"},
        ),
        event(
            "create",
            "/api/v1/namespaces/ci/pods",
            SA,
            groups=SA_GROUPS,
            ref={"resource": "pods", "namespace": "ci", "name": "job-x1"},
        ),
        event(
            "create",
            "/apis/batch/v1/namespaces/ci/jobs",
            SA,
            groups=SA_GROUPS,
            ref={"apiGroup": "batch", "resource": "jobs", "namespace": "ci", "name": "j1"},
        ),
        event(
            "delete",
            "/apis/batch/v1/namespaces/ci/jobs/j1",
            SA,
            groups=SA_GROUPS,
            ref={"apiGroup": "batch", "resource": "jobs", "namespace": "ci", "name": "j1"},
        ),
        event(
            "get",
            "/apis/extensions/v1beta1/namespaces/ci/deployments/d",
            SA,
            groups=SA_GROUPS,
            ref={"apiGroup": "extensions", "resource": "deployments", "namespace": "ci", "name": "d"},
        ),
        event(
            "get",
            "/apis/apps/v1/namespaces/ci/deployments/d",
            SA,
            groups=SA_GROUPS,
            ref={"apiGroup": "apps", "resource": "deployments", "namespace": "ci", "name": "d"},
        ),
        # impersonation: the impersonated user acted; the impersonator gets nothing
        event(
            "delete",
            "/api/v1/namespaces/app/configmaps/old",
            impersonate="carol",
            ref={"resource": "configmaps", "namespace": "app", "name": "old"},
        ),
        event(
            "list",
            "/api/v1/namespaces/app/configmaps",
            impersonate="carol",
            ref={"resource": "configmaps", "namespace": "app"},
            code=403,
        ),
        event("list", "/api/v1/namespaces", "carol", ref={"resource": "namespaces"}, code=403),
    ]


def _authorizer(docs: list[dict[str, Any]]) -> Authorizer:
    objs = add_objects(RbacObjects(), docs)
    assert not objs.problems
    return objs.authorizer()


def needed(made: list[Request], q: Request) -> bool:
    """What "exactly what the log needs" allows: `q` is a request of the log, or one its requests
    grant by RBAC's own structure (a request without a name covers every name; a cluster-scoped one
    every namespace)."""
    for p in made:
        if not q.resource_request or not p.resource_request:
            if (p.verb, p.path) == (q.verb, q.path) and not q.resource_request and not p.resource_request:
                return True
            continue
        if (p.verb, p.api_group, p.combined_resource) != (q.verb, q.api_group, q.combined_resource):
            continue
        if p.name not in ("", q.name) or p.namespace not in ("", q.namespace):
            continue
        return True
    return False


def mutations(req: Request) -> Iterator[Request]:
    """Requests differing from `req` in one respect."""
    if not req.resource_request:
        for v in VERBS:
            yield dataclasses.replace(req, verb=v)
        for p in PATHS:
            yield dataclasses.replace(req, path=p)
        yield dataclasses.replace(req, path=req.path + "/x")
        return
    for v in VERBS:
        yield dataclasses.replace(req, verb=v)
    for r in RESOURCES:
        res, _, sub = r.partition("/")
        yield dataclasses.replace(req, resource=res, subresource=sub)
    for g in GROUPS:
        yield dataclasses.replace(req, api_group=g)
    for ns in NAMESPACES:
        yield dataclasses.replace(req, namespace=ns)
    for n in ("", "other", req.name):
        yield dataclasses.replace(req, name=n)
    yield Request(req.verb, path="/" + req.resource)


def removals(docs: list[dict[str, Any]]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Each generated document set with one element removed from one rule (the rule itself when
    it is its last resourceName: an empty list would grant every name)."""
    for i, doc in enumerate(docs):
        for j, rule in enumerate(doc.get("rules", [])):
            for key in ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs"):
                for k, value in enumerate(rule.get(key, [])):
                    rest = rule[key][:k] + rule[key][k + 1 :]
                    rules = list(doc["rules"])
                    if key == "resourceNames" and not rest:
                        del rules[j]
                    else:
                        rules[j] = {**rule, key: rest}
                    changed = [*docs[:i], {**doc, "rules": rules}, *docs[i + 1 :]]
                    yield f"{doc['kind']} {doc['metadata']['name']} rule {j} {key} {value!r}", changed


def assert_exact(items: list[AuditRequest], username: str, docs: list[dict[str, Any]]) -> int:
    """Cover everything, nothing more (mechanically); returns how many requests were decided."""
    mine = [r for r in items if r.user.name == username]
    user = mine[0].user
    made = [r.request for r in mine]
    authz = _authorizer(docs)
    decided = 0
    for req in made:
        assert authz.allows(user, req), f"{username}: {req} is not covered"
        for q in mutations(req):
            assert authz.allows(user, q) is needed(made, q), f"{username}: {q} (from {req})"
            decided += 1
    for what, changed in removals(docs):
        less = _authorizer(changed)
        assert any(not less.allows(user, r) for r in made), f"{username}: {what} is not needed"
    # and only this user: same groups, another name
    other = UserInfo("someone-else", user.groups)
    assert not any(authz.allows(other, r) for r in made)
    return decided


@pytest.fixture(scope="module")
def demo() -> list[AuditRequest]:
    got = read_audit([need_file(DEMO)])
    assert not got.problems
    return got.items


def test_demo_log_subjects(demo: list[AuditRequest]) -> None:
    assert {r.user.name for r in demo} == {"alice", "bob", "system:serviceaccount:ns1:sa1"}


@pytest.mark.parametrize("username", ["alice", "bob", "system:serviceaccount:ns1:sa1"])
def test_demo_log_roles_cover_everything_and_nothing_more(demo: list[AuditRequest], username: str) -> None:
    docs = generate(demo, username)
    assert docs
    assert assert_exact(demo, username, docs) > 50


def test_demo_log_roles_as_expected(demo: list[AuditRequest]) -> None:
    alice = generate(demo, "alice")  # denied lists count: she needed them
    assert [(d["kind"], d["metadata"].get("namespace")) for d in alice] == [
        ("Role", "ns1"),
        ("RoleBinding", "ns1"),
    ]
    assert alice[0]["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps", "pods", "secrets"], "verbs": ["list"]}
    ]
    assert alice[1]["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}
    ]
    sa = generate(demo, "system:serviceaccount:ns1:sa1")
    # pods listed across all namespaces: the ClusterRole; the list in default needs no Role then
    assert [d["kind"] for d in sa] == ["ClusterRole", "ClusterRoleBinding"]
    assert sa[1]["subjects"] == [{"kind": "ServiceAccount", "name": "sa1", "namespace": "ns1"}]
    bob = generate(demo, "bob")
    urls = [r for r in bob[0]["rules"] if "nonResourceURLs" in r]
    assert len(urls) == 1 and len(urls[0]["nonResourceURLs"]) == 23 and urls[0]["verbs"] == ["get"]
    assert generate(demo, "system:admin") == []  # it only impersonated


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[AuditRequest]]:
    log = write_log(tmp_path_factory.mktemp("edge") / "edge.log", edge_events())
    got = read_audit([log])
    assert not got.problems
    return log, got.items


@pytest.mark.parametrize("username", ["dev", SA, "carol"])
def test_edge_cases_cover_everything_and_nothing_more(
    edge: tuple[Path, list[AuditRequest]], username: str
) -> None:
    _, items = edge
    assert assert_exact(items, username, generate(items, username)) > 50


def _rules(docs: list[dict[str, Any]], kind: str, ns: str | None = None) -> list[dict[str, Any]]:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"].get("namespace") == ns]
    rules: list[dict[str, Any]] = doc["rules"]
    return rules


def test_edge_cases_as_expected(edge: tuple[Path, list[AuditRequest]]) -> None:
    _, items = edge
    dev = generate(items, "dev")
    app = _rules(dev, "Role", "app")
    assert {
        "apiGroups": [""],
        "resources": ["pods/exec"],
        "resourceNames": ["web-1"],
        "verbs": ["create"],
    } in app
    assert {
        "apiGroups": [""],
        "resources": ["pods/log"],
        "resourceNames": ["web-1", "web-2"],
        "verbs": ["get"],
    } in app
    # names with the same verbs share a rule; a (name, verb) covered by a list is not repeated
    assert {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": ["a"],
        "verbs": ["get", "update"],
    } in app
    assert {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["b"], "verbs": ["get"]} in app
    assert {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]} in app
    assert {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["s1"], "verbs": ["get"]} in app
    assert not any(r.get("resources") == ["pods"] for r in app)  # the cluster-wide list grants it
    cluster = _rules(dev, "ClusterRole")
    assert {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]} in cluster
    assert {
        "apiGroups": [""],
        "resources": ["nodes", "nodes/proxy"],
        "resourceNames": ["n1"],
        "verbs": ["get"],
    } in cluster
    assert {"nonResourceURLs": ["/healthz", "/metrics"], "verbs": ["get"]} in cluster
    assert {"nonResourceURLs": ["/logs/x"], "verbs": ["post"]} in cluster
    assert {
        "apiGroups": ["apps"],
        "resources": ["deployments/scale"],
        "resourceNames": ["web"],
        "verbs": ["patch"],
    } in _rules(dev, "Role", "other")
    sa = generate(items, SA)
    assert [d["kind"] for d in sa] == ["Role", "RoleBinding"]
    assert sa[1]["subjects"] == [{"kind": "ServiceAccount", "name": "builder", "namespace": "ci"}]
    ci = sa[0]["rules"]
    assert {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "watch"]} in ci  # unnamed create
    assert {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]} in ci
    assert {"apiGroups": ["batch"], "resources": ["jobs"], "resourceNames": ["j1"], "verbs": ["delete"]} in ci
    assert {
        "apiGroups": ["apps", "extensions"],
        "resources": ["deployments"],
        "resourceNames": ["d"],
        "verbs": ["get"],
    } in ci
    carol = generate(items, "carol")
    assert {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]} in _rules(carol, "Role", "app")
    assert generate(items, "admin") == []
    allowed = generate(items, "carol", allowed_only=True)
    assert _rules(allowed, "Role", "app") == [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["old"], "verbs": ["delete"]}
    ]
    assert [d["kind"] for d in allowed] == ["Role", "RoleBinding"]


def test_requests_already_granted_are_left_out(edge: tuple[Path, list[AuditRequest]]) -> None:
    _, items = edge
    existing = _authorizer(
        [
            {
                "kind": "ClusterRole",
                "metadata": {"name": "disc"},
                "rules": [{"nonResourceURLs": ["/healthz*", "/metrics"], "verbs": ["get"]}],
            },
            {
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "disc"},
                "roleRef": {"kind": "ClusterRole", "name": "disc"},
                "subjects": [{"kind": "Group", "name": "system:authenticated"}],
            },
        ]
    )
    cluster = _rules(generate(items, "dev", existing=existing), "ClusterRole")
    assert not any(
        "/healthz" in r.get("nonResourceURLs", []) or "/metrics" in r.get("nonResourceURLs", [])
        for r in cluster
    )
    assert {"nonResourceURLs": ["/logs/x"], "verbs": ["post"]} in cluster


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STOCKADE, "k8s", "rbac", *args], capture_output=True, text=True, input=stdin, timeout=60
    )


def test_cli_generate(edge: tuple[Path, list[AuditRequest]], tmp_path: Path) -> None:
    log, _ = edge
    demo = str(need_file(DEMO))
    broken = tmp_path / "broken.log"  # every subject of two logs, one with a broken line
    broken.write_text(log.read_text() + "{not json\n")
    existing = tmp_path / "existing.yaml"  # carol may list configmaps in app already
    existing.write_text(
        yaml.safe_dump_all(
            [
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "Role",
                    "metadata": {"name": "r", "namespace": "app"},
                    "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
                },
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "RoleBinding",
                    "metadata": {"name": "r", "namespace": "app"},
                    "roleRef": {"kind": "Role", "name": "r"},
                    "subjects": [{"kind": "User", "name": "carol"}],
                },
            ]
        )
    )
    bad = [
        (["--audit", demo, "--user", "nobody"], "no request of nobody"),
        (["--audit", demo, "--serviceaccount", "sa1"], "expected NS:NAME"),
    ]
    calls: list[tuple[list[str], str | None]] = [
        (["--audit", demo, "--serviceaccount", "ns1:sa1", "--name-prefix", "least"], None),
        (["--audit", demo, "--audit", str(broken)], None),
        (["--audit", "-", "--user", "carol", "--existing", str(existing)], log.read_text()),
        *((args, None) for args, _ in bad),
    ]
    runs = in_parallel([functools.partial(_run, "generate", *a, stdin=i) for a, i in calls])
    sa, both, carol = runs[:3]
    assert sa.returncode == 0, sa.stderr
    docs = list(yaml.safe_load_all(sa.stdout))
    assert [d["metadata"]["name"] for d in docs] == ["least:system:serviceaccount:ns1:sa1"] * 2
    assert both.returncode == 0, both.stderr
    assert f"stockade: error: {broken}:{len(edge_events()) + 1}: not JSON" in both.stderr
    subjects = {d["metadata"]["annotations"]["stockade.dev/subject"] for d in yaml.safe_load_all(both.stdout)}
    assert subjects == {"alice", "bob", "system:serviceaccount:ns1:sa1", "dev", SA, "carol"}
    assert carol.returncode == 0, carol.stderr
    carol_docs = list(yaml.safe_load_all(carol.stdout))
    assert _rules(carol_docs, "Role", "app") == [
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["old"], "verbs": ["delete"]}
    ]
    assert _rules(carol_docs, "ClusterRole") == [
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]}
    ]
    for (args, msg), p in zip(bad, runs[3:], strict=True):
        assert p.returncode == 2 and p.stderr.startswith("stockade: error:") and msg in p.stderr, (
            args,
            p.stderr,
        )
        assert "Traceback" not in p.stderr


def test_rule_dicts_round_trip() -> None:
    d = {"apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"], "verbs": ["get"]}
    assert PolicyRule.from_dict(d).as_dict() == d
    assert PolicyRule.from_dict({"nonResourceURLs": ["/x"], "verbs": ["get"]}).as_dict() == {
        "nonResourceURLs": ["/x"],
        "verbs": ["get"],
    }


def test_audit_events_as_the_authorizer_sees_them(tmp_path: Path) -> None:
    pods = {"resource": "pods", "namespace": "ns"}
    events = [
        event("list", "/api/v1/namespaces/ns/pods?watch=1", ref=pods),
        event(
            "list",
            "/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Dweb%2Cstatus.phase%3DRunning",
            ref=pods,
        ),
        event("get", "/api/v1/namespaces/ns/pods?watch=true&fieldSelector=metadata.name==web", ref=pods),
        event("create", "/api/v1/namespaces/ns/pods", ref=pods | {"name": "made"}),
        event(
            "create",
            "/api/v1/namespaces/ns/pods/web/attach",
            ref=pods | {"name": "web", "subresource": "attach"},
        ),
        event("deletecollection", "/api/v1/namespaces/ns/pods", ref=pods | {"name": "x"}),
        event("get", "/version?timeout=32s"),
        event("get", "/api/v1/namespaces/ns/pods/web", impersonate="imp", ref=pods | {"name": "web"}),
        event(
            "get", "/api/v1/namespaces/ns/pods/web", "system:anonymous", ref=pods | {"name": "web"}, code=401
        ),
        event("get", "/api/v1/namespaces/ns/pods/web", SA, groups=[], ref=pods | {"name": "web"}, code=403),
    ]
    received = {**events[-1], "stage": "RequestReceived"}  # the same request's first stage
    del received["responseStatus"]
    events.insert(len(events) - 1, received)
    got = read_audit([write_log(tmp_path / "a.log", events)])
    assert not got.problems
    assert [(r.user.name, str(r.request), r.denied) for r in got.items] == [
        ("u", "watch pods in ns", False),
        ("u", "list pods 'web' in ns", False),
        ("u", "watch pods 'web' in ns", False),
        ("u", "create pods in ns", False),
        ("u", "create pods/attach 'web' in ns", False),
        ("u", "deletecollection pods in ns", False),
        ("u", "get /version", False),
        ("imp", "get pods 'web' in ns", False),
        (SA, "get pods 'web' in ns", True),
    ]
    assert got.items[-1].user.groups == (
        "system:serviceaccounts",
        "system:serviceaccounts:ci",
        "system:authenticated",
    )
