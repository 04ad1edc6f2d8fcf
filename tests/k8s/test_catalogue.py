"""The catalogue's contract: every check is complete and names known controls, filtering by
standard and severity, findings located at the offending field, a check that raises is recorded."""

from __future__ import annotations

from stockade.k8s import catalogue
from stockade.k8s.catalogue import PSS_CONTROLS, Context, evaluate, select
from stockade.k8s.objects import K8sObject, pod_template

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "ns"},
    "spec": {"containers": [{"name": "a", "image": "x", "securityContext": {"privileged": True}}]},
}


def test_every_check_is_complete() -> None:
    checks = catalogue.all_checks()
    assert checks
    for c in checks:
        assert c.id and c.title and c.description and c.remediation and c.fix, c.id
        assert c.kinds, c.id
        assert all(x in PSS_CONTROLS for x in c.controls), c.id


def test_finding_points_at_the_field_line() -> None:
    path = ("spec", "containers", 0, "securityContext", "privileged")
    obj = K8sObject(POD, file="p.yaml", line=1, lines={path[:3]: 7, path: 10})
    (f,) = [f for f in evaluate([obj]) if f.check == "privileged-container"]
    d = f.as_dict()
    assert d["resource"] == {"kind": "Pod", "namespace": "ns", "name": "p"}
    assert (d["file"], d["line"], d["field"]) == (
        "p.yaml",
        10,
        "spec.containers[0].securityContext.privileged",
    )
    assert d["controls"] == ["pss:baseline:privileged"]
    assert set(d) >= {"check", "severity", "controls", "resource", "file", "line", "message", "remediation"}


def test_controllers_and_cronjobs_share_the_pod_checks() -> None:
    spec = POD["spec"]
    cron = {
        "kind": "CronJob",
        "metadata": {"name": "c"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": spec}}}},
    }
    dep = {"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": {"spec": spec}}}
    for body in (cron, dep):
        obj = K8sObject(body)
        assert pod_template(obj) is not None
        assert any(f.check == "privileged-container" for f in evaluate([obj])), body["kind"]


def test_standards_select_checks() -> None:
    base = {c.id for c in select("pss-baseline")}
    restricted = {c.id for c in select("pss-restricted")}
    assert "privileged-container" in base <= restricted
    assert not select("all", severities=["LOW"]) or all(
        c.severity == "LOW" for c in select("all", severities=["LOW"])
    )


def test_a_check_that_raises_is_recorded_not_fatal() -> None:
    weird = K8sObject(
        {"kind": "Pod", "metadata": {"name": "w"}, "spec": {"containers": [{"securityContext": []}]}}
    )
    ctx = Context([weird])
    evaluate([weird], context=ctx)  # must not raise
    assert all(isinstance(e[2], str) for e in ctx.errors)
