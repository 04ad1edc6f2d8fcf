"""RBAC checks (CIS 5.1): risky grants in Roles and ClusterRoles, cluster-admin bindings. The
logic is :mod:`stockade.k8s.rbac.risky`, shared with `stockade k8s rbac analyze`; this module
registers one catalogue check per risk, table-driven."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from stockade.k8s.catalogue import Context, Violation, check
from stockade.k8s.objects import K8sObject
from stockade.k8s.rbac.risky import RISK_SEVERITY, object_risks

RBAC_KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})


class _Spec(NamedTuple):
    id: str
    title: str
    description: str
    remediation: str
    fix: str
    cis: tuple[str, ...]


_RULE_FIX = 'rules:\n- apiGroups: [""]\n  resources: [configmaps]\n  verbs: [get]\n'

SPECS = (
    _Spec(
        "rbac-wildcard",
        "Wildcard in an RBAC rule",
        "A '*' in verbs, resources or apiGroups grants every present and future verb, resource or "
        "API group, including ones added later by CRDs.",
        "List the verbs, resources and API groups needed explicitly.",
        _RULE_FIX,
        ("5.1.3",),
    ),
    _Spec(
        "rbac-cluster-admin-binding",
        "Binding to cluster-admin",
        "cluster-admin can do anything anywhere; outside the default system:masters binding it "
        "should not be granted.",
        "Bind a role with only the permissions needed (`stockade k8s rbac generate` derives one).",
        "roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: view\n",
        ("5.1.1",),
    ),
    _Spec(
        "rbac-exec-attach",
        "Exec or attach into pods",
        "create/get on pods/exec or pods/attach runs commands in any pod the role reaches, with "
        "its service account and secrets.",
        "Remove pods/exec and pods/attach; use a break-glass role when debugging is needed.",
        _RULE_FIX,
        (),
    ),
    _Spec(
        "rbac-pod-create",
        "Create pods or workloads",
        "Creating pods (directly or through a controller) lets a user run any image with any "
        "service account of the namespace and, without admission control, mount the host.",
        "Grant pod and workload creation only to deployers, with admission control enforcing pod security.",
        _RULE_FIX,
        ("5.1.4",),
    ),
    _Spec(
        "rbac-secrets-access",
        "Read secrets",
        "get/list/watch on secrets reads every secret in scope, service account tokens included.",
        "Remove secrets from the rule or narrow it with resourceNames.",
        _RULE_FIX,
        ("5.1.2",),
    ),
    _Spec(
        "rbac-escalate-bind-impersonate",
        "Escalate, bind or impersonate",
        "escalate and bind let a user grant permissions it does not hold; impersonate lets it act "
        "as any user, group or service account.",
        "Remove escalate, bind and impersonate from roles of users and workloads.",
        _RULE_FIX,
        ("5.1.8",),
    ),
    _Spec(
        "rbac-nodes-proxy",
        "Access to nodes/proxy",
        "nodes/proxy reaches the kubelet API: exec into any pod of the node, bypassing audit and admission.",
        "Remove nodes/proxy; monitoring needs nodes/metrics or nodes/stats instead.",
        _RULE_FIX,
        ("5.1.10",),
    ),
)


def _register(spec: _Spec) -> None:
    @check(
        spec.id,
        severity=RISK_SEVERITY[spec.id],
        title=spec.title,
        description=spec.description,
        remediation=spec.remediation,
        fix=spec.fix,
        kinds=RBAC_KINDS,
        nsa=True,
        cis=spec.cis,
    )
    def run(obj: K8sObject, _ctx: Context) -> Iterator[Violation]:
        for risk in object_risks(obj.body):
            if risk.check == spec.id:
                yield Violation(risk.message, risk.path)


for _spec in SPECS:
    _register(_spec)
