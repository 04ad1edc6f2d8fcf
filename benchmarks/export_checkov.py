"""The NetworkPolicy export against checkov, an outside oracle (not run by the tests: checkov is
not a dependency, and CI must not need it).

checkov has no check of a NetworkPolicy's own fields (the tests check those against the API
server's rules); what it has is CKV2_K8S_6, "Minimize the admission of pods which lack an
associated NetworkPolicy", a graph check that a workload's pods are selected by a NetworkPolicy of
their namespace. This script exports a policy's NetworkPolicy, writes the Deployment it is meant
for (its namespace, its pods' labels), and runs checkov offline on both, then on the Deployment
alone: the first must pass with no parsing error, the second fail (the control). It also times the
export against checkov's run, in the same process run.

Install checkov in a virtualenv of its own (it pins versions Stockade's own venv must not get)::

    python3 -m venv /tmp/checkov-venv && /tmp/checkov-venv/bin/pip install checkov
    .venv/bin/python benchmarks/export_checkov.py --checkov /tmp/checkov-venv/bin/checkov

Exit status: 0 when checkov agrees, 1 when it does not, 2 when checkov is not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness
import yaml

from stockade.policy.export import export
from stockade.policy.export._common import target_of
from stockade.policy.model import WorkloadPolicy

DEFAULT_POLICY = harness.REPO / "tests" / "policy" / "data" / "export" / "web.policy.yaml"
CHECK = "CKV2_K8S_6"


def deployment(namespace: str, name: str, labels: dict[str, str]) -> dict[str, Any]:
    """A Deployment whose pods carry `labels`."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": name, "image": "nginx"}]},
            },
        },
    }


def checkov(exe: str, directory: Path) -> tuple[dict[str, Any], float]:
    """checkov's summary and results of CHECK on `directory`, offline, and how long it took."""
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}
    cmd = [
        exe,
        "-d",
        str(directory),
        "--framework",
        "kubernetes",
        "--check",
        CHECK,
        "-o",
        "json",
        "--skip-download",
    ]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    took = time.perf_counter() - t0
    out: dict[str, Any] = json.loads(r.stdout)
    return out, took


def verdicts(report: dict[str, Any]) -> list[str]:
    """Each result of CHECK: PASSED or FAILED."""
    results = report.get("results", {})
    return [
        c["check_result"]["result"] for k in ("passed_checks", "failed_checks") for c in results.get(k, [])
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkov", default=os.environ.get("CHECKOV") or shutil.which("checkov"))
    ap.add_argument("--policy", type=Path, default=DEFAULT_POLICY)
    ap.add_argument("--labels", default=None, help="the pods' labels, k=v,k=v (default app=<owner>)")
    args = ap.parse_args()
    if not args.checkov:
        print("checkov is not installed: see this script's docstring", file=sys.stderr)
        return 2
    policy = WorkloadPolicy.model_validate(yaml.safe_load(args.policy.read_text()))
    target = target_of(policy.spec.workload)
    labels = dict(kv.split("=", 1) for kv in args.labels.split(",")) if args.labels else {"app": target.owner}
    t0 = time.perf_counter()
    exported = export(policy, "networkpolicy", labels=labels)
    export_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="stockade-checkov-") as tmp:
        d = Path(tmp)
        (d / "deployment.yaml").write_text(yaml.safe_dump(deployment(target.namespace, target.owner, labels)))
        (d / "networkpolicy.yaml").write_text(exported.text)
        with_np, took = checkov(args.checkov, d)
        (d / "networkpolicy.yaml").unlink()
        without_np, _ = checkov(args.checkov, d)
    summary = with_np.get("summary", with_np)
    rows = [
        ("with the export", verdicts(with_np), summary.get("parsing_errors")),
        (
            "Deployment alone (control)",
            verdicts(without_np),
            without_np.get("summary", without_np).get("parsing_errors"),
        ),
    ]
    for what, v, errors in rows:
        print(f"{CHECK} {what}: {', '.join(v) or 'no result'} (parsing errors: {errors})")
    print(
        f"export {export_s * 1000:.1f} ms; checkov {took:.1f} s ({took / max(export_s, 1e-9):,.0f}x the export)"
    )
    ok = rows[0][1] == ["PASSED"] and rows[0][2] == 0 and rows[1][1] == ["FAILED"]
    print("checkov agrees" if ok else "checkov DISAGREES")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
