"""Secrets in the environment: values any process of the container, its crash dumps and its
child processes can read, and that ``kubectl describe`` or the API show in clear."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from stockade.k8s.catalogue import Context, Violation, check
from stockade.k8s.checks._pod import pod_of
from stockade.k8s.objects import K8sObject

#: names of variables that hold a secret when set to a literal value
SECRET_NAME: Final = re.compile(
    r"(PASS(WORD|WD)?|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?|AUTH)($|_)", re.IGNORECASE
)

#: names that hold where a secret is, not the secret
_NOT_SECRET: Final = ("_FILE", "_PATH", "_DIR", "_NAME", "_URL", "_ENABLED")


def _literal(value: object) -> bool:
    """A value written in the manifest (not empty, not a $(VAR) reference)."""
    return isinstance(value, str | int) and bool(str(value).strip()) and not str(value).startswith("$(")


@check(
    "secrets-in-env",
    severity="MEDIUM",
    title="Secret passed in an environment variable",
    description=(
        "Secrets in environment variables (from a Secret, or written in the manifest) leak through "
        "/proc, logs, crash reports and child processes; files from a secret volume do not."
    ),
    remediation="Mount the Secret as a volume and read the file; never write a secret in the manifest.",
    fix=(
        "volumeMounts:\n  - name: creds\n    mountPath: /run/secrets/app\n    readOnly: true\n"
        "volumes:\n  - name: creds\n    secret:\n      secretName: app\n"
    ),
    cis=("5.4.1",),
)
def secrets_in_env(obj: K8sObject, ctx: Context) -> Iterator[Violation]:
    """env[].valueFrom.secretKeyRef, envFrom[].secretRef, and literal values of secret-named
    variables."""
    pod = pod_of(obj, ctx)
    if pod is None:
        return
    for c in pod.containers():
        env = c.body.get("env")
        for i, e in enumerate(env if isinstance(env, list) else []):
            if not isinstance(e, dict):
                continue
            name = str(e.get("name") or "")
            vf = e.get("valueFrom")
            if isinstance(vf, dict) and vf.get("secretKeyRef") is not None:
                yield Violation(
                    f"container {c.name!r} reads secret into env {name}",
                    (*c.path, "env", i, "valueFrom", "secretKeyRef"),
                )
            elif (
                _literal(e.get("value"))
                and SECRET_NAME.search(name)
                and not name.upper().endswith(_NOT_SECRET)
            ):
                yield Violation(
                    f"container {c.name!r} sets env {name} to a literal secret", (*c.path, "env", i, "value")
                )
        env_from = c.body.get("envFrom")
        for i, e in enumerate(env_from if isinstance(env_from, list) else []):
            if isinstance(e, dict) and e.get("secretRef") is not None:
                yield Violation(
                    f"container {c.name!r} loads a whole secret into its environment",
                    (*c.path, "envFrom", i, "secretRef"),
                )
