"""deploy/kubernetes passes Stockade's own scan at pss-restricted, but for the agent's declared
privileges (exemptions.yaml): every finding is on the agent and names only declared controls,
and each declared control that a registered check implements is really needed (found). The
catalogue is whatever is registered: the test grows with it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from helpers import REPO
from stockade.k8s.catalogue import evaluate, select
from stockade.k8s.finding import K8sFinding
from stockade.k8s.objects import K8sObject

DEPLOY = REPO / "deploy" / "kubernetes"
Key = tuple[str, str | None, str]


def load(path: Path) -> list[K8sObject]:
    """The objects of a manifest file, each with the line its document starts on."""
    text = path.read_text()
    lines = [n.start_mark.line + 1 for n in yaml.compose_all(text, Loader=yaml.SafeLoader) if n is not None]
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    assert len(docs) == len(lines)
    return [
        K8sObject(d, file=str(path.relative_to(REPO)), line=ln, doc=i)
        for i, (d, ln) in enumerate(zip(docs, lines, strict=True))
    ]


def manifests() -> list[K8sObject]:
    objs = [o for p in sorted(DEPLOY.glob("*.yaml")) if p.name != "exemptions.yaml" for o in load(p)]
    assert objs
    return objs


def exemptions() -> dict[Key, set[str]]:
    out: dict[Key, set[str]] = {}
    for e in yaml.safe_load((DEPLOY / "exemptions.yaml").read_text()):
        r = e["resource"]
        assert all(reason.strip() for reason in e["controls"].values()), "every privilege is explained"
        out[(r["kind"], r.get("namespace"), r["name"])] = set(e["controls"])
    return out


def undeclared(findings: list[K8sFinding], declared: dict[Key, set[str]]) -> list[str]:
    """Findings not covered by the declared exemptions (a finding without a PSS control never is)."""
    bad = []
    for f in findings:
        allowed = declared.get((f.kind, f.namespace, f.name), set())
        if not f.controls or not set(f.controls) <= allowed:
            bad.append(f"{f.file}:{f.line} {f.kind}/{f.name}: {f.check} {list(f.controls)} {f.message}")
    return bad


def test_manifests_pass_pss_restricted_but_for_declared_privileges() -> None:
    objs, declared = manifests(), exemptions()
    checks = select("pss-restricted")
    assert checks, "the catalogue has pss-restricted checks"
    findings = evaluate(objs, checks)
    assert undeclared(findings, declared) == []
    # each declared control a registered check implements is needed: the scan finds it
    implemented = {c for chk in checks for c in chk.controls}
    for key, controls in declared.items():
        found = {c for f in findings if (f.kind, f.namespace, f.name) == key for c in f.controls}
        assert controls & implemented <= found, (
            f"{key}: declared but not needed: {(controls & implemented) - found}"
        )
    manager_and_webhook = [f for f in findings if f.name in ("stockade-manager", "stockade-webhook")]
    assert manager_and_webhook == []


def test_a_privilege_beyond_the_declared_ones_is_caught() -> None:
    objs = manifests()
    agent = next(o for o in objs if o.kind == "DaemonSet")
    worse = copy.deepcopy(agent.body)
    worse["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    findings = evaluate([K8sObject(worse, file="agent.yaml")], select("pss-restricted"))
    assert any("privileged" in u for u in undeclared(findings, exemptions()))


def test_the_manifests_are_what_they_should_be() -> None:
    objs = manifests()
    by: dict[tuple[str, str], dict[str, Any]] = {(o.kind, o.name): o.body for o in objs}
    assert {k for k, _ in by} >= {
        "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "DaemonSet", "Deployment",
        "Service", "ValidatingWebhookConfiguration", "NetworkPolicy", "CustomResourceDefinition",
    }  # fmt: skip
    ns = by[("Namespace", "stockade-system")]["metadata"]["labels"]
    assert ns["pod-security.kubernetes.io/enforce"] == "restricted"
    hook = by[("ValidatingWebhookConfiguration", "stockade")]["webhooks"][0]
    assert hook["admissionReviewVersions"] == ["v1"] and hook["sideEffects"] == "None"
    assert hook["clientConfig"]["caBundle"] == "${CA_BUNDLE}"
    assert "stockade-system" in hook["namespaceSelector"]["matchExpressions"][0]["values"]
    for name in ("stockade-manager", "stockade-webhook", "stockade-agent"):
        kind = "DaemonSet" if name == "stockade-agent" else "Deployment"
        pod = by[(kind, name)]["spec"]["template"]["spec"]
        sa = by[("ServiceAccount", pod["serviceAccountName"])]
        assert sa["automountServiceAccountToken"] is False
        for c in pod["containers"]:
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
            assert c["resources"]["limits"]
    agent = by[("DaemonSet", "stockade-agent")]["spec"]["template"]["spec"]
    assert agent["containers"][0]["securityContext"].get("privileged") is not True
    role = by[("ClusterRole", "stockade-manager-read")]
    verbs = {v for r in role["rules"] for v in r["verbs"]}
    assert verbs == {"get", "list", "watch"}
    assert not any("secrets" in r["resources"] or "*" in r["resources"] for r in role["rules"])


def test_container_command_lines_are_stockades() -> None:
    # each container's args must be a command line `stockade` accepts (options parsed, not run)
    import typer

    from stockade.cli.main import app, main

    main(["--help"])  # every command module registered
    root: Any = typer.main.get_command(app)
    seen = 0
    for obj in manifests():
        spec = obj.get(("spec", "template", "spec"))
        for c in (spec or {}).get("containers", []):
            args = [str(a) for a in c.get("args", [])]
            cmd, i = root, 0
            while i < len(args) and args[i] in getattr(cmd, "commands", {}):
                cmd, i = cmd.commands[args[i]], i + 1
            assert cmd is not root and not hasattr(cmd, "commands"), f"{obj.name}: {args}: no such command"
            cmd.make_context(args[i - 1], args[i:])  # raises on an unknown option or a bad value
            seen += 1
    assert seen >= 3
